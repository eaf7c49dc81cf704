// Package fleet is a coordinator's view of its workers: it connects to
// those gossip announces, follows each one's pool state, places
// invocations on them (warm first), places again when a worker refuses
// before starting, and spreads provisioned concurrency over them. It
// reaches workers only through workerapi.Worker.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/coordinator/placement"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/tracing"
	"github.com/gustfaas/gust/worker/workerapi"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/credentials"
)

// maxPlacements bounds how often one invocation is placed again after
// lost races and refusals.
const maxPlacements = 8

// noWorkerWait is how long an invocation waits for some worker to appear.
const noWorkerWait = 2 * time.Second

// Router places invocations on workers using the warm-pool states they
// stream, and places again when a worker refuses or fails before starting.
type Router struct {
	log    *slog.Logger
	placer *placement.Placer
	creds  credentials.TransportCredentials // dials workers; nil: plaintext
	secret nodeauth.Secret                  // proven to workers at each connection

	mu      sync.RWMutex
	workers map[string]*workerEntry
}

type workerEntry struct {
	name     string
	addr     string
	conn     workerapi.Worker
	close    func() error // drops the connection; nil in process
	cancel   context.CancelFunc
	alive    bool // gossip says alive
	streamUp bool // its pool stream is connected
	state    workerapi.PoolState
}

// NewRouter returns a router with no workers; it dials those SetWorker
// names with creds (nil: plaintext), proving secret.
func NewRouter(log *slog.Logger, creds credentials.TransportCredentials, secret nodeauth.Secret) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{log: log, placer: placement.New(uint64(time.Now().UnixNano())), workers: map[string]*workerEntry{},
		creds: creds, secret: secret}
}

// AddLocal registers a worker in this process (gustd dev): requests reach
// it as they are, with no wire between.
func (r *Router) AddLocal(w workerapi.Worker) {
	r.add(w.Name(), "local", w, nil)
}

// Announced is a worker as gossip announces it.
type Announced struct {
	Name, Addr string
	Alive      bool
}

// Reconcile brings the router in line with the workers gossip announces:
// new or moved ones are connected and watched, those gossip says are not
// alive leave placement, and those it no longer lists are dropped.
func (r *Router) Reconcile(workers []Announced) {
	seen := map[string]bool{}
	for _, w := range workers {
		seen[w.Name] = true
		r.SetWorker(w.Name, w.Addr, w.Alive)
	}
	for _, w := range r.Workers() {
		if !seen[w.Name] {
			r.RemoveWorker(w.Name)
		}
	}
}

