package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// allCombos is every placement with the fixed and both hybrid policies, and
// the per-worker variant once.
func allCombos() []Combo {
	var cs []Combo
	for _, p := range Placements {
		for _, k := range []KeepAlive{FixedKeepAlive(10 * time.Minute), HybridKeepAlive(0), HybridKeepAlive(10 * time.Minute)} {
			cs = append(cs, Combo{p, k})
		}
	}
	return append(cs, Combo{PlaceGust, HybridKeepAlive(0).PerWorkerUntrained()})
}

// deterministic strips what depends on the wall clock.
func deterministic(r Result) Result {
	r.PlaceP50, r.PlaceP99, r.Wall = 0, 0, 0
	return r
}

func TestDeterministic(t *testing.T) {
	cfg := ShortConfig()
	combos := []Combo{{PlaceGust, HybridKeepAlive(0)}, {PlaceRandom, FixedKeepAlive(10 * time.Minute)}}
	a, err := RunAll(cfg, combos, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RunAll(cfg, combos, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		x, y := deterministic(a[i]), deterministic(b[i])
		if !equalResults(x, y) {
			t.Errorf("%s × %s differs between runs:\n%+v\n%+v", combos[i].Placement, combos[i].KeepAlive.Name, x, y)
		}
	}
	cfg.Seed++
	c, err := RunAll(cfg, combos[:1], 1)
	if err != nil {
		t.Fatal(err)
	}
	if equalResults(deterministic(c[0]), deterministic(a[0])) {
		t.Error("another seed gave the same result")
	}
}

func equalResults(a, b Result) bool { return a == b }

// TestInvariants runs every combination with the pool checks on and checks
// that every invocation is accounted for and memory stays within capacity.
func TestInvariants(t *testing.T) {
	cfg := ShortConfig()
	cfg.Check = true
	res, err := RunAll(cfg, allCombos(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var prewarms, evictions, expiries int64
	for _, r := range res {
		name := r.Placement + " × " + r.KeepAlive
		if r.Invocations == 0 {
			t.Fatalf("%s: no invocations", name)
		}
		if r.Warm+r.Cold+r.Dropped != r.Invocations {
			t.Errorf("%s: %d warm + %d cold + %d dropped != %d invocations", name, r.Warm, r.Cold, r.Dropped, r.Invocations)
		}
		var inv, cold int64
		for _, c := range r.ByClass {
			inv += c.Invocations
			cold += c.Cold
		}
		if inv != r.Invocations || cold != r.Cold {
			t.Errorf("%s: classes add up to %d invocations, %d cold; want %d, %d", name, inv, cold, r.Invocations, r.Cold)
		}
		if r.MaxWorkerUsedMB > cfg.WorkerMemoryMB {
			t.Errorf("%s: a worker granted %d MB of %d", name, r.MaxWorkerUsedMB, cfg.WorkerMemoryMB)
		}
		if r.PeakIdleMB < r.MeanIdleMB || r.MeanIdleMB < 0 {
			t.Errorf("%s: idle memory mean %.0f peak %.0f", name, r.MeanIdleMB, r.PeakIdleMB)
		}
		if r.Placement == PlaceGust {
			var picks int64
			for _, n := range r.Tiers {
				picks += n
			}
			if picks < r.Invocations-r.Dropped {
				t.Errorf("%s: %d picks for %d placed invocations", name, picks, r.Invocations-r.Dropped)
			}
		}
		prewarms += r.Prewarms
		evictions += r.Evictions
		expiries += r.Expiries
	}
	// The short run must reach every path, or passing proves little.
	if prewarms == 0 || evictions == 0 || expiries == 0 {
		t.Errorf("paths not exercised: %d pre-warms, %d evictions, %d expiries", prewarms, evictions, expiries)
	}
}

// TestWorkloadShapes checks the generator against the Azure 2019 shapes on
// a large population.
func TestWorkloadShapes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Apps = 40000
	cfg.WorkerMemoryMB = 1 << 20 // no memory cap from the worker size
	w := NewWorkload(cfg)
	s := Summarize(w)
	var lnDur []float64
	var timers int
	for i := range w.Apps {
		a := &w.Apps[i]
		lnDur = append(lnDur, math.Log(a.MeanDuration.Seconds()))
		if a.Period > 0 {
			timers++
			if a.Period < time.Minute || a.Period%time.Minute != 0 {
				t.Fatalf("timer period %v", a.Period)
			}
		}
	}
	mean, sd := meanSD(lnDur)
	cases := []struct {
		name          string
		got, lo, hi   float64
		unit, comment string
	}{
		{"apps at <= 1/h", s.ShareHourly, 0.44, 0.47, "", "45% in the trace; timers round their period"},
		{"apps at <= 1/min", s.ShareMinute, 0.80, 0.83, "", "81% in the trace"},
		{"orders of magnitude", math.Log10(s.MaxRate / s.MinRate), 7.8, 8.001, "", ""},
		{"timer share", float64(timers) / float64(len(w.Apps)), 0.145, 0.167, "", "15.6%"},
		{"median duration", s.MedianDuration.Seconds(), 0.65, 0.72, "s", "e^-0.38 = 0.684 s"},
		{"mean ln duration", mean, -0.45, -0.31, "", "μ = -0.38 (caps trim the tails)"},
		{"sd ln duration", sd, 2.2, 2.4, "", "σ = 2.36"},
		{"median memory", float64(s.MedianMemoryMB), 136, 144, "MB", "Burr median 139.6 MB"},
	}
	for _, c := range cases {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("%s = %.4g%s, want in [%g, %g] (%s)", c.name, c.got, c.unit, c.lo, c.hi, c.comment)
		}
	}
}

func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}

