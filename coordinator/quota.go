package coordinator

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/coordinator/admission"
	"github.com/gustfaas/gust/coordinator/replica"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/tenant"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
)

// quotas is the logic behind quota and concurrency settings, and the
// coordinator's side of the lease protocol.
type quotas struct {
	store   *raftstore.Store
	write   *replica.Writer
	limits  Limits
	grantMu sync.Mutex // one grant decided and committed at a time
}

// Quota implements admission.View.
func (q *quotas) Quota() raftstore.QuotaView { return q.store.Quota() }

// MaxTimeout implements admission.View: the longest timeout of the
// functions that draw on a pool.
func (q *quotas) MaxTimeout(pool string) time.Duration {
	view := q.store.Quota()
	longest := time.Duration(0)
	for _, fn := range q.store.Functions() {
		if view.PoolOf(fn.GetConfig().GetName()) == pool {
			longest = max(longest, fn.GetConfig().GetTimeout().AsDuration())
		}
	}
	if longest == 0 {
		longest = q.limits.DefaultTimeout
	}
	return longest
}

// Coordinators implements admission.View.
func (q *quotas) Coordinators() int {
	peers, err := q.store.Peers()
	if err != nil || len(peers) == 0 {
		return 1
	}
	return len(peers)
}

// RenewLeases implements admission.Granter: granted here on the leader,
// forwarded to it elsewhere.
func (q *quotas) RenewLeases(ctx context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error) {
	if q.store.IsLeader() {
		return q.Grant(ctx, req)
	}
	c, err := q.write.LeaderClient()
	if err != nil {
		return nil, err
	}
	return c.RenewLeases(ctx, req)
}

// Grant decides and commits leases; leader only.
func (q *quotas) Grant(ctx context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error) {
	q.grantMu.Lock()
	defer q.grantMu.Unlock()
	records, grants := admission.Grant(q.store.Quota(), req, time.Now())
	_, err := q.store.Apply(ctx, raftstore.Command{Type: raftstore.CmdGrantLeases,
		Msg: &raftv1.GrantLeases{Coordinator: req.GetCoordinator(), Leases: records}})
	if err != nil {
		return nil, err
	}
	return &nodev1.RenewLeasesResponse{Grants: grants}, nil
}

// unreservedHint names the ways out of the unreserved floor in its errors.
const unreservedHint = "gustd coordinator --unreserved-min sets that floor; gust quota set --concurrency N raises the account limit"

// unreservedFloor is what reservations must leave to everyone else.
func (q *quotas) unreservedFloor(limit int64) int64 {
	return min(int64(q.limits.UnreservedMin), limit)
}

// Get returns a tenant's quota: its own limit and pools if it has one,
// else ("" or "default" too) the account's, with everything in flight;
// for a tenant, with its caps and what it uses of them.
func (q *quotas) Get(t string) *gustv1.Quota {
	if t == "default" {
		t = ""
	}
	out := q.pools(t)
	if t != "" {
		view := q.store.Quota()
		maxReserved, maxProvisioned := tenantCaps(view, t)
		out.MaxReserved, out.MaxProvisioned = &maxReserved, &maxProvisioned
		out.TenantReserved, out.TenantProvisioned = view.TenantReserved(t), view.TenantProvisioned(t)
	}
	return out
}

// pools is get's limits and use: a tenant's own pool, else the account's.
func (q *quotas) pools(t string) *gustv1.Quota {
	view := q.store.Quota()
	if limit, ok := view.TenantLimits[t]; ok {
		out := &gustv1.Quota{Tenant: t, Concurrency: limit, Reserved: view.TenantReserved(t), Unreserved: view.PoolLimit(raftstore.TenantPool(t))}
		for pool, byCoord := range view.Leases {
			if name, ok := strings.CutPrefix(pool, "fn/"); (ok && tenant.Owns(t, name)) || pool == raftstore.TenantPool(t) {
				for _, l := range byCoord {
					out.InFlight += l.GetInFlight()
					out.Throttled += l.GetThrottled()
				}
			}
		}
		return out
	}
	out := &gustv1.Quota{Concurrency: view.AccountLimit, Reserved: view.ReservedTotal(), Unreserved: view.PoolLimit(raftstore.AccountPool)}
	for _, byCoord := range view.Leases {
		for _, l := range byCoord {
			out.InFlight += l.GetInFlight()
			out.Throttled += l.GetThrottled()
		}
	}
	return out
}

