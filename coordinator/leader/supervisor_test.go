package leader

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const deadline = 10 * time.Second

// raftish stands in for a Raft store: leadership now, and a channel of
// changes. set updates both, in that order, as raft does.
type raftish struct {
	leading atomic.Bool
	ch      chan bool
	asked   sync.Once
	ready   chan struct{} // closed once Run has read isLeader
}

func newRaftish(leading bool) *raftish {
	r := &raftish{ch: make(chan bool), ready: make(chan struct{})}
	r.leading.Store(leading)
	return r
}

func (r *raftish) isLeader() bool {
	v := r.leading.Load()
	r.asked.Do(func() { close(r.ready) })
	return v
}

// supervise runs a Supervisor of loops on r, and returns once Run has
// read the initial state, so every later set reaches it as a change. (A
// change racing that read may restart the loops just started: harmless,
// but not what these tests count.)
func (r *raftish) supervise(t *testing.T, log *slog.Logger, loops ...Loop) (context.CancelFunc, <-chan struct{}) {
	t.Helper()
	cancel, done := run(t, New(r.isLeader, r.ch, log, loops...))
	waitClosed(t, r.ready, "Run's read of isLeader")
	return cancel, done
}

// set reports a change; it returns once the supervisor has received it.
func (r *raftish) set(t *testing.T, v bool) {
	t.Helper()
	r.leading.Store(v)
	select {
	case r.ch <- v:
	case <-time.After(deadline):
		t.Fatalf("supervisor did not take the change to %v", v)
	}
}

// probe is a leader loop that reports what happens to it. If hold is set,
// it returns only once hold is closed, after its ctx ends.
type probe struct {
	name     string
	hold     chan struct{}
	early    bool        // return at once instead of waiting for ctx
	events   chan string // "start", "cancelled", "end"
	overflow atomic.Bool // events was full: more happened than the test expects

	mu                          sync.Mutex
	starts, running, maxRunning int
}

func newProbe(name string) *probe { return &probe{name: name, events: make(chan string, 4096)} }

func (p *probe) loop() Loop {
	return Loop{Name: p.name, Run: func(ctx context.Context) {
		p.mu.Lock()
		p.starts++
		p.running++
		p.maxRunning = max(p.maxRunning, p.running)
		p.mu.Unlock()
		p.event("start")
		if !p.early {
			<-ctx.Done()
			p.event("cancelled")
			if p.hold != nil {
				<-p.hold
			}
		}
		p.mu.Lock()
		p.running--
		p.mu.Unlock()
		p.event("end")
	}}
}

// event records e without ever blocking the loop (a runaway supervisor
// must fail the test, not hang it).
func (p *probe) event(e string) {
	select {
	case p.events <- e:
	default:
		p.overflow.Store(true)
	}
}

// want waits for the probe's next events.
func (p *probe) want(t *testing.T, events ...string) {
	t.Helper()
	for _, w := range events {
		if p.overflow.Load() {
			t.Fatalf("%s: far more events than expected", p.name)
		}
		select {
		case got := <-p.events:
			if got != w {
				t.Fatalf("%s: event %q, want %q", p.name, got, w)
			}
		case <-time.After(deadline):
			t.Fatalf("%s: no %q event", p.name, w)
		}
	}
}

// counts returns starts, running and the most ever running at once.
func (p *probe) counts() (starts, running, maxRunning int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.running, p.maxRunning
}

// run starts s.Run and returns its cancel and a channel closed when Run
// returns; cleanup cancels it and waits.
func run(t *testing.T, s *Supervisor) (context.CancelFunc, <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		waitClosed(t, done, "Run's return at cleanup")
	})
	return cancel, done
}

func waitClosed(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatalf("%s did not happen", what)
	}
}

func TestStartOnTrueStopOnFalse(t *testing.T) {
	r := newRaftish(false)
	a, b := newProbe("a"), newProbe("b")
	r.supervise(t, nil, a.loop(), b.loop())

	r.set(t, true)
	a.want(t, "start")
	b.want(t, "start")
	r.set(t, false)
	a.want(t, "cancelled", "end")
	b.want(t, "cancelled", "end")
	// A second stint starts them again.
	r.set(t, true)
	a.want(t, "start")
	b.want(t, "start")
	if starts, _, maxRunning := a.counts(); starts != 2 || maxRunning != 1 {
		t.Fatalf("a started %d times, at most %d at once; want 2 and 1", starts, maxRunning)
	}
}

func TestStartsWhenAlreadyLeader(t *testing.T) {
	r := newRaftish(true)
	a := newProbe("a")
	r.supervise(t, nil, a.loop())
	a.want(t, "start")
	r.set(t, false)
	a.want(t, "cancelled", "end")
}

// A true while leading is a new term: the loops stop and start again.
func TestNewTermRestarts(t *testing.T) {
	r := newRaftish(true)
	a := newProbe("a")
	r.supervise(t, nil, a.loop())
	a.want(t, "start")
	r.set(t, true)
	a.want(t, "cancelled", "end", "start")
}

