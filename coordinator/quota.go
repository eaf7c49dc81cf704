package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/gustfaas/gust/coordinator/admission"
	"github.com/gustfaas/gust/internal/apierr"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
)

// quotas is the logic behind quota and concurrency settings, and the
// coordinator's side of the lease protocol.
type quotas struct {
	store   *raftstore.Store
	write   *writer
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
		name := fn.GetConfig().GetName()
		inPool := raftstore.AccountPool
		if view.Reserved[name] > 0 {
			inPool = raftstore.FunctionPool(name)
		}
		if inPool == pool {
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
		return q.grant(ctx, req)
	}
	leader, _ := q.store.Leader()
	if q.write.peers == nil || leader == "" {
		return nil, raftstore.ErrNotLeader
	}
	addr, ok := q.write.peers.CoordinatorAddrs()[leader]
	if !ok {
		return nil, raftstore.ErrNotLeader
	}
	c, err := q.write.clients.get(addr)
	if err != nil {
		return nil, err
	}
	return c.RenewLeases(ctx, req)
}

// grant decides and commits leases; leader only.
func (q *quotas) grant(ctx context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error) {
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

// unreservedFloor is what reservations must leave to everyone else.
func (q *quotas) unreservedFloor(limit int64) int64 {
	return min(int64(q.limits.UnreservedMin), limit)
}

func (q *quotas) get() *gustv1.Quota {
	view := q.store.Quota()
	out := &gustv1.Quota{Concurrency: view.AccountLimit, Reserved: view.ReservedTotal(), Unreserved: view.PoolLimit(raftstore.AccountPool)}
	for _, byCoord := range view.Leases {
		for _, l := range byCoord {
			out.InFlight += l.GetInFlight()
			out.Throttled += l.GetThrottled()
		}
	}
	return out
}

func (q *quotas) set(ctx context.Context, tenant string, limit int64) (*gustv1.Quota, error) {
	if tenant != "" && tenant != "default" {
		return nil, apierr.New(apierr.InvalidParameterValue, "tenants arrive with auth; only the default tenant exists")
	}
	view := q.store.Quota()
	if limit < 1 {
		return nil, apierr.New(apierr.InvalidParameterValue, "concurrency must be at least 1")
	}
	if limit-view.ReservedTotal() < q.unreservedFloor(limit) {
		return nil, apierr.New(apierr.InvalidParameterValue,
			"concurrency %d leaves less than %d unreserved after %d reserved", limit, q.unreservedFloor(limit), view.ReservedTotal())
	}
	changed := time.Now()
	if err := q.write.apply(ctx, raftstore.Command{Type: raftstore.CmdSetAccountLimit, Msg: &raftv1.SetAccountLimit{Limit: limit}}, nil); err != nil {
		return nil, err
	}
	q.awaitLeases(ctx, changed)
	return q.get(), nil
}

// concurrency returns a function's settings and, for a reserved function,
// its pool's use as the coordinators last reported it.
func (q *quotas) concurrency(name string) *gustv1.Concurrency {
	view := q.store.Quota()
	out := &gustv1.Concurrency{Reserved: view.Reserved[name], Provisioned: view.Provisioned[name]}
	for _, l := range view.Leases[raftstore.FunctionPool(name)] {
		out.InFlight += l.GetInFlight()
		out.Throttled += l.GetThrottled()
	}
	return out
}

func (q *quotas) setConcurrency(ctx context.Context, fns *functions, name string, reserved, provisioned int64) (*gustv1.Concurrency, error) {
	if _, err := fns.get(ctx, name, ""); err != nil {
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
	othersReserved := view.ReservedTotal() - view.Reserved[name]
	if left := view.AccountLimit - othersReserved - reserved; reserved > 0 && left < q.unreservedFloor(view.AccountLimit) {
		return nil, bad("reserving %d leaves %d unreserved; at least %d must stay unreserved", reserved, left, q.unreservedFloor(view.AccountLimit))
	}
	changed := time.Now()
	err := q.write.apply(ctx, raftstore.Command{Type: raftstore.CmdSetFunctionConcurrency,
		Msg: &raftv1.SetFunctionConcurrency{Function: name, Reserved: reserved, Provisioned: provisioned}}, nil)
	if err != nil {
		return nil, err
	}
	q.awaitLeases(ctx, changed)
	return q.concurrency(name), nil
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
