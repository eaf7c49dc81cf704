package raftstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// state is everything the log builds. Each domain keeps its own fields and
// its own snapshot records.
type state struct {
	// index is the Raft index of the command being applied.
	index     uint64
	functions functionState
	quota     quotaState
	events    eventState
	tokens    tokenState
	code      codeState
}

func newState() *state {
	return &state{functions: newFunctionState(), quota: newQuotaState(), events: newEventState(), tokens: newTokenState(),
		code: newCodeState()}
}

// fsm adapts state to raft.FSM. Readers take mu for reading; the single
// applier goroutine takes it for writing.
//
// applied is the index of the last command applied here. raft's own
// AppliedIndex runs ahead of the state machine (it counts entries handed to
// the FSM goroutine, not applied by it), so "has this replica seen write N"
// must be asked of the FSM itself.
type fsm struct {
	mu sync.RWMutex
	st *state

	applied atomic.Uint64
	waitMu  sync.Mutex
	changed chan struct{} // closed and replaced after every apply
}

func newFSM() *fsm { return &fsm{st: newState(), changed: make(chan struct{})} }

func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	a, ok := appliers[CommandType(l.Data[0])]
	if !ok {
		panic(fmt.Sprintf("raftstore: unknown command type %d at index %d", l.Data[0], l.Index))
	}
	f.mu.Lock()
	f.st.index = l.Index
	res := a(f.st, l.Data[1:])
	f.mu.Unlock()
	f.setApplied(l.Index)
	return res
}

func (f *fsm) setApplied(index uint64) {
	f.applied.Store(index)
	f.waitMu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.waitMu.Unlock()
}

// waitApplied blocks until the command at index (or a later one) is applied.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.changed
		f.waitMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", index, f.applied.Load(), ctx.Err())
		case <-ch:
		}
	}
}
