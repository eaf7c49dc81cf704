package keepalive

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock: tests move it, nothing reads the real one.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// run drives one function through a first execution and then one execution
// per idle gap (end of one to arrival of the next; negative overlaps), each
// lasting exec, and returns the window after the last.
func run(p Policy, c *fakeClock, fn string, exec time.Duration, gaps []time.Duration) Window {
	p.Arrived(fn, c.Now())
	c.Advance(exec)
	w := p.Idle(fn, c.Now())
	for _, g := range gaps {
		c.Advance(g)
		p.Arrived(fn, c.Now())
		c.Advance(exec)
		w = p.Idle(fn, c.Now())
	}
	return w
}

// repeat returns n copies of d.
func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestFixed(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, 10 * time.Minute} {
		c := newFakeClock()
		w := run(Fixed(d), c, "f", time.Second, repeat(50, 30*time.Minute))
		if w != (Window{KeepAlive: d}) {
			t.Errorf("Fixed(%v) = %+v", d, w)
		}
	}
}

func TestHybridHistogram(t *testing.T) {
	def := DefaultHistogramConfig().Default
	fallback := Window{KeepAlive: def}
	// Every other minute of the 4-hour range, twice: 240 samples in a
	// histogram whose bin counts have a CV of 1.
	var spread []time.Duration
	for i := range 240 {
		spread = append(spread, time.Duration(i%120)*2*time.Minute+30*time.Second)
	}
	bimodal := append(repeat(90, 2*time.Minute+10*time.Second), repeat(10, 60*time.Minute+10*time.Second)...)
	cases := []struct {
		name string
		exec time.Duration
		gaps []time.Duration
		want Window
	}{
		{"first execution", time.Second, nil, fallback},
		{"too few samples", time.Second, repeat(9, 30*time.Minute), fallback},
		// Exactly 30 minutes idle: head and tail are both bin 30.
		// Pre-warm at 30m less 10%; keep until bin 31's end plus 10%.
		{"periodic", time.Second, repeat(20, 30*time.Minute), Window{
			Prewarm: 27 * time.Minute, KeepAlive: 31*time.Minute*11/10 - 27*time.Minute}},
		// A long execution does not shift the pre-warm: idle time counts
		// from its end.
		{"periodic, long execution", 5 * time.Minute, repeat(20, 25*time.Minute), Window{
			Prewarm: 25 * time.Minute * 9 / 10, KeepAlive: 26*time.Minute*11/10 - 25*time.Minute*9/10}},
		{"busy", 100 * time.Millisecond, repeat(50, 5*time.Second), Window{KeepAlive: 66 * time.Second}},
		// Arrivals before the last execution ended count as zero idle.
		{"overlapping", 10 * time.Second, repeat(50, -5*time.Second), Window{KeepAlive: 66 * time.Second}},
		{"out of bounds", time.Second, repeat(20, 5*time.Hour), fallback},
		{"mostly out of bounds", time.Second, append(repeat(9, 30*time.Minute), repeat(11, 5*time.Hour)...), fallback},
		{"some out of bounds", time.Second, append(repeat(15, 30*time.Minute), repeat(5, 5*time.Hour)...), Window{
			Prewarm: 27 * time.Minute, KeepAlive: 31*time.Minute*11/10 - 27*time.Minute}},
		{"flat", time.Second, spread, fallback},
		// 5th percentile in bin 2, 99th in bin 60.
		{"bimodal", time.Second, bimodal, Window{
			Prewarm: 2 * time.Minute * 9 / 10, KeepAlive: 61*time.Minute*11/10 - 2*time.Minute*9/10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			p := NewHybridHistogram(HistogramConfig{})
			w := run(p, c, "f", tc.exec, tc.gaps)
			if w != tc.want {
				t.Fatalf("window = %+v, want %+v", w, tc.want)
			}
			if other := p.Idle("other", c.Now()); other != fallback {
				t.Fatalf("an unseen function got %+v, want the fallback", other)
			}
		})
	}
}

func TestHybridHistogramConfig(t *testing.T) {
	cfg := HistogramConfig{BinWidth: 10 * time.Second, Range: time.Hour, Margin: 0.5, MinSamples: 3, Default: time.Minute}
	p := NewHybridHistogram(cfg)
	c := newFakeClock()
	// 3 samples of 95 s: bin 9 of 10 s bins.
	w := run(p, c, "f", 0, repeat(3, 95*time.Second))
	want := Window{Prewarm: 45 * time.Second, KeepAlive: 150*time.Second - 45*time.Second}
	if w != want {
		t.Fatalf("window = %+v, want %+v", w, want)
	}
	if w := run(p, newFakeClock(), "g", 0, repeat(2, 95*time.Second)); w != (Window{KeepAlive: time.Minute}) {
		t.Fatalf("below MinSamples: %+v", w)
	}
}

// windowCase is a run of gaps and the window a policy should then give.
type windowCase struct {
	name string
	gaps []time.Duration
	want Window
}

// checkWindows runs each case's gaps (1 s runs) through a fresh policy.
func checkWindows(t *testing.T, policy func() Policy, cases []windowCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if w := run(policy(), newFakeClock(), "f", time.Second, tc.gaps); w != tc.want {
				t.Fatalf("window = %+v, want %+v", w, tc.want)
			}
		})
	}
}

