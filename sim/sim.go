package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gustfaas/gust/coordinator/placement"
	"github.com/gustfaas/gust/worker/keepalive"
)

// Result is what one combination did in the measured window.
type Result struct {
	Placement, KeepAlive string
	// Invocations arrived in the window; each is Warm (an idle sandbox of
	// its version was reused), Cold (a sandbox was started) or Dropped (no
	// worker had room).
	Invocations, Warm, Cold, Dropped int64
	// Prewarms counts sandboxes loaded ahead of an expected invocation,
	// PrewarmsSkipped those not loaded because the worker already had one
	// of the app or no room.
	Prewarms, PrewarmsSkipped int64
	// Evictions are idle sandboxes destroyed to make room, Expiries those
	// whose keep-alive ran out.
	Evictions, Expiries int64
	// IdleMBHours is the memory-time held by idle sandboxes: the waste a
	// keep-alive policy spends to avoid cold starts.
	IdleMBHours float64
	// MeanIdleMB and PeakIdleMB are the cluster's idle sandbox memory over
	// the window; MeanBusyMB is that of running ones.
	MeanIdleMB, PeakIdleMB, MeanBusyMB float64
	// MaxWorkerUsedMB is the most memory any worker ever granted.
	MaxWorkerUsedMB int64
	// AppColdP75 is the 75th percentile over apps invoked in the window of
	// the share of their invocations that were cold (the paper's metric).
	AppColdP75 float64
	// ByClass breaks invocations, cold starts and idle memory-time down by
	// app class (index: Class).
	ByClass [numClasses]ClassResult
	// Tiers counts the real Placer's decisions, indexed by placement.Tier
	// (gust only; warm-up included).
	Tiers [placement.Random + 1]int64
	// PlaceP50 and PlaceP99 are wall-clock latencies of one placement
	// decision (for gust: Placer.Pick).
	PlaceP50, PlaceP99 time.Duration
	// Events is how many simulation events ran; Wall how long the run took.
	Events int64
	Wall   time.Duration
}

// ClassResult is one app class's share of a Result.
type ClassResult struct {
	Invocations, Cold int64
	IdleMBHours       float64
}

// WarmRate is the share of invocations that found a warm sandbox.
func (r Result) WarmRate() float64 {
	if r.Invocations == 0 {
		return 0
	}
	return float64(r.Warm) / float64(r.Invocations)
}

const (
	evArrival uint8 = iota
	evDone
	evExpire
	evPrewarm
)

// event is one thing to happen at a simulated time, packed into 32 bytes
// since the queue is the simulator's hottest data.
type event struct {
	at  int64
	seq uint64 // push order << 8 | kind: ties break in push order, so runs are deterministic
	x   int64  // evExpire: sandbox generation; evPrewarm: keep-alive once loaded
	a   int32  // app (evArrival, evPrewarm) or sandbox (evDone, evExpire)
	w   int32  // worker (evPrewarm)
}

func (e *event) kind() uint8 { return uint8(e.seq) }

// eventHeap is a 4-ary min-heap: half the depth of a binary one, and a
// node's children share a cache line or two.
type eventHeap []event

func (e *event) before(o *event) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !s[i].before(&s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *eventHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		best := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if s[k].before(&s[best]) {
				best = k
			}
		}
		if !s[best].before(&last) {
			break
		}
		s[i] = s[best]
		i = best
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// checkEvery is how many events Config.Check lets pass between full checks
// of every worker; each event's own worker is checked cheaply every time.
const checkEvery = 5000

// epoch is the simulated wall clock's zero, handed to keep-alive policies.
var epoch = time.Date(2019, 7, 15, 0, 0, 0, 0, time.UTC)

// latencySamples bounds the placement latencies kept (a uniform reservoir
// over one placement in latencyEvery).
const (
	latencySamples = 1 << 18
	latencyEvery   = 4
)