// SetWorker records a worker seen by gossip: alive or not, at addr. A new
// or moved worker gets a connection and a pool watch.
func (r *Router) SetWorker(name, addr string, alive bool) {
	r.mu.Lock()
	e, ok := r.workers[name]
	if ok && e.addr == addr {
		e.alive = alive
		r.placer.SetAvailable(name, r.available(e))
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	if ok {
		r.RemoveWorker(name)
	}
	if !alive {
		return
	}
	conn, err := workerapi.Dial(name, addr, r.creds, r.secret)
	if err != nil {
		r.log.Warn("dial worker", "worker", name, "err", err)
		return
	}
	r.add(name, addr, conn, conn.Close)
}

func (r *Router) add(name, addr string, conn workerapi.Worker, closeConn func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	e := &workerEntry{name: name, addr: addr, conn: conn, close: closeConn, cancel: cancel, alive: true}
	r.mu.Lock()
	r.workers[name] = e
	r.mu.Unlock()
	go r.watchLoop(ctx, e)
}

// RemoveWorker forgets a worker.
func (r *Router) RemoveWorker(name string) {
	r.mu.Lock()
	e, ok := r.workers[name]
	delete(r.workers, name)
	r.mu.Unlock()
	if ok {
		e.cancel()
		if e.close != nil {
			e.close()
		}
		r.placer.Remove(name)
	}
}

// available: alive by gossip, streaming its state, not draining.
func (r *Router) available(e *workerEntry) bool {
	return e.alive && e.streamUp && !e.state.Draining
}

// watchLoop keeps the worker's pool state flowing into placement; a broken
// stream takes the worker out of placement at once (faster than gossip).
func (r *Router) watchLoop(ctx context.Context, e *workerEntry) {
	backoff := 50 * time.Millisecond
	warned := false // of a refused handshake, once until the stream works
	for ctx.Err() == nil {
		err := e.conn.WatchPool(ctx, func(st workerapi.PoolState) error {
			warned = false
			r.mu.Lock()
			e.state, e.streamUp = st, true
			avail := r.available(e)
			r.mu.Unlock()
			r.placer.Update(placement.WorkerState{Name: e.name, FreeMemoryMB: st.FreeMemoryMB, Draining: st.Draining,
				Idle: st.Idle, Digests: st.Digests})
			r.placer.SetAvailable(e.name, avail)
			backoff = 50 * time.Millisecond
			return nil
		})
		r.mu.Lock()
		e.streamUp = false
		r.mu.Unlock()
		r.placer.SetAvailable(e.name, false)
		if ctx.Err() != nil {
			return
		}
		if err != nil && strings.Contains(err.Error(), nodeauth.ErrRefused.Error()) {
			// gRPC keeps only the dial error's text. A worker started with
			// another secret (or none) is alive in gossip but never used:
			// say why, where the operator looks.
			if !warned {
				r.log.Warn("worker refused: it does not share this coordinator's --cluster-secret; no invocation goes there", "worker", e.name, "addr", e.addr)
				warned = true
			}
		} else {
			r.log.Debug("worker pool stream broke", "worker", e.name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

// Invoke places the invocation and runs it, placing again on a lost race
// for a warm sandbox or on a refusal before start.
//
// A worker's refusal keeps its sentinel (workerapi.ErrDraining, …): when
// no worker takes the invocation, the error wraps the last refusal, for
// the caller to name.
func (r *Router) Invoke(ctx context.Context, req workerapi.InvokeRequest) (*workerapi.InvokeResult, error) {
	fn := req.Function
	key := workerapi.PoolKey(fn)
	var avoid placement.Avoid
	onStart := req.OnStart
	var lastErr error
	// A coordinator that just started, or a cluster whose only worker is
	// restarting, may have no worker for a moment: wait a little for one.
	waitUntil := time.Now().Add(noWorkerWait)
	for attempt := 0; attempt < maxPlacements; attempt++ {
		_, span := tracing.Tracer().Start(ctx, "placement")
		d, ok := r.placer.Pick(key, fn.CodeDigest, int64(fn.MemoryMB), &avoid)
		if span.IsRecording() {
			span.SetAttributes(attribute.String("gust.worker", d.Worker), attribute.String("gust.tier", d.Tier.String()))
		}
		span.End()
		if !ok && lastErr == nil && r.workerCount() == 0 && time.Now().Before(waitUntil) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			attempt--
			continue
		}
		if !ok {
			break
		}
		r.mu.RLock()
		e := r.workers[d.Worker]
		r.mu.RUnlock()
		if e == nil {
			avoid.Add(d.Worker)
			continue
		}
		req.WarmOnly = d.Tier == placement.Warm
		started := false
		req.OnStart = func(sandbox string, cold bool) {
			started = true
			if onStart != nil {
				onStart(sandbox, cold)
			}
		}
		res, err := e.conn.Invoke(ctx, req)
		switch {
		case err == nil:
			return res, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, workerapi.ErrNoWarm):
			// Another coordinator took the sandbox; place again.
			lastErr = err
		case !started:
			// Refused (draining, full, no code) or unreachable before it
			// took the invocation: nothing ran, so another worker may.
			r.log.Debug("worker refused; placing again", "worker", d.Worker, "err", err)
			avoid.Add(d.Worker)
			lastErr = err
		default:
			return nil, &apierr.Error{Name: apierr.Service,
				Message: fmt.Sprintf("worker %s failed while running the invocation; it may be retried: %v", d.Worker, err)}
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("no worker could take the invocation: %w", lastErr)
	}
	if r.workerCount() == 0 {
		return nil, apierr.New(apierr.ResourceNotReady, "no worker is available")
	}
	return nil, apierr.New(apierr.Service, "no worker has %d MB free for %s", fn.MemoryMB, fn.Name)
}

func (r *Router) workerCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, e := range r.workers {
		if r.available(e) {
			n++
		}
	}
	return n
}

// WorkerStatus is a worker as the router sees it.
type WorkerStatus struct {
	Name, Addr             string
	Available              bool
	MemoryMB, FreeMemoryMB int64
	Sandboxes              int32
	Draining               bool
}

// Workers lists known workers, sorted by name.
func (r *Router) Workers() []WorkerStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []WorkerStatus
	for _, e := range r.workers {
		ws := WorkerStatus{Name: e.name, Addr: e.addr, Available: r.available(e)}
		st := e.state
		ws.MemoryMB, ws.FreeMemoryMB, ws.Draining = st.MemoryMB, st.FreeMemoryMB, st.Draining
		idle, busy := st.Sandboxes()
		ws.Sandboxes = int32(idle + busy)
		out = append(out, ws)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SandboxCounts sums idle and busy sandboxes over the workers' last states.
func (r *Router) SandboxCounts() (idle, busy int64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.workers {
		i, b := e.state.Sandboxes()
		idle, busy = idle+i, busy+b
	}
	return idle, busy
}

func (r *Router) conn(name string) (workerapi.Worker, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.workers[name]
	if !ok {
		return nil, false
	}
	return e.conn, true
}

// Retire asks every worker to destroy a deleted function's sandboxes. A
// worker out of reach keeps its sandboxes until their keep-alive ends,
// but never serves them again: a function created anew under the name
// has another incarnation, so its pool key differs.
func (r *Router) Retire(ctx context.Context, function string) {
	r.mu.RLock()
	conns := map[string]workerapi.Worker{}
	for _, e := range r.workers {
		conns[e.name] = e.conn
	}
	r.mu.RUnlock()
	// The function is gone whether or not its caller waits for this.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for name, c := range conns {
		wg.Go(func() {
			if _, err := c.Retire(ctx, function); err != nil {
				r.log.Warn("retire a deleted function's sandboxes", "worker", name, "function", function, "err", err)
			}
		})
	}
	wg.Wait()
}

// Drain asks a worker to stop taking invocations.
func (r *Router) Drain(ctx context.Context, name string) error {
	c, ok := r.conn(name)
	if !ok {
		return apierr.New(apierr.ResourceNotFound, "no worker named %s", name)
	}
	return c.Drain(ctx)
}

// Sandboxes lists sandboxes on one worker (node != "") or all.
func (r *Router) Sandboxes(ctx context.Context, node string) ([]workerapi.Sandbox, error) {
	r.mu.RLock()
	var conns []workerapi.Worker
	for name, e := range r.workers {
		if (node == "" || node == name) && r.available(e) {
			conns = append(conns, e.conn)
		}
	}
	r.mu.RUnlock()
	if node != "" && len(conns) == 0 {
		return nil, apierr.New(apierr.ResourceNotFound, "no available worker named %s", node)
	}
	var out []workerapi.Sandbox
	for _, c := range conns {
		list, err := c.Sandboxes(ctx)
		if err != nil {
			return nil, fmt.Errorf("list sandboxes: %w", err)
		}
		out = append(out, list...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Worker+out[i].ID < out[j].Worker+out[j].ID })
	return out, nil
}

// Logs streams a function's retained logs from every available worker at
// once; send receives whole lines, one worker's run at a time.
func (r *Router) Logs(ctx context.Context, function string, opts workerapi.LogOptions, send func(worker string, data []byte) error) error {
	r.mu.RLock()
	conns := map[string]workerapi.Worker{}
	for name, e := range r.workers {
		if r.available(e) {
			conns[name] = e.conn
		}
	}
	r.mu.RUnlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	errs := make(chan error, len(conns))
	for name, c := range conns {
		go func() {
			errs <- c.ReadLogs(ctx, function, opts, func(b []byte) error {
				mu.Lock()
				defer mu.Unlock()
				return send(name, b)
			})
		}()
	}
	var first error
	for range conns {
		if err := <-errs; err != nil && first == nil {
			first = fmt.Errorf("logs: %w", err)
			cancel()
		}
	}
	return first
}

// usageTimeout bounds one worker's answer to a usage request: a worker
// that does not answer in time is reported missing, not waited for.
const usageTimeout = 5 * time.Second

// Usage asks every available worker for its usage and sums it per
// function; missing lists the known workers that are unavailable or did
// not answer, whose invocations are not counted.
func (r *Router) Usage(ctx context.Context, function string, since, until time.Time) (sum []workerapi.Usage, answered int, missing []string) {
	r.mu.RLock()
	conns := map[string]workerapi.Worker{}
	for name, e := range r.workers {
		if r.available(e) {
			conns[name] = e.conn
		} else {
			missing = append(missing, name)
		}
	}
	r.mu.RUnlock()
	type answer struct {
		worker string
		res    workerapi.UsageReport
		err    error
	}
	answers := make(chan answer, len(conns))
	for name, c := range conns {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, usageTimeout)
			defer cancel()
			res, err := c.Usage(ctx, function, since, until)
			answers <- answer{name, res, err}
		}()
	}
	byName := map[string]int{} // index in sum
	for range conns {
		a := <-answers
		if a.err != nil {
			r.log.Warn("usage", "worker", a.worker, "err", a.err)
			missing = append(missing, a.worker)
			continue
		}
		answered++
		for _, u := range a.res.Functions {
			i, ok := byName[u.Function]
			if !ok {
				i = len(sum)
				byName[u.Function] = i
				sum = append(sum, workerapi.Usage{Function: u.Function})
			}
			sum[i].Requests += u.Requests
			sum[i].BilledMs += u.BilledMs
			sum[i].BilledMBMs += u.BilledMBMs
		}
	}
	sort.Slice(sum, func(i, j int) bool { return sum[i].Function < sum[j].Function })
	sort.Strings(missing)
	return sum, answered, missing
}

// Close drops every worker.
func (r *Router) Close() {
	r.mu.RLock()
	var names []string
	for n := range r.workers {
		names = append(names, n)
	}
	r.mu.RUnlock()
	for _, n := range names {
		r.RemoveWorker(n)
	}
}

// counts returns, per available worker, its sandboxes (idle and busy) of
// one pool key and its free memory.
func (r *Router) counts(key string) (have map[string]int, free map[string]int64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	have, free = map[string]int{}, map[string]int64{}
	for name, e := range r.workers {
		if !r.available(e) {
			continue
		}
		free[name] = e.state.FreeMemoryMB
		if n := e.state.Idle[key] + e.state.Busy[key]; n > 0 {
			have[name] = int(n)
		}
	}
	return have, free
}
