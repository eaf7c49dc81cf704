package coordinator

import (
	"context"
	"fmt"
)

// groupCommit gathers concurrent requests into batches: a few committers
// each take whatever requests are waiting (up to max) and commit them with
// one call, so under load many requests share one Raft entry, one forward
// to the leader and one fsync, while a lone request is committed at once.
type groupCommit[T, R any] struct {
	in     chan batchItem[T, R]
	max    int
	commit func(ctx context.Context, items []T) ([]R, error)
}

type batchItem[T, R any] struct {
	ctx  context.Context
	item T
	done chan batchResult[R]
}

type batchResult[R any] struct {
	res R
	err error
}

// newGroupCommit starts committers goroutines that stop when ctx ends.
// commit must return one result per item, in order.
func newGroupCommit[T, R any](ctx context.Context, committers, max int, commit func(context.Context, []T) ([]R, error)) *groupCommit[T, R] {
	g := &groupCommit[T, R]{in: make(chan batchItem[T, R], max*committers), max: max, commit: commit}
	for range committers {
		go g.run(ctx)
	}
	return g
}

// do commits item in some batch and returns its result.
func (g *groupCommit[T, R]) do(ctx context.Context, item T) (R, error) {
	var zero R
	done := make(chan batchResult[R], 1)
	select {
	case g.in <- batchItem[T, R]{ctx: ctx, item: item, done: done}:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	// Once queued, the item may be committed whatever happens to ctx: wait
	// for the outcome so an acknowledged write is never reported as failed.
	r := <-done
	return r.res, r.err
}

func (g *groupCommit[T, R]) run(ctx context.Context) {
	batch := make([]batchItem[T, R], 0, g.max)
	items := make([]T, 0, g.max)
	for {
		batch, items = batch[:0], items[:0]
		select {
		case <-ctx.Done():
			g.failQueued(ctx.Err())
			return
		case b := <-g.in:
			batch = append(batch, b)
		}
	drain:
		for len(batch) < g.max {
			select {
			case b := <-g.in:
				batch = append(batch, b)
			default:
				break drain
			}
		}
		live := batch[:0]
		for _, b := range batch {
			if b.ctx.Err() != nil {
				b.done <- batchResult[R]{err: b.ctx.Err()} // gave up before its commit began
				continue
			}
			live = append(live, b)
			items = append(items, b.item)
		}
		if len(live) == 0 {
			continue
		}
		res, err := g.commit(ctx, items)
		if err == nil && len(res) != len(live) {
			err = fmt.Errorf("batch commit returned %d results for %d items", len(res), len(live))
		}
		for i, b := range live {
			if err != nil {
				b.done <- batchResult[R]{err: err}
			} else {
				b.done <- batchResult[R]{res: res[i]}
			}
		}
	}
}

func (g *groupCommit[T, R]) failQueued(err error) {
	for {
		select {
		case b := <-g.in:
			b.done <- batchResult[R]{err: err}
		default:
			return
		}
	}
}
