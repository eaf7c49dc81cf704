package placement

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// The production-sized view the latency goal is stated for.
const (
	benchWorkers  = 1000
	benchKeys     = 10000 // function versions with warm sandboxes
	benchSpread   = 10    // workers holding each key, one idle sandbox each: 100,000 sandboxes
	benchMemoryMB = 128
	// benchRefresh is how many picks run between two full state refreshes.
	// Real workers report a few times a second; without refreshes the
	// optimistic guesses would drain every sandbox and the mix would drift
	// to all-cold. 20,000 picks use about 10% of the warm sandboxes.
	benchRefresh = 20000
)

type query struct {
	key, digest string
}

// cluster is a view plus the states to restore it from and a query mix.
type cluster struct {
	p       *Placer
	states  []WorkerState
	queries []query
}

// newCluster builds 1,000 workers holding 100,000 idle sandboxes of 10,000
// keys, each worker with the digests of its ~100 keys, and a query mix of
// 50% warm hits, 30% cached (a new version of cached code, no sandbox) and
// 20% cold (code on no worker). Query strings are built here so the
// measured loop allocates nothing itself.
func newCluster() *cluster {
	r := rand.New(rand.NewPCG(42, 43))
	c := &cluster{p: New(1), states: make([]WorkerState, benchWorkers)}
	for w := range c.states {
		c.states[w] = WorkerState{
			Name:         fmt.Sprintf("worker-%04d", w),
			FreeMemoryMB: 16384 + int64(r.IntN(49152)),
			Idle:         make(map[string]int32),
		}
	}
	for k := range benchKeys {
		key, digest := fmt.Sprintf("fn-%05d:1", k), fmt.Sprintf("sha256-%05d", k)
		for j := range benchSpread {
			s := &c.states[(k*7+j*100)%benchWorkers] // 10 distinct workers per key
			s.Idle[key] = 1
			s.Digests = append(s.Digests, digest)
		}
	}
	for _, s := range c.states {
		c.p.Update(s)
	}
	c.queries = make([]query, 4096)
	for i := range c.queries {
		k := r.IntN(benchKeys)
		switch x := r.IntN(10); {
		case x < 5:
			c.queries[i] = query{fmt.Sprintf("fn-%05d:1", k), fmt.Sprintf("sha256-%05d", k)}
		case x < 8:
			c.queries[i] = query{fmt.Sprintf("fn-%05d:2", k), fmt.Sprintf("sha256-%05d", k)}
		default:
			c.queries[i] = query{fmt.Sprintf("new-%05d:1", k), fmt.Sprintf("sha256-new-%05d", k)}
		}
	}
	return c
}

// refresh replays every worker's report, as the state streams would.
func (c *cluster) refresh() {
	for _, s := range c.states {
		c.p.Update(s)
	}
}

func BenchmarkPick(b *testing.B) {
	c := newCluster()
	if n := c.sandboxes(); n != benchKeys*benchSpread {
		b.Fatalf("%d sandboxes", n)
	}
	var tiers [Random + 1]int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%benchRefresh == benchRefresh-1 {
			b.StopTimer()
			c.refresh()
			b.StartTimer()
		}
		q := c.queries[i%len(c.queries)]
		d, ok := c.p.Pick(q.key, q.digest, benchMemoryMB, nil)
		if !ok {
			b.Fatalf("no worker for %+v", q)
		}
		tiers[d.Tier]++
	}
	b.StopTimer()
	for _, t := range []Tier{Warm, Cached, Random} {
		b.ReportMetric(float64(tiers[t])/float64(b.N)*100, "%"+t.String())
	}
}

// sandboxes counts idle sandboxes in the view.
func (c *cluster) sandboxes() int {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	n := 0
	for _, ps := range c.p.keys {
		for _, e := range ps.e {
			n += int(e.count)
		}
	}
	return n
}

// TestPickLatencyP99 times 100,000 single picks on the production-sized view.
// The bound is 10x the 20 µs goal so a noisy or -race run does not flake;
// the logged percentiles are the number to watch.
func TestPickLatencyP99(t *testing.T) {
	const picks = 100000
	c := newCluster()
	lat := make([]time.Duration, picks)
	runtime.GC() // start clean: setup garbage should not be collected mid-measurement
	for i := range picks {
		if i%benchRefresh == benchRefresh-1 {
			c.refresh()
		}
		q := c.queries[i%len(c.queries)]
		start := time.Now()
		_, ok := c.p.Pick(q.key, q.digest, benchMemoryMB, nil)
		lat[i] = time.Since(start)
		if !ok {
			t.Fatalf("no worker for %+v", q)
		}
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[int(q*float64(picks-1))] }
	t.Logf("Pick latency over %d calls (1000 workers, 100000 sandboxes): p50 %v  p99 %v  p99.9 %v  max %v",
		picks, pct(0.50), pct(0.99), pct(0.999), lat[picks-1])
	if p99 := pct(0.99); p99 > 200*time.Microsecond {
		t.Fatalf("p99 %v > 200µs", p99)
	}
}

// TestPickDoesNotAllocate checks every tier and the failure path, with and
// without Avoid, on the production-sized view. Each path first checks it
// really reaches its tier, so a passing test covers what it names.
func TestPickDoesNotAllocate(t *testing.T) {
	c := newCluster()
	// A hot key with enough sandboxes that 1,000 warm picks never drain it.
	c.states = append(c.states, WorkerState{Name: "hot", FreeMemoryMB: 1 << 20, Idle: map[string]int32{"hot:1": 1 << 30}})
	c.refresh()
	var av Avoid
	av.Add("worker-0007")
	av.Add("worker-0107")
	av.Add("nobody")
	paths := []struct {
		name        string
		key, digest string
		mem         int64
		avoid       *Avoid
		want        Tier
	}{
		{"warm", "hot:1", "sha256-hot", benchMemoryMB, nil, Warm},
		{"cached", "fn-00002:2", "sha256-00002", benchMemoryMB, nil, Cached},
		{"random", "new:1", "sha256-new", benchMemoryMB, nil, Random},
		{"warm avoid", "hot:1", "sha256-hot", benchMemoryMB, &av, Warm},
		{"cached avoid", "fn-00001:2", "sha256-00001", benchMemoryMB, &av, Cached},
		{"none", "new:1", "sha256-new", 1 << 40, &av, 0},
	}
	for _, pt := range paths {
		if d, _ := c.p.Pick(pt.key, pt.digest, pt.mem, pt.avoid); d.Tier != pt.want {
			t.Fatalf("%s: tier %v, want %v", pt.name, d.Tier, pt.want)
		}
		var d Decision
		if a := testing.AllocsPerRun(1000, func() {
			d, _ = c.p.Pick(pt.key, pt.digest, pt.mem, pt.avoid)
		}); a != 0 {
			t.Errorf("%s: Pick allocates %.2f times per call", pt.name, a)
		}
		_ = d
	}
	// The benchmark's mix, fresh state, Avoid built on the caller's stack.
	c.refresh()
	i := 0
	if a := testing.AllocsPerRun(2000, func() {
		q := c.queries[i%len(c.queries)]
		i++
		var av Avoid
		av.Add("worker-0001")
		c.p.Pick(q.key, q.digest, benchMemoryMB, &av)
	}); a != 0 {
		t.Errorf("mix: Pick allocates %.2f times per call", a)
	}
}