// run is one simulation in progress.
type run struct {
	cfg     Config
	apps    []App
	c       *cluster
	pl      placer
	streams []*stream
	events  eventHeap
	seq     uint64

	warm, end    int64 // measured window [warm, end)
	lastT        int64
	res          Result
	idleAcc      float64 // MB·ns
	idleClassAcc [numClasses]float64
	busyAcc      float64
	appInv       []int32
	appCold      []int32
	lat          []int64
	latSeen      int64
	latRand      *rand.Rand
}

// Run simulates one combination on workload w.
func Run(cfg Config, w *Workload, combo Combo) (Result, error) {
	cfg = cfg.withDefaults()
	began := time.Now()
	r := &run{
		cfg: cfg, apps: w.Apps, c: newCluster(cfg, w.Apps),
		warm: int64(cfg.Warmup), end: int64(cfg.Warmup + cfg.Measure),
		appInv: make([]int32, len(w.Apps)), appCold: make([]int32, len(w.Apps)),
		latRand: rand.New(rand.NewPCG(cfg.Seed, 99)),
	}
	r.res.Placement, r.res.KeepAlive = combo.Placement, combo.KeepAlive.Name
	pl, err := newPlacer(combo.Placement, r.c, cfg.Seed)
	if err != nil {
		return Result{}, err
	}
	r.pl = pl
	var shared keepalive.Policy
	if !combo.KeepAlive.PerWorker {
		shared = combo.KeepAlive.New()
	}
	for _, wk := range r.c.workers {
		wk.policy = shared
		if combo.KeepAlive.PerWorker {
			wk.policy = combo.KeepAlive.New()
		}
	}
	r.startStreams(w, combo.KeepAlive.Trained, shared)
	if err := r.loop(); err != nil {
		return Result{}, fmt.Errorf("%s × %s: %w", combo.Placement, combo.KeepAlive.Name, err)
	}
	r.finish()
	r.res.Wall = time.Since(began)
	return r.res, nil
}

// startStreams runs every app's past up to time zero, feeding it to a
// trained policy, and queues each app's first arrival.
func (r *run) startStreams(w *Workload, trained bool, p keepalive.Policy) {
	type past struct {
		at  int64
		end bool
	}
	var buf []past
	r.streams = make([]*stream, len(w.Apps))
	for i := range w.Apps {
		s := w.newStream(&w.Apps[i])
		r.streams[i] = s
		buf = buf[:0]
		for s.next < 0 {
			at, dur := s.pop(r.cfg.MaxDuration)
			buf = append(buf, past{int64(at), false})
			if end := at + dur; end < 0 {
				buf = append(buf, past{int64(end), true})
			}
		}
		if trained {
			slices.SortStableFunc(buf, func(a, b past) int {
				switch {
				case a.at < b.at:
					return -1
				case a.at > b.at:
					return 1
				}
				return 0
			})
			key := w.Apps[i].Key
			for _, e := range buf {
				if e.end {
					p.Idle(key, epoch.Add(time.Duration(e.at)))
				} else {
					p.Arrived(key, epoch.Add(time.Duration(e.at)))
				}
			}
		}
		if int64(s.next) < r.end {
			r.push(evArrival, int64(s.next), int32(i), 0, 0)
		}
	}
}

func (r *run) push(kind uint8, at int64, a, w int32, x int64) {
	r.seq++
	r.events.push(event{at: at, seq: r.seq<<8 | uint64(kind), x: x, a: a, w: w})
}

