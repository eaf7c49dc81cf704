package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// op is one timed operation; it says what it could tell about coldness.
type op func(ctx context.Context, i int) (Cold, error)

// errClientOverload is an open-loop arrival the client itself could not
// issue because too many were in flight: the load generator, not the
// subject, was the limit, and the run says so rather than slow down.
var errClientOverload = errors.New("client overload: too many requests in flight")

// PoissonSchedule returns the arrival offsets of a Poisson process of the
// given rate (arrivals per second), from 0: at most n arrivals when n > 0,
// and only offsets below limit when limit > 0. One of the two must be set.
// The same rng seed gives the same schedule, so runs can be compared.
func PoissonSchedule(rng *rand.Rand, rate float64, n int, limit time.Duration) []time.Duration {
	if rate <= 0 || (n <= 0 && limit <= 0) {
		return nil
	}
	var out []time.Duration
	var t float64 // seconds
	for n <= 0 || len(out) < n {
		t += rng.ExpFloat64() / rate
		at := time.Duration(t * float64(time.Second))
		if limit > 0 && at >= limit {
			break
		}
		out = append(out, at)
	}
	return out
}

// closedLoop runs clients workers, each issuing f back to back until dur
// has passed or ctx ends; i numbers the worker. Every request is timed
// from when it was sent.
func closedLoop(ctx context.Context, clients int, dur time.Duration, f op) *recorder {
	rec := newRecorder()
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				began := time.Now()
				cold, err := f(ctx, c)
				rec.add(began, time.Since(began), cold, err)
			}
		}()
	}
	wg.Wait()
	return rec
}

// openLoop issues f(i) at schedule[i] after a common start, whatever the
// earlier requests are doing, each in its own goroutine; at most
// maxInFlight at once (an arrival beyond that is an errClientOverload).
// Each request is timed from its scheduled arrival, so time spent queued
// behind a slow server counts. A schedule of zeros is a burst: every
// request released at once.
func openLoop(ctx context.Context, schedule []time.Duration, maxInFlight int, f op) *recorder {
	rec := newRecorder()
	slots := make(chan struct{}, max(maxInFlight, 1))
	var wg sync.WaitGroup
	start := time.Now()
	for i, off := range schedule {
		at := start.Add(off)
		if wait := time.Until(at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			rec.add(at, 0, ColdUnknown, errClientOverload)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			cold, err := f(ctx, i)
			rec.add(at, time.Since(at), cold, err)
		}()
	}
	wg.Wait()
	return rec
}

// zeros is a burst schedule: n arrivals at once.
func zeros(n int) []time.Duration { return make([]time.Duration, n) }