func TestDistributions(t *testing.T) {
	cases := []struct {
		name      string
		got, want float64
	}{
		{"rate at u=0", drawRate(0), math.Pow(10, -3.6)},
		{"rate at the hourly quantile", drawRate(shareHourly), 1},
		{"rate at the minute quantile", drawRate(shareMinute), 60},
		{"rate at u=1", drawRate(1), math.Pow(10, 4.4)},
		{"Burr median", burr(0.5), 139.6},
		{"Burr 99th percentile", burr(0.99), 640.4},
	}
	for _, c := range cases {
		if math.Abs(c.got-c.want)/c.want > 0.002 {
			t.Errorf("%s = %.5g, want %.5g", c.name, c.got, c.want)
		}
	}
}

func TestPairwiseCoprimes(t *testing.T) {
	cases := []struct {
		n    int
		want []int
	}{
		{1, []int{1}},
		{10, []int{1, 3, 7}},
		{12, []int{1, 5, 7, 11}},
	}
	for _, c := range cases {
		if got := pairwiseCoprimes(c.n); !slices.Equal(got, c.want) {
			t.Errorf("pairwiseCoprimes(%d) = %v, want %v", c.n, got, c.want)
		}
	}
	// Every step size walks all 1,000 workers before repeating one.
	for _, step := range pairwiseCoprimes(1000) {
		seen := make([]bool, 1000)
		for i := range 1000 {
			w := (7 + i*step) % 1000
			if seen[w] {
				t.Fatalf("step %d revisits worker %d", step, w)
			}
			seen[w] = true
		}
	}
}

// testCluster is n workers of memMB with one app of appMB.
func testCluster(n int, memMB, appMB int64) (*cluster, *App) {
	cfg := Config{Workers: n, WorkerMemoryMB: memMB}
	apps := []App{{ID: 0, Key: "a:1", Digest: "da", MemoryMB: appMB, hash: 12345}}
	return newCluster(cfg, apps), &apps[0]
}

func TestHashPlacer(t *testing.T) {
	c, app := testCluster(10, 1000, 400)
	h := newHashPlacer(c)
	home, ok := h.place(app)
	if !ok || home != int32(app.hash%10) {
		t.Fatalf("place = %d, %v; want the home worker %d", home, ok, app.hash%10)
	}
	step := int32(h.steps[app.hash%uint64(len(h.steps))])
	want := []int32{home, home, (home + step) % 10, (home + step) % 10, (home + 2*step) % 10}
	for i, w := range want {
		got, ok := h.place(app)
		if !ok || got != w {
			t.Fatalf("placement %d = %d, %v; want %d", i, got, ok, w)
		}
		// Run it there: two 400 MB fit in 1,000, a third does not.
		wk := c.workers[got]
		c.reserve(wk, app.MemoryMB)
		c.markBusy(wk, c.start(wk, 0))
	}
}

