package replica

import (
	"context"
	"sync"
)

// rounds shares one run of fn among callers that overlap. A caller waits
// for a run that starts after it arrives, so it sees everything fn would
// have shown it alone; callers that arrive while a run is under way share
// the next one. Reads that miss (an unknown token, function name or event
// id) catch up with the leader through it: a flood of misses then costs the
// leader one call per round trip rather than one per request.
type rounds struct {
	fn   func(context.Context) error // bounds its own time; runs detached from any caller
	base context.Context             // fn's context: the owner's lifetime (nil: Background)

	mu      sync.Mutex
	running *round // under way
	next    *round // starts when running ends; nil until someone waits for it
	waiters int    // callers waiting
}

type round struct {
	done chan struct{}
	err  error
}

// wait returns the error of a run of fn that started after the call, or
// ctx's error if ctx ends first (the run goes on for the others).
func (r *rounds) wait(ctx context.Context) error {
	r.mu.Lock()
	var rd *round
	switch {
	case r.running == nil:
		rd = &round{done: make(chan struct{})}
		r.running = rd
		go r.run(rd)
	case r.next != nil:
		rd = r.next
	default:
		rd = &round{done: make(chan struct{})}
		r.next = rd
	}
	r.waiters++
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.waiters--; r.mu.Unlock() }()
	select {
	case <-rd.done:
		return rd.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs rd, then each round that was asked for while the last one ran.
func (r *rounds) run(rd *round) {
	ctx := r.base
	if ctx == nil {
		ctx = context.Background()
	}
	for rd != nil {
		rd.err = r.fn(ctx)
		close(rd.done)
		r.mu.Lock()
		rd, r.next = r.next, nil
		r.running = rd
		r.mu.Unlock()
	}
}
