package leader

import (
	"context"
	"log/slog"
	"sync"
)

// Loop is one leader-only loop.
type Loop struct {
	// Name identifies the loop in logs.
	Name string
	// Run does the loop's work until ctx ends. It is started each time this
	// node becomes leader; ctx ends when the node stops leading.
	Run func(ctx context.Context)
}

// Supervisor runs its loops while this node leads: it starts them on
// becoming leader, and on losing leadership cancels their context and waits
// for every one to return before starting any again, so no two copies of a
// loop ever run at once.
type Supervisor struct {
	isLeader func() bool
	changes  <-chan bool
	loops    []Loop
	log      *slog.Logger
}

// New returns a Supervisor of loops.
//
// changes has hashicorp/raft's LeaderCh meaning: true when this node
// becomes leader, false when it stops. It may keep only the latest change,
// so a true while leading means leadership was lost and won again in
// between: a new term, for which the loops start afresh.
//
// isLeader reports leadership now; Run reads it once, after dropping the
// changes already queued, so it must be at least as new as the channel
// (raftstore's Store.IsLeader is, for Store.LeadershipChanges). log may be
// nil.
func New(isLeader func() bool, changes <-chan bool, log *slog.Logger, loops ...Loop) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{isLeader: isLeader, changes: changes, loops: loops, log: log}
}

// term is one stint as leader: the loops started for it.
type term struct {
	cancel  context.CancelFunc
	stopped bool          // cancel was called
	done    chan struct{} // closed once every loop has returned
}

// Run supervises the loops until ctx ends or changes is closed, then stops
// them and returns once every one has returned. Call it once.
func (s *Supervisor) Run(ctx context.Context) {
	// A change queued before now is no newer than what isLeader says:
	// acting on it too would restart loops just started.
	for drained := false; !drained; {
		select {
		case _, ok := <-s.changes:
			if !ok {
				return
			}
		default:
			drained = true
		}
	}
	want := s.isLeader()
	var cur *term
	for {
		if cur == nil && want {
			s.log.Info("leading: starting leader loops", "loops", len(s.loops))
			cur = s.start(ctx)
		}
		var done <-chan struct{} // nil unless waiting for a stopped term
		if cur != nil && cur.stopped {
			done = cur.done
		}
		select {
		case <-ctx.Done():
			s.stop(cur)
			return
		case <-done:
			cur = nil // the next iteration starts a new term if we lead
		case v, ok := <-s.changes:
			if !ok {
				s.stop(cur)
				return
			}
			want = v
			if cur != nil && !cur.stopped {
				// false ends the term; true while leading means a new one,
				// which starts once the old loops have returned. Changes
				// keep being read meanwhile.
				s.log.Info("stopping leader loops", "leading", v)
				cur.cancel()
				cur.stopped = true
			}
		}
	}
}

// start starts every loop under a context of its own.
func (s *Supervisor) start(parent context.Context) *term {
	ctx, cancel := context.WithCancel(parent)
	t := &term{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Go(func() {
			l.Run(ctx)
			if ctx.Err() == nil {
				// Restarting it at once could spin; the next term will.
				s.log.Warn("leader loop returned while this node leads; it starts again at the next leadership change", "loop", l.Name)
			}
		})
	}
	go func() {
		wg.Wait()
		close(t.done)
	}()
	return t
}

// stop cancels t, if any, and waits for its loops to return.
func (s *Supervisor) stop(t *term) {
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
}