// Set sets the account limit (tenant "" or "default") or a tenant's own
// limit, carved out of the account's as a reservation is; a tenant's limit
// of 0 returns it to the shared account pool.
func (q *quotas) Set(ctx context.Context, t string, limit int64) (*gustv1.Quota, error) {
	if t == "default" {
		t = ""
	}
	bad := func(format string, args ...any) error {
		return apierr.New(apierr.InvalidParameterValue, format, args...)
	}
	view := q.store.Quota()
	next := view // the view as it would be, to check the pools it leaves
	next.TenantLimits = maps.Clone(view.TenantLimits)
	switch {
	case t == "" && limit < 1:
		return nil, bad("concurrency must be at least 1")
	case t == "":
		next.AccountLimit = limit
	case !tenant.Valid(t):
		return nil, bad("tenant %q must be 1 to 32 lower-case letters, digits, '-' or '_'", t)
	case limit < 0:
		return nil, bad("concurrency cannot be negative")
	case limit == 0:
		delete(next.TenantLimits, t)
	default:
		next.TenantLimits[t] = limit
		if left := next.PoolLimit(raftstore.TenantPool(t)); left < 0 {
			return nil, bad("tenant %s has %d reserved for its functions, more than %d", t, view.TenantReserved(t), limit)
		}
	}
	floor := q.unreservedFloor(next.AccountLimit)
	if left := next.PoolLimit(raftstore.AccountPool); left < floor {
		return nil, bad("concurrency %d for %s leaves %d unreserved of the account's %d; at least %d must stay unreserved (%s)",
			limit, orDefault(t), left, next.AccountLimit, floor, unreservedHint)
	}
	changed := time.Now()
	if err := q.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdSetAccountLimit, Msg: &raftv1.SetAccountLimit{Tenant: t, Limit: limit}}, nil); err != nil {
		return nil, err
	}
	q.awaitLeases(ctx, changed)
	return q.Get(t), nil
}

func orDefault(t string) string {
	if t == "" {
		return "the account"
	}
	return "tenant " + t
}

// Concurrency returns a function's settings and, for a reserved function,
// its pool's use as the coordinators last reported it.
func (q *quotas) Concurrency(name string) *gustv1.Concurrency {
	view := q.store.Quota()
	out := &gustv1.Concurrency{Reserved: view.Reserved[name], Provisioned: view.Provisioned[name]}
	for _, l := range view.Leases[raftstore.FunctionPool(name)] {
		out.InFlight += l.GetInFlight()
		out.Throttled += l.GetThrottled()
	}
	return out
}

func (q *quotas) setConcurrency(ctx context.Context, fns *functions, name string, reserved, provisioned int64) (*gustv1.Concurrency, error) {
	if _, err := fns.Get(ctx, name, ""); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return apierr.New(apierr.InvalidParameterValue, format, args...)
	}
	if reserved < 0 || provisioned < 0 {
		return nil, bad("concurrency cannot be negative")
	}
	if reserved > 0 && provisioned > reserved {
		return nil, bad("provisioned concurrency %d is more than the %d reserved", provisioned, reserved)
	}
	view := q.store.Quota()
	next := view
	next.Reserved = maps.Clone(view.Reserved)
	if reserved > 0 {
		next.Reserved[name] = reserved
	} else {
		delete(next.Reserved, name)
	}
	// A reservation comes out of the pool the function would draw on
	// without it: its tenant's, if that has a limit, else the account's.
	if t, _ := tenant.Split(name); reserved > 0 && view.TenantLimits[t] > 0 {
		if left := next.PoolLimit(raftstore.TenantPool(t)); left < 0 {
			return nil, bad("reserving %d is more than tenant %s's limit of %d leaves", reserved, t, view.PoolLimit(raftstore.TenantPool(t))+view.Reserved[name])
		}
	} else if left := next.PoolLimit(raftstore.AccountPool); reserved > 0 && left < q.unreservedFloor(view.AccountLimit) {
		return nil, bad("reserving %d leaves %d unreserved; at least %d must stay unreserved (%s)", reserved, left, q.unreservedFloor(view.AccountLimit), unreservedHint)
	}
	if t, _ := tenant.Split(name); t != "" {
		if err := checkCaps(view, t, name, reserved, provisioned); err != nil {
			return nil, err
		}
	}
	changed := time.Now()
	err := q.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdSetFunctionConcurrency,
		Msg: &raftv1.SetFunctionConcurrency{Function: name, Reserved: reserved, Provisioned: provisioned}}, nil)
	if err != nil {
		return nil, err
	}
	q.awaitLeases(ctx, changed)
	return q.Concurrency(name), nil
}

