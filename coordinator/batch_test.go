package coordinator

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupCommitBatchesConcurrentItems(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var sizes []int
	release := make(chan struct{})
	var held atomic.Int64
	g := newGroupCommit(ctx, 1, 64, func(_ context.Context, items []int) ([]int, error) {
		held.CompareAndSwap(0, int64(len(items)))
		<-release // hold the first batch so the rest queue behind it
		mu.Lock()
		sizes = append(sizes, len(items))
		mu.Unlock()
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = v * 10
		}
		return out, nil
	})
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := g.do(ctx, i)
			if err == nil && got != i*10 {
				err = errors.New("result of another item")
			}
			errs <- err
		}()
	}
	// The first batch is held; wait until the rest queue behind it.
	deadline := time.Now().Add(10 * time.Second)
	for held.Load() == 0 || int(held.Load())+len(g.in) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d items held, %d queued", held.Load(), len(g.in))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	// The first batch took whatever had queued when it began (sometimes
	// all of them); everything that queued behind it went in one more.
	if total != n || len(sizes) > 2 {
		t.Fatalf("batch sizes %v: want the held batch, then all the others in one", sizes)
	}
}

func TestGroupCommitErrorsAndCancelledItems(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	boom := errors.New("boom")
	committed := 0
	g := newGroupCommit(ctx, 1, 8, func(_ context.Context, items []string) ([]string, error) {
		committed += len(items)
		return nil, boom
	})
	if _, err := g.do(ctx, "a"); !errors.Is(err, boom) {
		t.Fatalf("commit error not returned: %v", err)
	}
	gone, stop := context.WithCancel(ctx)
	stop()
	if _, err := g.do(gone, "b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled item: %v", err)
	}
	if committed > 1 {
		t.Fatalf("a cancelled item was committed (%d items)", committed)
	}
}
