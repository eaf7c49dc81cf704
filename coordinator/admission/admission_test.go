package admission

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"github.com/gustfaas/gust/raftstore"
)

func view(limit int64, leases map[string]*raftv1.Lease) raftstore.QuotaView {
	return raftstore.QuotaView{AccountLimit: limit, Reserved: map[string]int64{}, Provisioned: map[string]int64{},
		Leases: map[string]map[string]*raftv1.Lease{"": leases}}
}

func demand(coord string, want int64) *nodev1.RenewLeasesRequest {
	return &nodev1.RenewLeasesRequest{Coordinator: coord, Demands: []*nodev1.PoolDemand{{Pool: "", Want: want, MaxTimeoutMs: 3000}}}
}

// The leader never grants slots another coordinator's lease still covers:
// until expiry, plus the tail (longest timeout), plus skew.
func TestGrantNeverExceedsLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	cases := []struct {
		name   string
		others map[string]*raftv1.Lease
		want   int64
		got    int64
	}{
		{"empty pool", nil, 3, 3},
		{"capped by limit", nil, 9, 4},
		{"others hold some", map[string]*raftv1.Lease{"c2": {Slots: 3, ExpiresUnixNano: now.Add(time.Second).UnixNano()}}, 4, 1},
		{"expired but within tail", map[string]*raftv1.Lease{"c2": {Slots: 3, ExpiresUnixNano: now.Add(-time.Second).UnixNano(), TailNano: int64(3 * time.Second)}}, 4, 1},
		{"expired, tail passed, within skew", map[string]*raftv1.Lease{"c2": {Slots: 3, ExpiresUnixNano: now.Add(-3200 * time.Millisecond).UnixNano(), TailNano: int64(3 * time.Second)}}, 4, 1},
		{"fully expired", map[string]*raftv1.Lease{"c2": {Slots: 3, ExpiresUnixNano: now.Add(-10 * time.Second).UnixNano(), TailNano: int64(3 * time.Second)}}, 4, 4},
		{"own old lease ignored", map[string]*raftv1.Lease{"c1": {Slots: 4, ExpiresUnixNano: now.Add(time.Second).UnixNano()}}, 2, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			records, grants := Grant(view(4, c.others), demand("c1", c.want), now)
			if grants[0].GetSlots() != c.got || records[0].GetSlots() != c.got {
				t.Fatalf("granted %d, want %d", grants[0].GetSlots(), c.got)
			}
			if records[0].GetExpiresUnixNano() != now.Add(TTL).UnixNano() || records[0].GetTailNano() != int64(3*time.Second) {
				t.Fatalf("record %v", records[0])
			}
		})
	}
}

// fakeView is a quota view with one account pool.
type fakeView struct {
	mu      sync.Mutex
	grantMu sync.Mutex // the leader decides one grant at a time
	leases  map[string]*raftv1.Lease
	limit   int64
}

func (f *fakeView) Quota() raftstore.QuotaView {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]*raftv1.Lease{}
	for k, v := range f.leases {
		m[k] = v
	}
	return view(f.limit, m)
}
func (f *fakeView) MaxTimeout(string) time.Duration { return 3 * time.Second }
func (f *fakeView) Coordinators() int               { return 3 }

// leader grants against the fake view, as the Raft leader would.
func (f *fakeView) RenewLeases(_ context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error) {
	f.grantMu.Lock()
	defer f.grantMu.Unlock()
	records, grants := Grant(f.Quota(), req, time.Now())
	f.mu.Lock()
	for _, r := range records {
		f.leases[req.GetCoordinator()] = r
	}
	f.mu.Unlock()
	return &nodev1.RenewLeasesResponse{Grants: grants}, nil
}

// Three coordinators hammer one pool of 4 slots while their leases are
// renewed, shrunk and grown: the number admitted at once never exceeds 4.
func TestAdmissionHoldsTheLimitUnderChurn(t *testing.T) {
	f := &fakeView{leases: map[string]*raftv1.Lease{}, limit: 4}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		a := New("c"+string(rune('1'+i)), f, nil)
		go a.Run(ctx, f)
		for j := 0; j < 4; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := time.Now().Add(3 * time.Second)
				for time.Now().Before(deadline) {
					l, err := a.Admit("fn", time.Second)
					if err != nil {
						continue
					}
					admitted.Add(1)
					n := running.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					time.Sleep(time.Millisecond)
					running.Add(-1)
					l.Release()
				}
			}()
		}
	}
	wg.Wait()
	if peak.Load() > 4 {
		t.Fatalf("%d ran at once with a limit of 4", peak.Load())
	}
	if admitted.Load() < 100 {
		t.Fatalf("only %d admitted in 3 s", admitted.Load())
	}
	t.Logf("peak %d, admitted %d", peak.Load(), admitted.Load())
}

// lowerCap never goes below what is in flight, and blocks admissions above it.
func TestLowerCapKeepsInFlight(t *testing.T) {
	l := &Lease{}
	l.setSlots(4)
	l.validUntil.Store(monoNow() + int64(time.Hour))
	l.tail.Store(int64(time.Hour))
	for i := 0; i < 3; i++ {
		if !l.tryAcquire(time.Second) {
			t.Fatal("slot refused")
		}
	}
	if got := l.lowerCap(1); got != 3 {
		t.Fatalf("lowered to %d with 3 in flight", got)
	}
	if l.tryAcquire(time.Second) {
		t.Fatal("admitted above the lowered cap")
	}
	l.Release()
	if got := l.lowerCap(1); got != 2 {
		t.Fatalf("lowered to %d with 2 in flight", got)
	}
}

// An expired lease admits nothing; a timeout longer than the tail the
// leader was told of is not admitted either.
func TestExpiryAndTail(t *testing.T) {
	l := &Lease{}
	l.setSlots(4)
	l.tail.Store(int64(3 * time.Second))
	l.validUntil.Store(monoNow() - 1)
	if l.tryAcquire(time.Second) {
		t.Fatal("expired lease admitted")
	}
	l.validUntil.Store(monoNow() + int64(time.Hour))
	if l.tryAcquire(5 * time.Second) {
		t.Fatal("timeout beyond the tail admitted")
	}
	if !l.tryAcquire(time.Second) {
		t.Fatal("valid lease refused")
	}
}

func BenchmarkAdmit(b *testing.B) {
	f := &fakeView{leases: map[string]*raftv1.Lease{}, limit: 1 << 30}
	a := New("c1", f, nil)
	l := a.lease("")
	l.setSlots(1 << 30)
	l.validUntil.Store(monoNow() + int64(time.Hour))
	l.tail.Store(int64(time.Hour))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lease, err := a.Admit("fn", 3*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		lease.Release()
	}
}