func (r *run) loop() error {
	for len(r.events) > 0 {
		e := r.events.pop()
		if e.at >= r.end {
			break
		}
		r.advance(e.at)
		r.res.Events++
		var wk *simWorker
		switch e.kind() {
		case evArrival:
			wk = r.arrive(e)
		case evDone:
			wk = r.done(e)
		case evExpire:
			wk = r.expire(e)
		case evPrewarm:
			wk = r.prewarm(e)
		}
		if wk == nil {
			continue
		}
		r.pl.changed(wk)
		r.res.MaxWorkerUsedMB = max(r.res.MaxWorkerUsedMB, wk.usedMB)
		if r.cfg.Check {
			err := r.c.checkWorker(wk)
			if err == nil && r.res.Events%checkEvery == 0 {
				err = r.c.check()
			}
			if err != nil {
				return fmt.Errorf("at %v: %w", time.Duration(e.at), err)
			}
		}
	}
	r.advance(r.end)
	if r.cfg.Check {
		return r.c.check()
	}
	return nil
}

// advance integrates memory over the measured part of [lastT, t).
func (r *run) advance(t int64) {
	from, to := max(r.lastT, r.warm), min(t, r.end)
	if to > from {
		dt := float64(to - from)
		r.idleAcc += float64(r.c.idleMB) * dt
		for k, mb := range r.c.idleByClass {
			r.idleClassAcc[k] += float64(mb) * dt
		}
		r.busyAcc += float64(r.c.busyMB) * dt
		r.res.PeakIdleMB = max(r.res.PeakIdleMB, float64(r.c.idleMB))
	}
	r.lastT = t
}

func (r *run) measuring(t int64) bool { return t >= r.warm }

func (r *run) now(t int64) time.Time { return epoch.Add(time.Duration(t)) }

// arrive places one invocation and runs it warm or cold, as worker.Invoke.
func (r *run) arrive(e event) *simWorker {
	s := r.streams[e.a]
	_, dur := s.pop(r.cfg.MaxDuration)
	if int64(s.next) < r.end {
		r.push(evArrival, int64(s.next), e.a, 0, 0)
	}
	app := &r.apps[e.a]
	counted := r.measuring(e.at)
	if counted {
		r.res.Invocations++
		r.res.ByClass[app.Class()].Invocations++
		r.appInv[e.a]++
	}
	// One placement in latencyEvery is timed: enough samples, and the
	// clock reads stay off most of the loop.
	timed := counted && r.res.Invocations%latencyEvery == 0
	var began time.Time
	if timed {
		began = time.Now()
	}
	wid, ok := r.pl.place(app)
	if timed {
		r.sampleLatency(time.Since(began))
	}
	if !ok {
		if counted {
			r.res.Dropped++
		}
		return nil
	}
	wk := r.c.workers[wid]
	wk.policy.Arrived(app.Key, r.now(e.at))
	sb := r.c.take(wk, e.a)
	if sb == none {
		evicted, ok := r.c.reserve(wk, app.MemoryMB)
		if counted {
			r.res.Evictions += int64(evicted)
		}
		if !ok {
			// Placement saw room the worker does not have: a refusal.
			// Every policy here sees exact state, so this does not happen.
			if counted {
				r.res.Dropped++
			}
			return wk
		}
		sb = r.c.start(wk, e.a)
		r.c.markBusy(wk, sb)
		dur += r.cfg.ColdStart
		if counted {
			r.res.Cold++
			r.res.ByClass[app.Class()].Cold++
			r.appCold[e.a]++
		}
	} else if counted {
		r.res.Warm++
	}
	r.push(evDone, e.at+int64(dur), sb, 0, 0)
	return wk
}

// done ends an execution and applies the keep-alive policy's window.
func (r *run) done(e event) *simWorker {
	sb := &r.c.sbs[e.a]
	wk := r.c.workers[sb.worker]
	app := &r.apps[sb.app]
	win := wk.policy.Idle(app.Key, r.now(e.at))
	switch {
	case win.Prewarm > 0:
		// Unload now, load a fresh one when the next call is due.
		r.push(evPrewarm, e.at+int64(win.Prewarm), sb.app, wk.id, int64(win.KeepAlive))
		r.c.retireBusy(wk, e.a)
	case win.KeepAlive <= 0:
		r.c.retireBusy(wk, e.a)
	default:
		wk.busyMB -= sb.memoryMB
		r.c.busyMB -= sb.memoryMB
		r.c.pushIdle(wk, e.a, e.at)
		r.arm(e.a, e.at+int64(win.KeepAlive))
	}
	return wk
}

