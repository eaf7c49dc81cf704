package bench

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoissonSchedule(t *testing.T) {
	const rate = 1000.0
	a := PoissonSchedule(rand.New(rand.NewPCG(7, 7)), rate, 20000, 0)
	b := PoissonSchedule(rand.New(rand.NewPCG(7, 7)), rate, 20000, 0)
	if len(a) != 20000 || !slices.Equal(a, b) {
		t.Fatalf("same seed, different schedules (%d, %d arrivals)", len(a), len(b))
	}
	if !slices.IsSorted(a) || a[0] <= 0 {
		t.Fatal("offsets must be positive and ascending")
	}
	// Exponential gaps: mean 1/rate, and the standard deviation equals the
	// mean. 20,000 gaps put both well within 3%.
	var sum, sumSq float64
	prev := time.Duration(0)
	for _, at := range a {
		g := (at - prev).Seconds()
		sum, sumSq, prev = sum+g, sumSq+g*g, at
	}
	mean := sum / float64(len(a))
	sd := math.Sqrt(sumSq/float64(len(a)) - mean*mean)
	if math.Abs(mean*rate-1) > 0.03 || math.Abs(sd*rate-1) > 0.03 {
		t.Errorf("gap mean %.4f ms, sd %.4f ms, want 1 ms each", mean*1e3, sd*1e3)
	}

	lim := PoissonSchedule(rand.New(rand.NewPCG(1, 2)), 100, 0, 10*time.Second)
	if n := len(lim); n < 900 || n > 1100 || lim[n-1] >= 10*time.Second {
		t.Errorf("100/s for 10 s: %d arrivals, last at %v", n, lim[len(lim)-1])
	}
	if got := PoissonSchedule(rand.New(rand.NewPCG(1, 2)), 100, 5, time.Hour); len(got) != 5 {
		t.Errorf("n=5 gave %d", len(got))
	}
	if PoissonSchedule(rand.New(rand.NewPCG(1, 2)), 0, 5, 0) != nil || PoissonSchedule(rand.New(rand.NewPCG(1, 2)), 5, 0, 0) != nil {
		t.Error("a zero rate, or neither n nor limit, is no schedule")
	}
}

func TestClosedLoop(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Int64, 4)
	rec := closedLoop(context.Background(), 4, 100*time.Millisecond, func(_ context.Context, c int) (Cold, error) {
		seen[c].Add(1)
		if calls.Add(1)%10 == 0 {
			return ColdUnknown, errors.New("every tenth fails")
		}
		time.Sleep(time.Millisecond)
		return ColdNo, nil
	})
	m := rec.measurement("k", "n", 0)
	if int64(m.Summary.Count+m.Errors) != calls.Load() || m.Errors == 0 {
		t.Errorf("count %d + errors %d != calls %d", m.Summary.Count, m.Errors, calls.Load())
	}
	for c := range seen {
		if seen[c].Load() == 0 {
			t.Errorf("client %d never ran", c)
		}
	}
	if m.Summary.ElapsedS < 0.1 || m.Summary.ElapsedS > 1 {
		t.Errorf("elapsed %v s for a 100 ms round", m.Summary.ElapsedS)
	}
}

func TestOpenLoopTimesFromScheduledArrival(t *testing.T) {
	// Ten arrivals at once onto a server that serves one at a time, 10 ms
	// each: queued requests wait, and their latency must show it.
	sem := make(chan struct{}, 1)
	rec := openLoop(context.Background(), zeros(10), 10, func(context.Context, int) (Cold, error) {
		sem <- struct{}{}
		time.Sleep(10 * time.Millisecond)
		<-sem
		return ColdYes, nil
	})
	m := rec.measurement("k", "n", 0)
	if m.Summary.Count != 10 || m.Summary.Max < 95 || m.Summary.Min < 10 {
		t.Errorf("summary %+v: the last in the queue waited ≥ 100 ms", m.Summary)
	}
	if m.Summary.ColdStarts != 10 || m.Summary.ColdPerSecond < 50 || m.Summary.ColdPerSecond > 110 {
		t.Errorf("cold/s = %v, want about 100", m.Summary.ColdPerSecond)
	}
}

func TestOpenLoopOverloadAndSchedule(t *testing.T) {
	block := make(chan struct{})
	started := make(chan int, 10)
	sched := []time.Duration{0, 0, 0, 20 * time.Millisecond}
	done := make(chan *recorder)
	go func() {
		done <- openLoop(context.Background(), sched, 2, func(_ context.Context, i int) (Cold, error) {
			started <- i
			<-block
			return ColdNo, nil
		})
	}()
	<-started
	<-started
	time.Sleep(40 * time.Millisecond) // the fourth arrival finds both slots busy too
	close(block)
	m := (<-done).measurement("k", "n", 0)
	if m.Summary.Count != 2 || m.ErrorKinds["client overload"] != 2 {
		t.Errorf("count %d, errors %v", m.Summary.Count, m.ErrorKinds)
	}

	// Arrivals go out at their offsets, not before.
	start := time.Now()
	var at []time.Duration
	openLoop(context.Background(), []time.Duration{0, 30 * time.Millisecond, 60 * time.Millisecond}, 1, func(context.Context, int) (Cold, error) {
		at = append(at, time.Since(start))
		return ColdNo, nil
	})
	if len(at) != 3 || at[1] < 30*time.Millisecond || at[2] < 60*time.Millisecond {
		t.Errorf("sent at %v", at)
	}
}

func TestOpenLoopStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	openLoop(ctx, []time.Duration{0, time.Hour}, 4, func(context.Context, int) (Cold, error) {
		n.Add(1)
		return ColdNo, nil
	})
	if n.Load() != 1 {
		t.Errorf("%d sent", n.Load())
	}
}
