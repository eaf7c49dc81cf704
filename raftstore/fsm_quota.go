package raftstore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gustfaas/gust/internal/tenant"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(CmdSetAccountLimit, applySetAccountLimit)
	register(CmdSetFunctionConcurrency, applySetFunctionConcurrency)
	register(CmdGrantLeases, applyGrantLeases)
	register(CmdSetTenantCaps, applySetTenantCaps)
	// A snapshot's quota records restore as their commands apply.
	registerRecord(recAccount, "account limit", func(s *state, c *raftv1.SetAccountLimit) error {
		s.quota.setAccountLimit(c)
		return nil
	})
	registerRecord(recConcurrency, "function concurrency", func(s *state, c *raftv1.SetFunctionConcurrency) error {
		s.quota.setConcurrency(c)
		return nil
	})
	registerRecord(recLeases, "leases", func(s *state, c *raftv1.GrantLeases) error {
		s.quota.grant(c)
		return nil
	})
	registerRecord(recTenantCaps, "tenant caps", func(s *state, c *raftv1.SetTenantCaps) error {
		if err := s.quota.setCaps(c.GetCaps()); err != nil {
			return fmt.Errorf("restore tenant caps: %w", err)
		}
		return nil
	})
}

// DefaultAccountLimit is Lambda's default account concurrency.
const DefaultAccountLimit = 1000

// AccountPool names the account's unreserved pool; FunctionPool a reserved one.
const AccountPool = ""

// FunctionPool is the pool of a function with reserved concurrency.
func FunctionPool(name string) string { return "fn/" + name }

// TenantPool is the pool of a tenant with its own concurrency limit: its
// functions without a reservation draw on it, and it is carved out of the
// account limit as a reservation is.
func TenantPool(t string) string { return "tenant/" + t }

// quotaState holds limits, reservations and the leader's grants.
type quotaState struct {
	accountLimit map[string]int64 // tenant → limit
	concurrency  map[string]*raftv1.SetFunctionConcurrency
	// leases: pool → coordinator → latest grant.
	leases map[string]map[string]*raftv1.Lease
	caps   map[string]*raftv1.TenantCaps // tenant → caps root set
}

func newQuotaState() quotaState {
	return quotaState{accountLimit: map[string]int64{}, concurrency: map[string]*raftv1.SetFunctionConcurrency{},
		leases: map[string]map[string]*raftv1.Lease{}, caps: map[string]*raftv1.TenantCaps{}}
}

func applySetAccountLimit(s *state, body []byte) any {
	var c raftv1.SetAccountLimit
	mustUnmarshal(body, &c)
	s.quota.setAccountLimit(&c)
	return nil
}

func (q *quotaState) setAccountLimit(c *raftv1.SetAccountLimit) {
	if c.GetTenant() != "" && c.GetLimit() <= 0 {
		delete(q.accountLimit, c.GetTenant()) // back to the shared pool
		return
	}
	q.accountLimit[c.GetTenant()] = c.GetLimit()
}

func applySetFunctionConcurrency(s *state, body []byte) any {
	var c raftv1.SetFunctionConcurrency
	mustUnmarshal(body, &c)
	s.quota.setConcurrency(&c)
	return nil
}

func (q *quotaState) setConcurrency(c *raftv1.SetFunctionConcurrency) {
	if c.GetReserved() == 0 && c.GetProvisioned() == 0 {
		delete(q.concurrency, c.GetFunction())
		return
	}
	q.concurrency[c.GetFunction()] = c
}

func applyGrantLeases(s *state, body []byte) any {
	var c raftv1.GrantLeases
	mustUnmarshal(body, &c)
	s.quota.grant(&c)
	return nil
}

func (q *quotaState) grant(c *raftv1.GrantLeases) {
	for _, l := range c.GetLeases() {
		if l == nil {
			continue
		}
		byCoord := q.leases[l.GetPool()]
		if byCoord == nil {
			byCoord = map[string]*raftv1.Lease{}
			q.leases[l.GetPool()] = byCoord
		}
		byCoord[c.GetCoordinator()] = l
	}
}

func applySetTenantCaps(s *state, body []byte) any {
	var c raftv1.SetTenantCaps
	mustUnmarshal(body, &c)
	if err := s.quota.setCaps(c.GetCaps()); err != nil {
		return err
	}
	return nil
}

func (q *quotaState) setCaps(caps *raftv1.TenantCaps) error {
	if caps.GetTenant() == "" {
		return fmt.Errorf("tenant caps without a tenant: %w", ErrInvalid)
	}
	if caps.GetMaxReserved() < 0 || caps.GetMaxProvisioned() < 0 {
		return fmt.Errorf("tenant %s: negative caps: %w", caps.GetTenant(), ErrInvalid)
	}
	if caps.MaxReserved == nil && caps.MaxProvisioned == nil {
		delete(q.caps, caps.GetTenant()) // back to the defaults
		return nil
	}
	q.caps[caps.GetTenant()] = caps
	return nil
}