// awaitLeases waits until every coordinator still holding a lease has
// renewed, in every pool, since the limits changed: from then on the new
// limits hold everywhere, so a caller that changed them can rely on them.
// Coordinators whose leases ran out cannot admit and are not waited for.
// It gives up after a few TTLs (a coordinator cut off stops by itself).
func (q *quotas) awaitLeases(ctx context.Context, changed time.Time) {
	deadline := time.Now().Add(3 * admission.TTL)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if q.leasesRenewedSince(changed) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (q *quotas) leasesRenewedSince(changed time.Time) bool {
	view := q.store.Quota()
	now := time.Now().UnixNano()
	grantedAt := func(expires int64) int64 { return expires - int64(admission.TTL) }
	holders := map[string]bool{}
	for _, byCoord := range view.Leases {
		for coord, l := range byCoord {
			if l.GetExpiresUnixNano() > now {
				holders[coord] = true
			}
		}
	}
	for coord := range holders {
		for _, pool := range view.Pools() {
			l, ok := view.Leases[pool][coord]
			if !ok || grantedAt(l.GetExpiresUnixNano()) < changed.UnixNano() {
				return false
			}
		}
	}
	return true
}

// Default caps on a tenant's functions, for tenants root gave none (gust
// quota set --tenant T --max-reserved N --max-provisioned N). Reserved
// concurrency is taken from what every tenant shares, and provisioned
// sandboxes hold worker memory that everyone's cold starts need: one
// tenant must not take either for itself.
const (
	// defaultReservedPercent of the account limit is what a tenant without
	// a pool of its own may reserve; a tenant with one reserves from it,
	// up to all of it.
	defaultReservedPercent = 10
	// defaultMaxProvisioned sandboxes a tenant may keep provisioned.
	defaultMaxProvisioned = 10
)

// tenantCaps returns tenant t's caps: root's, else the defaults.
func tenantCaps(view raftstore.QuotaView, t string) (maxReserved, maxProvisioned int64) {
	maxReserved, ok := view.MaxReserved[t]
	if !ok {
		if limit, own := view.TenantLimits[t]; own {
			maxReserved = limit
		} else {
			maxReserved = view.AccountLimit * defaultReservedPercent / 100
		}
	}
	maxProvisioned, ok = view.MaxProvisioned[t]
	if !ok {
		maxProvisioned = defaultMaxProvisioned
	}
	return maxReserved, maxProvisioned
}

// checkCaps refuses a change of function name's concurrency that takes
// tenant t over a cap. Lowering is always allowed, so a tenant already
// over a cap root lowered can come back under it.
func checkCaps(view raftstore.QuotaView, t, name string, reserved, provisioned int64) error {
	maxReserved, maxProvisioned := tenantCaps(view, t)
	if total := view.TenantReserved(t) - view.Reserved[name] + reserved; reserved > view.Reserved[name] && total > maxReserved {
		return apierr.New(apierr.InvalidParameterValue,
			"reserving %d for %s takes tenant %s's reserved concurrency to %d, over its cap of %d; the root token raises the cap: gust quota set --tenant %s --max-reserved N",
			reserved, name, t, total, maxReserved, t)
	}
	if total := view.TenantProvisioned(t) - view.Provisioned[name] + provisioned; provisioned > view.Provisioned[name] && total > maxProvisioned {
		return apierr.New(apierr.InvalidParameterValue,
			"provisioning %d for %s takes tenant %s's provisioned concurrency to %d, over its cap of %d; the root token raises the cap: gust quota set --tenant %s --max-provisioned N",
			provisioned, name, t, total, maxProvisioned, t)
	}
	return nil
}

// SetCaps sets tenant t's caps: a nil cap stays as it is, a negative one
// returns to the default. A cap lowered below what the tenant uses keeps
// its settings and refuses only increases.
func (q *quotas) SetCaps(ctx context.Context, t string, maxReserved, maxProvisioned *int64) (*gustv1.Quota, error) {
	if !tenant.Valid(t) {
		return nil, apierr.New(apierr.InvalidParameterValue, "caps are a tenant's: --tenant must name one (1 to 32 lower-case letters, digits, '-' or '_'), not %q", t)
	}
	view := q.store.Quota()
	caps := &raftv1.TenantCaps{Tenant: t}
	if v, ok := view.MaxReserved[t]; ok {
		caps.MaxReserved = &v
	}
	if v, ok := view.MaxProvisioned[t]; ok {
		caps.MaxProvisioned = &v
	}
	update := func(cur **int64, v *int64) {
		switch {
		case v == nil:
		case *v < 0:
			*cur = nil
		default:
			n := *v
			*cur = &n
		}
	}
	update(&caps.MaxReserved, maxReserved)
	update(&caps.MaxProvisioned, maxProvisioned)
	if err := q.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdSetTenantCaps, Msg: &raftv1.SetTenantCaps{Caps: caps}}, nil); err != nil {
		return nil, fmt.Errorf("set tenant %s's caps: %w", t, err)
	}
	return q.Get(t), nil
}
