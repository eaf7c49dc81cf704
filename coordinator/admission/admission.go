package admission

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/tenant"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/raftstore"
)

// Throttle reasons, as Lambda names them.
const (
	ReasonAccount  = "ConcurrentInvocationLimitExceeded"
	ReasonReserved = "ReservedFunctionConcurrentInvocationLimitExceeded"
)

// Granter asks the Raft leader for leases; the coordinator implements it
// (locally on the leader, over PeerService elsewhere).
type Granter interface {
	RenewLeases(ctx context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error)
}

// View is what admission reads of the replicated state.
type View interface {
	Quota() raftstore.QuotaView
	// MaxTimeout returns the longest timeout among functions in a pool.
	MaxTimeout(pool string) time.Duration
	// Coordinators is how many coordinators share the limits.
	Coordinators() int
}

// Admission holds this coordinator's leases.
type Admission struct {
	name string
	view View
	log  *slog.Logger

	mu       sync.RWMutex
	leases   map[string]*Lease
	reserved atomic.Pointer[map[string]bool] // functions with their own pool
	tenants  atomic.Pointer[map[string]bool] // tenants with their own pool
	wake     chan struct{}
}

// New returns an admission with no leases yet; Run obtains them.
func New(name string, view View, log *slog.Logger) *Admission {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Admission{name: name, view: view, log: log, leases: map[string]*Lease{}, wake: make(chan struct{}, 1)}
	empty := map[string]bool{}
	a.reserved.Store(&empty)
	a.tenants.Store(&empty)
	return a
}

// Admit takes a slot for one invocation of fn, or refuses with
// TooManyRequestsException naming the limit. The hot path is a map lookup
// and a compare-and-swap; no network, no allocation.
func (a *Admission) Admit(fn string, timeout time.Duration) (*Lease, error) {
	return a.AdmitWait(context.Background(), fn, timeout, 0)
}

// AdmitWait is Admit for callers that can wait up to wait for a slot (the
// async dispatcher): a refusal makes the renewal loop ask the leader for
// more at once, and the grant usually lands within a renewal round trip.
// Failing fast instead would turn a momentarily small lease into a
// throttled attempt and a retry seconds later.
func (a *Admission) AdmitWait(ctx context.Context, fn string, timeout, wait time.Duration) (*Lease, error) {
	pool, reason := raftstore.AccountPool, ReasonAccount
	if (*a.reserved.Load())[fn] {
		pool, reason = raftstore.FunctionPool(fn), ReasonReserved
	} else if t, _ := tenant.Split(fn); t != "" && (*a.tenants.Load())[t] {
		pool = raftstore.TenantPool(t) // the tenant's own account limit
	}
	l := a.lease(pool)
	if l.tryAcquire(timeout) {
		return l, nil
	}
	if l.validUntil.Load() == 0 || int64(timeout) > l.tail.Load() {
		// A pool this coordinator never held, or a longer timeout than
		// the leader was told of: ask now and wait briefly for it.
		wait = max(wait, time.Second)
	}
	if wait > 0 {
		l.waiting.Add(1) // the next renewal asks for a slot for it
		a.poke()
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
			if l.tryAcquire(timeout) {
				l.waiting.Add(-1)
				return l, nil
			}
		}
		l.waiting.Add(-1)
	}
	l.throttled.Add(1)
	a.poke()
	return nil, &apierr.Error{Name: apierr.TooManyRequests, Reason: reason, Message: "Rate Exceeded."}
}

func (a *Admission) lease(pool string) *Lease {
	a.mu.RLock()
	l, ok := a.leases[pool]
	a.mu.RUnlock()
	if ok {
		return l
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok = a.leases[pool]; !ok {
		l = &Lease{pool: pool}
		a.leases[pool] = l
	}
	return l
}

// poke asks the renewal loop to run now.
func (a *Admission) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run renews leases until ctx ends: every 100 ms it decides what to ask
// for; it asks when that changed, when a third of the TTL has passed, or
// when an admission was refused.
func (a *Admission) Run(ctx context.Context, g Granter) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastSent time.Time
	var lastThrottled int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.wake:
		}
		view := a.view.Quota()
		reserved := make(map[string]bool, len(view.Reserved))
		for fn := range view.Reserved {
			reserved[fn] = true
		}
		a.reserved.Store(&reserved)
		tenants := make(map[string]bool, len(view.TenantLimits))
		for t := range view.TenantLimits {
			tenants[t] = true
		}
		a.tenants.Store(&tenants)
		req, throttled := a.demands(view)
		if time.Since(lastSent) < TTL/3 && throttled == lastThrottled && !a.needsGrant(req) {
			continue
		}
		t0 := monoNow()
		rctx, cancel := context.WithTimeout(ctx, TTL/2)
		res, err := g.RenewLeases(rctx, req)
		cancel()
		if err != nil {
			a.log.Debug("renew leases", "err", err)
			continue
		}
		lastSent, lastThrottled = time.Now(), throttled
		for _, gr := range res.GetGrants() {
			l := a.lease(gr.GetPool())
			l.setSlots(uint32(gr.GetSlots()))
			l.contended.Store(gr.GetContended())
			l.validUntil.Store(t0 + int64(time.Duration(gr.GetTtlMs())*time.Millisecond-Margin))
		}
	}
}

// needsGrant: some pool has never been granted, or its want differs from its slots.
func (a *Admission) needsGrant(req *nodev1.RenewLeasesRequest) bool {
	for _, d := range req.GetDemands() {
		l := a.lease(d.GetPool())
		slots, _, _ := l.Stats()
		if l.validUntil.Load() == 0 || d.GetWant() != slots {
			return true
		}
	}
	return false
}

// demands computes what to ask for in every pool: what is in flight plus
// headroom (a share of the limit, or more when requests were refused).
// Asking for less first lowers the local cap, so the leader never frees a
// slot that is still in use.
func (a *Admission) demands(view raftstore.QuotaView) (*nodev1.RenewLeasesRequest, int64) {
	req := &nodev1.RenewLeasesRequest{Coordinator: a.name}
	n := int64(max(a.view.Coordinators(), 1))
	var throttledTotal int64
	for _, pool := range view.Pools() {
		l := a.lease(pool)
		limit := max(view.PoolLimit(pool), 0)
		slots, inFlight, throttled := l.Stats()
		throttledTotal += throttled
		headroom := max(1, (limit+2*n-1)/(2*n))
		if l.contended.Load() {
			headroom = 0 // others are short: keep only what runs here
		}
		if throttled > l.lastThrottled() {
			headroom = max(headroom, limit) // refused: ask for all that is free
		}
		want := min(inFlight+l.waiting.Load()+headroom, limit)
		if want < slots {
			want = int64(l.lowerCap(uint32(want)))
		}
		tail := max(a.view.MaxTimeout(pool), time.Duration(l.tail.Load()))
		l.tail.Store(int64(tail)) // never shrinks: running invocations may need it
		l.noteThrottled(throttled)
		req.Demands = append(req.Demands, &nodev1.PoolDemand{Pool: pool, Want: want, InFlight: inFlight,
			Throttled: throttled, MaxTimeoutMs: tail.Milliseconds()})
	}
	return req, throttledTotal
}

// Stats reports a pool's lease: slots held, in flight, refused so far.
func (a *Admission) Stats(pool string) (slots, inFlight, throttled int64) {
	return a.lease(pool).Stats()
}