func (q *quotaState) snapshot(recs []record) []record {
	for _, tenant := range sortedKeys(q.accountLimit) {
		recs = appendRecord(recs, recAccount, &raftv1.SetAccountLimit{Tenant: tenant, Limit: q.accountLimit[tenant]})
	}
	recs = appendSorted(recs, recConcurrency, q.concurrency)
	for _, pool := range sortedKeys(q.leases) {
		for _, coord := range sortedKeys(q.leases[pool]) {
			recs = appendRecord(recs, recLeases, &raftv1.GrantLeases{Coordinator: coord, Leases: []*raftv1.Lease{q.leases[pool][coord]}})
		}
	}
	for _, t := range sortedKeys(q.caps) {
		recs = appendRecord(recs, recTenantCaps, &raftv1.SetTenantCaps{Caps: q.caps[t]})
	}
	return recs
}

// QuotaView is a consistent read of the quota state.
type QuotaView struct {
	// AccountLimit is the cluster's limit: every pool is a share of it.
	AccountLimit int64
	// TenantLimits maps tenants with their own limit to it.
	TenantLimits map[string]int64
	// Reserved maps functions with reserved concurrency to it.
	Reserved map[string]int64
	// Provisioned maps functions with provisioned concurrency to it.
	Provisioned map[string]int64
	// Leases maps pool → coordinator → latest grant.
	Leases map[string]map[string]*raftv1.Lease
	// MaxReserved and MaxProvisioned map tenants to the caps root set on
	// the sums of their functions' reserved and provisioned concurrency;
	// a tenant missing from a map has the default.
	MaxReserved    map[string]int64
	MaxProvisioned map[string]int64
}

// ReservedTotal sums what is carved out of the account limit: tenants'
// limits, and the reservations of functions not inside one.
func (v QuotaView) ReservedTotal() int64 {
	var n int64
	for fn, r := range v.Reserved {
		if _, inTenant := v.TenantLimits[tenantOf(fn)]; !inTenant {
			n += r
		}
	}
	for _, l := range v.TenantLimits {
		n += l
	}
	return n
}

// TenantReserved sums the reservations of tenant t's functions.
func (v QuotaView) TenantReserved(t string) int64 { return sumOwned(t, v.Reserved) }

// TenantProvisioned sums the provisioned concurrency of tenant t's functions.
func (v QuotaView) TenantProvisioned(t string) int64 { return sumOwned(t, v.Provisioned) }

// sumOwned sums the values of tenant t's functions in a per-function map.
func sumOwned(t string, byFunction map[string]int64) int64 {
	var n int64
	for fn, v := range byFunction {
		if tenant.Owns(t, fn) {
			n += v
		}
	}
	return n
}

// PoolLimit is the number of slots a pool has.
func (v QuotaView) PoolLimit(pool string) int64 {
	if name, ok := strings.CutPrefix(pool, "fn/"); ok {
		return v.Reserved[name]
	}
	if t, ok := strings.CutPrefix(pool, "tenant/"); ok {
		return v.TenantLimits[t] - v.TenantReserved(t)
	}
	return v.AccountLimit - v.ReservedTotal()
}

// PoolOf names the pool an invocation of a function draws on: its own
// reservation, else its tenant's limit, else the account's.
func (v QuotaView) PoolOf(fn string) string {
	if v.Reserved[fn] > 0 {
		return FunctionPool(fn)
	}
	if t := tenantOf(fn); t != "" {
		if _, ok := v.TenantLimits[t]; ok {
			return TenantPool(t)
		}
	}
	return AccountPool
}

// Pools lists the account pool and every reserved function's pool.
func (v QuotaView) Pools() []string {
	pools := []string{AccountPool}
	names := make([]string, 0, len(v.Reserved))
	for n := range v.Reserved {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pools = append(pools, FunctionPool(n))
	}
	for _, t := range sortedKeys(v.TenantLimits) {
		pools = append(pools, TenantPool(t))
	}
	return pools
}

// Quota returns a copy of the quota state.
func (s *Store) Quota() QuotaView {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	q := s.fsm.st.quota
	v := QuotaView{AccountLimit: DefaultAccountLimit, TenantLimits: map[string]int64{}, Reserved: map[string]int64{},
		Provisioned: map[string]int64{}, Leases: map[string]map[string]*raftv1.Lease{},
		MaxReserved: map[string]int64{}, MaxProvisioned: map[string]int64{}}
	for t, l := range q.accountLimit {
		if t == "" {
			v.AccountLimit = l
		} else {
			v.TenantLimits[t] = l
		}
	}
	for fn, c := range q.concurrency {
		if c.GetReserved() > 0 {
			v.Reserved[fn] = c.GetReserved()
		}
		if c.GetProvisioned() > 0 {
			v.Provisioned[fn] = c.GetProvisioned()
		}
	}
	for pool, byCoord := range q.leases {
		m := make(map[string]*raftv1.Lease, len(byCoord))
		for c, l := range byCoord {
			m[c] = proto.Clone(l).(*raftv1.Lease)
		}
		v.Leases[pool] = m
	}
	for t, c := range q.caps {
		if c.MaxReserved != nil {
			v.MaxReserved[t] = c.GetMaxReserved()
		}
		if c.MaxProvisioned != nil {
			v.MaxProvisioned[t] = c.GetMaxProvisioned()
		}
	}
	return v
}

// tenantOf is the tenant of a stored function name ("" for root's).
func tenantOf(fn string) string {
	t, _ := tenant.Split(fn)
	return t
}