// arm sets an idle sandbox's deadline, queueing an expiry event unless one
// already pending fires no later.
func (r *run) arm(i int32, deadline int64) {
	sb := &r.c.sbs[i]
	sb.deadline = deadline
	if sb.armed != none && sb.armed <= deadline {
		return
	}
	sb.gen++ // the pending event, if any, fires too late: orphan it
	sb.armed = deadline
	r.push(evExpire, deadline, i, 0, int64(sb.gen))
}

// expire retires a sandbox whose keep-alive ran out, unless it was reused
// or evicted since.
func (r *run) expire(e event) *simWorker {
	sb := &r.c.sbs[e.a]
	if !sb.live || int64(sb.gen) != e.x {
		return nil
	}
	sb.armed = none
	if sb.busy {
		return nil // its next idle period arms again
	}
	if sb.deadline > e.at {
		r.arm(e.a, sb.deadline) // reused since this was queued
		return nil
	}
	wk := r.c.workers[sb.worker]
	r.c.unlinkIdle(wk, e.a)
	r.c.destroy(wk, e.a)
	if r.measuring(e.at) {
		r.res.Expiries++
	}
	return wk
}

// prewarm loads a sandbox ahead of an expected invocation, unless the
// worker already has one of the app (idle or busy) or no room even after
// evicting idle ones.
func (r *run) prewarm(e event) *simWorker {
	wk := r.c.workers[e.w]
	counted := r.measuring(e.at)
	if wk.apps[e.a].live > 0 {
		if counted {
			r.res.PrewarmsSkipped++
		}
		return nil
	}
	evicted, ok := r.c.reserve(wk, r.apps[e.a].MemoryMB)
	if counted {
		r.res.Evictions += int64(evicted)
	}
	if !ok {
		if counted {
			r.res.PrewarmsSkipped++
		}
		return wk
	}
	sb := r.c.start(wk, e.a)
	r.c.pushIdle(wk, sb, e.at)
	r.arm(sb, e.at+e.x)
	if counted {
		r.res.Prewarms++
	}
	return wk
}

func (r *run) sampleLatency(d time.Duration) {
	r.latSeen++
	if len(r.lat) < latencySamples {
		r.lat = append(r.lat, int64(d))
		return
	}
	if j := r.latRand.Int64N(r.latSeen); j < latencySamples {
		r.lat[j] = int64(d)
	}
}

// finish turns the counters into the result.
func (r *run) finish() {
	span := float64(r.end - r.warm)
	if span > 0 {
		r.res.MeanIdleMB = r.idleAcc / span
		r.res.MeanBusyMB = r.busyAcc / span
	}
	r.res.IdleMBHours = r.idleAcc / float64(time.Hour)
	for k := range r.res.ByClass {
		r.res.ByClass[k].IdleMBHours = r.idleClassAcc[k] / float64(time.Hour)
	}
	var shares []float64
	for i, n := range r.appInv {
		if n > 0 {
			shares = append(shares, float64(r.appCold[i])/float64(n))
		}
	}
	r.res.AppColdP75 = quantile(shares, 0.75)
	if len(r.lat) > 0 {
		slices.Sort(r.lat)
		r.res.PlaceP50 = time.Duration(r.lat[(len(r.lat)-1)/2])
		r.res.PlaceP99 = time.Duration(r.lat[(len(r.lat)-1)*99/100])
	}
	if g, ok := r.pl.(*gustPlacer); ok {
		r.res.Tiers = g.tiers
	}
}

// quantile returns the q-quantile of xs (sorted in place), 0 if empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[int(q*float64(len(xs)-1))]
}