func TestMinKeepAlive(t *testing.T) {
	floored := func() Policy {
		cfg := DefaultHistogramConfig()
		cfg.MinKeepAlive = 10 * time.Minute
		return NewHybridHistogram(cfg)
	}
	checkWindows(t, floored, []windowCase{
		{"busy: floored", repeat(50, 5*time.Second), Window{KeepAlive: 10 * time.Minute}},
		{"tail beyond the floor", repeat(50, 20*time.Minute+30*time.Second) /* head bin 20: pre-warms */, Window{
			Prewarm: 18 * time.Minute, KeepAlive: 21*time.Minute*11/10 - 18*time.Minute}},
		{"long tail, no pre-warm", append(repeat(10, 30*time.Second), repeat(40, 30*time.Minute)...), Window{KeepAlive: 31 * time.Minute * 11 / 10}},
		{"too few samples", repeat(3, 5*time.Second), Window{KeepAlive: 10 * time.Minute}},
	})
}

func TestForget(t *testing.T) {
	p := NewHybridHistogram(HistogramConfig{})
	c := newFakeClock()
	if w := run(p, c, "f", time.Second, repeat(20, 30*time.Minute)); w.Prewarm == 0 {
		t.Fatalf("no pre-warm learnt: %+v", w)
	}
	p.Forget("f")
	p.Forget("never seen")
	if w := p.Idle("f", c.Now()); w != (Window{KeepAlive: 10 * time.Minute}) {
		t.Fatalf("after Forget: %+v", w)
	}
}

func TestHalveKeepsShape(t *testing.T) {
	h := &histogram{bins: []uint32{8, 3, 0, 5}}
	h.n, h.sumSq, h.oob = 16, 64+9+25, 7
	h.halve()
	if want := []uint32{4, 1, 0, 2}; fmt.Sprint(h.bins) != fmt.Sprint(want) {
		t.Fatalf("bins %v, want %v", h.bins, want)
	}
	if h.n != 7 || h.sumSq != 16+1+4 || h.oob != 3 {
		t.Fatalf("n %d sumSq %d oob %d", h.n, h.sumSq, h.oob)
	}
}

func TestCV(t *testing.T) {
	cases := []struct {
		name     string
		bins     []int64
		min, max float64
	}{
		{"flat", []int64{3, 3, 3, 3}, 0, 1e-9},
		{"one spike", []int64{12, 0, 0, 0}, 1.73, 1.74}, // sqrt(3)
		{"spike of 240", append([]int64{1}, make([]int64, 239)...), 15.45, 15.46},
	}
	for _, tc := range cases {
		var n, sq int64
		for _, c := range tc.bins {
			n += c
			sq += c * c
		}
		if got := cv(n, sq, len(tc.bins)); got < tc.min || got > tc.max {
			t.Errorf("%s: cv = %v, want in [%v, %v]", tc.name, got, tc.min, tc.max)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := NewHybridHistogram(HistogramConfig{})
	start := newFakeClock().Now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			fn := fmt.Sprint("f", g%3)
			for i := range 2000 {
				now := start.Add(time.Duration(i) * time.Minute)
				p.Arrived(fn, now)
				p.Idle(fn, now.Add(time.Second))
			}
		})
	}
	wg.Wait()
	if w := p.Idle("f0", start.Add(3000*time.Minute)); w.KeepAlive <= 0 {
		t.Fatalf("window %+v", w)
	}
}

// A window longer than MaxKeepAlive falls back to Default, whether it
// keeps the sandbox or pre-warms one; shorter ones are left alone.
func TestMaxKeepAlive(t *testing.T) {
	checkWindows(t, func() Policy { return Adaptive(10 * time.Minute) }, []windowCase{
		{"busy: floored, under the cap", repeat(50, 5*time.Second), Window{KeepAlive: 10 * time.Minute}},
		{"timer: pre-warm window under the cap", repeat(50, 20*time.Minute+30*time.Second), Window{
			Prewarm: 18 * time.Minute, KeepAlive: 21*time.Minute*11/10 - 18*time.Minute}},
		{"long tail: over the cap", append(repeat(10, 30*time.Second), repeat(40, 70*time.Minute)...), Window{KeepAlive: 10 * time.Minute}},
		{"wide pre-warm window: over the cap", append(repeat(25, 5*time.Minute+30*time.Second), repeat(25, 100*time.Minute)...), Window{KeepAlive: 10 * time.Minute}},
	})
}

// With a keep-alive under 11 s (6× is less than one bin and its margin),
// Adaptive is Fixed whatever it has seen.
func TestAdaptiveShortIsFixed(t *testing.T) {
	for _, gaps := range [][]time.Duration{repeat(50, time.Second), repeat(50, 20*time.Minute+30*time.Second), repeat(3, time.Hour)} {
		if w := run(Adaptive(2*time.Second), newFakeClock(), "f", 100*time.Millisecond, gaps); w != (Window{KeepAlive: 2 * time.Second}) {
			t.Fatalf("Adaptive(2s) after gaps of %v: %+v", gaps[0], w)
		}
	}
}

// Histograms of functions not run for two Ranges are dropped, so a worker
// that has run many versions does not keep them all.
func TestHybridPrunesOldFunctions(t *testing.T) {
	p := NewHybridHistogram(HistogramConfig{})
	c := newFakeClock()
	for i := range 100 {
		run(p, c, fmt.Sprintf("old%d", i), time.Second, nil)
	}
	c.Advance(9 * time.Hour)
	for range pruneEvery {
		run(p, c, "new", time.Second, nil)
	}
	p.mu.Lock()
	n := len(p.fns)
	p.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d histograms kept, want only the recent one", n)
	}
}