// When ctx ends, Run cancels the loops and returns only after they have.
func TestCtxEndWaitsForLoops(t *testing.T) {
	r := newRaftish(true)
	a := newProbe("a")
	a.hold = make(chan struct{})
	var runningAtReturn atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(r.isLeader, r.ch, nil, a.loop()).Run(ctx)
		_, running, _ := a.counts()
		runningAtReturn.Store(int32(running))
	}()
	a.want(t, "start")
	cancel()
	a.want(t, "cancelled")
	// Give a Run that does not wait time to return early: it must not.
	time.AfterFunc(20*time.Millisecond, func() { close(a.hold) })
	waitClosed(t, done, "Run's return")
	if n := runningAtReturn.Load(); n != 0 {
		t.Fatalf("Run returned with %d loops still running", n)
	}
	a.want(t, "end")
}

// Losing and regaining leadership quickly does not start a loop again
// until the last term's copy has returned; changes are still read meanwhile.
func TestWaitsForOldLoopsBeforeRestart(t *testing.T) {
	r := newRaftish(true)
	a := newProbe("a")
	a.hold = make(chan struct{})
	r.supervise(t, nil, a.loop())
	a.want(t, "start")
	r.set(t, false)
	a.want(t, "cancelled")
	r.set(t, true)
	r.set(t, true) // once taken, the first true was handled
	if starts, _, _ := a.counts(); starts != 1 {
		t.Fatalf("started %d times while the first copy was still running", starts)
	}
	close(a.hold)
	a.want(t, "end", "start")
	if _, _, maxRunning := a.counts(); maxRunning != 1 {
		t.Fatalf("%d copies ran at once", maxRunning)
	}
}

// A loop that returns on its own is logged and left alone until the next
// term, not restarted at once.
func TestEarlyReturnWaitsForNextTerm(t *testing.T) {
	r := newRaftish(false)
	early, steady := newProbe("early"), newProbe("steady")
	early.early = true
	logs := &recordHandler{msgs: make(chan string, 100)}
	r.supervise(t, slog.New(logs), early.loop(), steady.loop())

	r.set(t, true)
	early.want(t, "start", "end")
	steady.want(t, "start")
	logs.want(t, "leader loop returned while this node leads; it starts again at the next leadership change")
	r.set(t, false)
	steady.want(t, "cancelled", "end")
	if starts, _, _ := early.counts(); starts != 1 {
		t.Fatalf("early loop started %d times in one term", starts)
	}
	r.set(t, true)
	early.want(t, "start", "end")
	steady.want(t, "start")
}

// Changes queued before Run are not acted on: isLeader already says where
// they led, and a stale true would restart the loops just started.
func TestStaleChangesDropped(t *testing.T) {
	ch := make(chan bool, 1)
	ch <- true
	var asked atomic.Int32
	isLeader := func() bool {
		asked.Add(1)
		if len(ch) != 0 {
			t.Error("isLeader read before the queued change was dropped")
		}
		return true
	}
	a := newProbe("a")
	run(t, New(isLeader, ch, nil, a.loop()))
	a.want(t, "start")
	ch <- false
	a.want(t, "cancelled", "end")
	if n := asked.Load(); n != 1 {
		t.Fatalf("isLeader read %d times, want once", n)
	}
	if starts, _, _ := a.counts(); starts != 1 {
		t.Fatalf("started %d times, want once", starts)
	}
}

// A closed channel (the store shut down) stops the loops and ends Run.
func TestClosedChangesStop(t *testing.T) {
	r := newRaftish(true)
	a := newProbe("a")
	_, done := r.supervise(t, nil, a.loop())
	a.want(t, "start")
	close(r.ch)
	a.want(t, "cancelled", "end")
	waitClosed(t, done, "Run's return")
}

// Rapid flaps, with loops slow to stop: never two copies at once, and the
// loops run exactly when the last change says so.
func TestRapidFlaps(t *testing.T) {
	r := newRaftish(false)
	a, b := newProbe("a"), newProbe("b")
	slow := func(p *probe) Loop {
		l := p.loop()
		return Loop{Name: p.name, Run: func(ctx context.Context) {
			l.Run(ctx)
			for range 10 {
				runtime.Gosched()
			}
		}}
	}
	r.supervise(t, nil, slow(a), slow(b))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		r.set(t, rng.IntN(3) != 0) // trues in a row too: new terms
	}
	r.set(t, true)
	for _, p := range []*probe{a, b} {
		waitFor(t, p.name+" running", func() bool { _, running, _ := p.counts(); return running == 1 })
	}
	r.set(t, false)
	for _, p := range []*probe{a, b} {
		waitFor(t, p.name+" stopped", func() bool { _, running, _ := p.counts(); return running == 0 })
		if starts, _, maxRunning := p.counts(); starts < 1 || maxRunning != 1 {
			t.Fatalf("%s: %d starts, at most %d at once; want ≥1 and 1", p.name, starts, maxRunning)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, deadline)
		}
		time.Sleep(time.Millisecond)
	}
}

// recordHandler is a slog.Handler that passes each message to msgs.
type recordHandler struct{ msgs chan string }

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.msgs <- r.Message
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// want waits for a record with message msg, skipping others.
func (h *recordHandler) want(t *testing.T, msg string) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case got := <-h.msgs:
			if got == msg {
				return
			}
		case <-timeout:
			t.Fatalf("no log %q", msg)
		}
	}
}
