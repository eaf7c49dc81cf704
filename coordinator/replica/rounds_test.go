package replica

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRoundsShareAndOrder: callers that overlap share runs, and each gets a
// run that started after it arrived.
func TestRoundsShareAndOrder(t *testing.T) {
	var started atomic.Int64
	release := make(chan struct{})
	r := &rounds{fn: func(context.Context) error {
		started.Add(1)
		<-release
		return nil
	}}

	// The first caller starts run 1 and blocks in it.
	first := make(chan error, 1)
	go func() { first <- r.wait(context.Background()) }()
	waitFor(t, func() bool { return started.Load() == 1 })

	// 100 callers arrive while run 1 is under way: none may take run 1's
	// answer, and all share one further run.
	const n = 100
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.wait(context.Background()); err != nil {
				t.Error(err)
			}
			if started.Load() < 2 {
				t.Error("a caller that arrived during run 1 was answered by it")
			}
		}()
	}
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.waiters == n+1 })
	release <- struct{}{} // ends run 1
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return started.Load() == 2 })
	close(release) // ends run 2 (and any later one)
	wg.Wait()
	if got := started.Load(); got != 2 {
		t.Fatalf("%d runs for 1 + %d overlapping callers, want 2", got, n)
	}
}

// TestRoundsErrorsAndCancel: a run's error reaches its callers; a caller
// whose context ends stops waiting while the run goes on.
func TestRoundsErrorsAndCancel(t *testing.T) {
	boom := errors.New("no leader")
	release := make(chan struct{})
	r := &rounds{fn: func(context.Context) error { <-release; return boom }}

	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- r.wait(ctx) }()
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled wait did not return")
	}
	go func() { got <- r.wait(context.Background()) }()
	close(release)
	if err := <-got; !errors.Is(err, boom) {
		t.Fatalf("wait = %v, want the run's error", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