func TestLeastLoadedAndRandom(t *testing.T) {
	c, app := testCluster(5, 1000, 300)
	ll := newLeastLoaded(c)
	rp := &randomPlacer{c: c, r: newTestRand()}
	// Fill workers 0..3 with busy sandboxes so only worker 4 has room.
	for w := range 4 {
		wk := c.workers[w]
		for range 3 {
			c.reserve(wk, app.MemoryMB)
			c.markBusy(wk, c.start(wk, 0))
		}
		ll.changed(wk)
	}
	for range 50 {
		if w, ok := ll.place(app); !ok || w != 4 {
			t.Fatalf("least-loaded = %d, %v; want 4", w, ok)
		}
		if w, ok := rp.place(app); !ok || w != 4 {
			t.Fatalf("random = %d, %v; want 4", w, ok)
		}
	}
	big := *app
	big.MemoryMB = 1001
	if _, ok := ll.place(&big); ok {
		t.Fatal("least-loaded placed what fits nowhere")
	}
	if _, ok := rp.place(&big); ok {
		t.Fatal("random placed what fits nowhere")
	}
}

// TestPoolMirrorsWorker checks the pool semantics taken from worker/pool.go:
// reuse the most recently used idle sandbox, evict the least recently used.
func TestPoolMirrorsWorker(t *testing.T) {
	c, _ := testCluster(1, 1000, 300)
	wk := c.workers[0]
	var sbs []int32
	for i := range 3 { // three idle sandboxes, used at t = 0, 1, 2
		c.reserve(wk, 300)
		sb := c.start(wk, 0)
		c.markBusy(wk, sb)
		wk.busyMB -= 300
		c.busyMB -= 300
		c.pushIdle(wk, sb, int64(i))
		sbs = append(sbs, sb)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	if got := c.take(wk, 0); got != sbs[2] {
		t.Fatalf("take = %d, want the most recent %d", got, sbs[2])
	}
	// 100 MB free and 600 idle: a 400 MB start evicts the oldest only.
	evicted, ok := c.reserve(wk, 400)
	if !ok || evicted != 1 || c.sbs[sbs[0]].live || !c.sbs[sbs[1]].live {
		t.Fatalf("reserve: evicted %d ok %v; oldest live %v, middle live %v", evicted, ok, c.sbs[sbs[0]].live, c.sbs[sbs[1]].live)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	// Busy memory is never evicted: 300 busy + 300 idle, 800 cannot fit.
	if _, ok := c.reserve(wk, 800); ok || !c.sbs[sbs[2]].live {
		t.Fatalf("reserve of 800 MB next to 300 busy: ok %v, busy sandbox live %v", ok, c.sbs[sbs[2]].live)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
}

// TestTimerScenarios runs one timer app, invoked every five minutes, on one
// worker: the keep-alive policy alone decides warm or cold.
func TestTimerScenarios(t *testing.T) {
	cases := []struct {
		name      string
		keep      KeepAlive
		wantCold  int64 // in the measured hour
		prewarms  bool
		idleAtLow bool // idle memory well under the fixed 10 minutes'
	}{
		{"fixed 10m: warm", FixedKeepAlive(10 * time.Minute), 0, false, false},
		{"fixed 4m: cold every time", FixedKeepAlive(4 * time.Minute), 12, false, false},
		{"hybrid, trained: pre-warmed", HybridKeepAlive(0), 0, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Seed: 3, Apps: 1, Workers: 1, WorkerMemoryMB: 1024, Warmup: 30 * time.Minute,
				Measure: time.Hour, ColdStart: 100 * time.Millisecond, Check: true}
			cfg = cfg.withDefaults()
			w := &Workload{cfg: cfg, Apps: []App{{ID: 0, Key: "timer:1", Digest: "dt", RatePerHour: 12,
				Period: 5 * time.Minute, MeanDuration: time.Second, MemoryMB: 256}}}
			r, err := Run(cfg, w, Combo{PlaceGust, tc.keep})
			if err != nil {
				t.Fatal(err)
			}
			if r.Invocations != 12 || r.Cold != tc.wantCold {
				t.Fatalf("%d invocations, %d cold; want 12, %d", r.Invocations, r.Cold, tc.wantCold)
			}
			if (r.Prewarms > 0) != tc.prewarms {
				t.Fatalf("%d pre-warms", r.Prewarms)
			}
			if low := r.MeanIdleMB < 0.5*256; low != tc.idleAtLow {
				t.Fatalf("mean idle %.0f MB", r.MeanIdleMB)
			}
		})
	}
}

func TestStudyMarkdown(t *testing.T) {
	st := Study{Config: ShortConfig(), Memory: []int64{2048}, Extended: true}
	rep, err := st.Run()
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	for _, want := range append(Placements, "fixed 10m0s", "hybrid, floor 10m0s", "per worker, untrained",
		"### Goals", "Adopted keep-alive", "| 2048 |") {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if len(rep.Main) != 2*len(Placements) || len(rep.Sweep) != 1 {
		t.Fatalf("%d main runs, %d sweep rows", len(rep.Main), len(rep.Sweep))
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
