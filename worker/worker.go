package worker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gustfaas/gust/internal/tenant"
	"github.com/gustfaas/gust/internal/tracing"
	"github.com/gustfaas/gust/sandbox"
	"github.com/gustfaas/gust/worker/keepalive"
	"github.com/gustfaas/gust/worker/runtimeapi"
	"github.com/gustfaas/gust/worker/workerapi"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Worker runs invocations in warm or fresh sandboxes.
type Worker struct {
	cfg       Config
	log       *slog.Logger
	sbx       *sandbox.Manager
	code      *codeCache
	logs      *functionLogs
	usage     *usageLog
	pool      *pool
	stems     *stemPool // nil without stem cells
	stop      chan struct{}
	done      chan struct{}
	stemsDone chan struct{}
	usageDone chan struct{}
	inflt     sync.WaitGroup
	bg        sync.WaitGroup // pending pre-warms; they end when stop closes

	mu        sync.Mutex
	draining  bool
	closeOnce sync.Once
	closeErr  error
}

// New reaps what a previous run left, then returns a ready worker.
func New(cfg Config) (*Worker, error) {
	def := DefaultConfig()
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = def.KeepAlive
	}
	if cfg.FreezeAfter == 0 {
		cfg.FreezeAfter = def.FreezeAfter
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = def.InitTimeout
	}
	if cfg.TmpMB == 0 {
		cfg.TmpMB = def.TmpMB
	}
	if cfg.Region == "" {
		cfg.Region = def.Region
	}
	if cfg.LogRetentionMB == 0 {
		cfg.LogRetentionMB = def.LogRetentionMB
	}
	if cfg.UsageRetention == 0 {
		cfg.UsageRetention = def.UsageRetention
	}
	if cfg.KeepAlivePolicy == nil {
		cfg.KeepAlivePolicy = keepalive.Adaptive(cfg.KeepAlive)
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = hostMemoryMB() * 8 / 10
	}
	if cfg.StemCells == 0 {
		cfg.StemCells = DefaultStemCells(cfg.MemoryMB)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// One cgroup parent per data dir, so two workers on a host never reap
	// each other's sandboxes.
	sum := sha256.Sum256([]byte(dir))
	mgr, err := sandbox.NewManager(sandbox.Config{
		StateDir:     filepath.Join(dir, "sandboxes"),
		WorkDir:      filepath.Join(dir, "sandbox-work"), // beside the code cache: Assign hard-links code
		RootFS:       filepath.Join(dir, "runtimes", "provided"),
		StemTmpMB:    cfg.TmpMB,
		CgroupParent: "/gust/" + hex.EncodeToString(sum[:6]),
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if _, err := mgr.Reap(); err != nil {
		return nil, err
	}
	code, err := newCodeCache(filepath.Join(dir, "code"), cfg.Code)
	if err != nil {
		return nil, err
	}
	logs, err := newFunctionLogs(filepath.Join(dir, "logs"), int64(cfg.LogRetentionMB)<<20)
	if err != nil {
		return nil, err
	}
	usage, err := newUsageLog(filepath.Join(dir, "usage.json"), cfg.UsageRetention)
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, log: cfg.Logger, sbx: mgr, code: code, logs: logs, usage: usage,
		pool: newPool(),
		stop: make(chan struct{}), done: make(chan struct{}), stemsDone: make(chan struct{}), usageDone: make(chan struct{}),
	}
	go w.janitor()
	go w.saveUsage()
	if cfg.StemCells > 0 {
		w.stems = newStemPool(mgr, cfg.StemCells, cfg.Logger)
		go func() { w.stems.fill(w.stop); close(w.stemsDone) }()
	} else {
		close(w.stemsDone)
	}
	return w, nil
}

// Name is the worker's name.
func (w *Worker) Name() string { return w.cfg.Name }

// Invoke runs one invocation: on an idle warm sandbox of the same function
// version if there is one, else on a fresh sandbox.
func (w *Worker) Invoke(ctx context.Context, req workerapi.InvokeRequest) (*workerapi.InvokeResult, error) {
	return w.invoke(ctx, req, false)
}

// invoke is Invoke; redelivered says the invocation was sent to a sandbox
// that died before taking it, and is sent once more only.
func (w *Worker) invoke(ctx context.Context, req workerapi.InvokeRequest, redelivered bool) (*workerapi.InvokeResult, error) {
	w.mu.Lock()
	if w.draining {
		w.mu.Unlock()
		return nil, workerapi.ErrDraining
	}
	w.inflt.Add(1)
	w.mu.Unlock()
	defer w.inflt.Done()

	fn := req.Function
	if err := fn.Validate(); err != nil {
		return nil, err
	}
	key := workerapi.PoolKey(fn)
	inst, dead := w.pool.take(key)
	for _, d := range dead {
		go w.retire(d)
	}
	cold := inst == nil
	if cold && req.WarmOnly {
		return nil, workerapi.ErrNoWarm
	}
	reason := ""
	if cold {
		reason = w.pool.coldReason(key, fn.Name)
		var res *workerapi.InvokeResult
		var err error
		sctx, span := tracing.Tracer().Start(ctx, "sandbox.start")
		inst, res, err = w.coldStart(sctx, fn, req.RequestID)
		if span.IsRecording() {
			span.SetAttributes(attribute.String("gust.cold_start_reason", reason))
			if inst != nil {
				span.SetAttributes(attribute.String("gust.sandbox", inst.id))
			}
		}
		span.End()
		if res != nil { // the function failed to initialise: still a request
			w.usage.record(fn.Name, time.Now(), res.BilledMs, fn.MemoryMB)
		}
		if err != nil || res != nil {
			return res, err
		}
	} else if err := inst.thaw(); err != nil {
		w.log.Warn("thaw failed; starting fresh", "sandbox", inst.id, "err", err)
		w.retire(inst)
		return w.invoke(ctx, req, redelivered)
	}
	// Counted once this worker runs it: a refused warm-only request or a
	// retry after a failed thaw is not another arrival.
	w.cfg.KeepAlivePolicy.Arrived(key, time.Now())
	if req.OnStart != nil {
		req.OnStart(inst.id, cold)
	}
	if cold {
		inst.coldReason = reason
	}
	res := w.run(ctx, inst, req, redelivered)
	if res == nil {
		// The sandbox died before its process took the event (it crashed
		// after answering the last one): nothing ran, so a fresh sandbox
		// gets it, as Lambda never hands an event to a dead one.
		req.WarmOnly = false
		return w.invoke(ctx, req, true)
	}
	res.ColdStart = cold
	if cold {
		res.InitDuration = inst.initDuration
		res.ColdStartReason = reason
	}
	return res, nil
}

// run delivers the invocation and classifies what came back; nil means the
// sandbox had died before its process took the event (retired here), and
// the invocation is the caller's to send again.
func (w *Worker) run(ctx context.Context, inst *instance, req workerapi.InvokeRequest, redelivered bool) *workerapi.InvokeResult {
	fn := req.Function
	timeout := fn.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	inst.logs.reset()
	inst.say("START RequestId: %s Version: %s\n", req.RequestID, fn.Version)
	ctx, span := tracing.Tracer().Start(ctx, "sandbox.invoke", trace.WithAttributes(attribute.String("gust.sandbox", inst.id)))
	defer span.End()
	traceID := req.TraceID
	if traceID == "" {
		// The function sees the trace the caller started (traceparent),
		// with this span as its parent.
		traceID = tracing.XRayHeader(span.SpanContext())
	}
	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(timeout))
	defer cancel()
	stopWatch := context.AfterFunc(inst.exitCtx, cancel)
	defer stopWatch()
	out, err := inst.api.Invoke(runCtx, runtimeapi.Invocation{
		RequestID:     req.RequestID,
		Payload:       req.Payload,
		Deadline:      start.Add(timeout),
		FunctionARN:   w.functionARN(fn),
		TraceID:       traceID,
		ClientContext: req.ClientContext,
	})
	elapsed := time.Since(start)
	res := &workerapi.InvokeResult{
		RequestID: req.RequestID, ExecutedVersion: fn.Version, Worker: w.cfg.Name, Sandbox: inst.id,
		Duration: elapsed, BilledMs: int64(math.Ceil(float64(elapsed) / float64(time.Millisecond))),
	}
	keep := true
	switch {
	case err == nil && out.ErrorType == "":
		res.Payload = out.Payload
	case err == nil && out.ErrorType == "Function.ResponseSizeTooLarge":
		res.FunctionError, res.Payload, keep = workerapi.FunctionErrorUnhandled, out.Payload, false
	case err == nil:
		res.FunctionError, res.Payload = workerapi.FunctionErrorHandled, out.Payload
	case inst.exitCtx.Err() != nil && errors.Is(err, runtimeapi.ErrNotDelivered) && !redelivered:
		<-inst.sb.Exited()
		w.retire(inst)
		return nil
	case inst.exitCtx.Err() != nil:
		// The process died under the invocation: crash or OOM kill.
		<-inst.sb.Exited()
		res.FunctionError, res.Payload, keep = workerapi.FunctionErrorUnhandled, exitPayload(inst.sb.Exit()), false
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		res.FunctionError, keep = workerapi.FunctionErrorUnhandled, false
		res.Payload = errorPayload("Sandbox.Timedout", fmt.Sprintf("Task timed out after %.2f seconds", timeout.Seconds()))
		res.Duration, res.BilledMs = timeout, timeout.Milliseconds()
	default:
		// The caller gave up or the worker is closing: the function may
		// still run, so its sandbox cannot be trusted again.
		res.FunctionError, keep = workerapi.FunctionErrorUnhandled, false
		res.Payload = errorPayload("Sandbox.Canceled", err.Error())
	}
	inst.logs.sync()
	if peak, err := inst.sb.MemoryPeak(); err == nil {
		res.MaxMemoryMB = int64(math.Ceil(float64(peak) / (1 << 20)))
	}
	report := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		req.RequestID, float64(res.Duration)/float64(time.Millisecond), res.BilledMs, fn.MemoryMB, res.MaxMemoryMB)
	if !inst.reported {
		report += fmt.Sprintf("\tInit Duration: %.2f ms", float64(inst.initDuration)/float64(time.Millisecond))
		if inst.coldReason != "" {
			report += "\tCold Start Reason: " + inst.coldReason // gust's own field; Lambda has none
		}
		inst.reported = true
	}
	// END and REPORT in one write: one syscall fewer per invocation.
	inst.say("END RequestId: %s\n%s\n", req.RequestID, report)
	w.usage.record(fn.Name, time.Now(), res.BilledMs, fn.MemoryMB)
	if req.LogTail {
		res.LogTail = inst.logs.String()
	}
	inst.lastUsed = time.Now()
	win := w.cfg.KeepAlivePolicy.Idle(inst.key, inst.lastUsed)
	inst.idleUntil = inst.lastUsed.Add(win.KeepAlive)
	if keep && win.Prewarm > 0 && !inst.provisionedUntil.After(inst.lastUsed) {
		// The next invocation is not expected for a while: free the memory
		// now and load a fresh sandbox shortly before it.
		keep = false
		w.prewarmLater(fn, win)
	}
	if keep {
		w.keep(inst)
	} else {
		w.retire(inst)
	}
	return res
}

// coldStart creates, starts and initialises a sandbox. An init failure is
// a function error result (nil instance); a platform failure is an error.
func (w *Worker) coldStart(ctx context.Context, fn workerapi.FunctionSpec, requestID string) (*instance, *workerapi.InvokeResult, error) {
	if !w.reserve(fn.MemoryMB) {
		return nil, nil, fmt.Errorf("%w: %d MB asked", workerapi.ErrCapacity, fn.MemoryMB)
	}
	codeDir, err := w.code.ensure(ctx, fn.CodeDigest)
	if err != nil {
		w.pool.release(fn.MemoryMB)
		return nil, nil, err
	}
	began := time.Now()
	sb, logs, err := w.newSandbox(ctx, fn, codeDir)
	made := time.Now()
	if err != nil {
		w.pool.release(fn.MemoryMB)
		return nil, nil, fmt.Errorf("cold start %s: %w", fn.Name, err)
	}
	inst := &instance{id: sb.ID(), key: workerapi.PoolKey(fn), name: fn.Name, function: fn.Name + ":" + fn.Version, memoryMB: fn.MemoryMB, logs: logs, sb: sb}
	w.pool.markBusy(inst)
	inst.api = runtimeapi.New(sb.Listener(), runtimeapi.Options{Logger: w.log})
	var exitCancel context.CancelFunc
	inst.exitCtx, exitCancel = context.WithCancel(context.Background())
	go func() { <-sb.Exited(); exitCancel() }()
	if err := sb.Start(); err != nil {
		w.retire(inst)
		return nil, nil, fmt.Errorf("cold start %s: %w", fn.Name, err)
	}
	initCtx, cancel := context.WithTimeout(ctx, w.cfg.InitTimeout)
	defer cancel()
	stop := context.AfterFunc(inst.exitCtx, cancel)
	defer stop()
	execd := time.Now()
	err = inst.api.WaitReady(initCtx)
	inst.initDuration = time.Since(began)
	if err == nil {
		// The breakdown BENCHMARKS.md records: getting a sandbox (a stem
		// cell's assignment, or a whole container), exec, the runtime's start.
		w.log.Debug("cold start", "function", fn.Name, "sandbox", sb.ID(), "stem", sb.Output() != nil,
			"sandbox_ms", ms(made.Sub(began)), "exec_ms", ms(execd.Sub(made)), "runtime_init_ms", ms(time.Since(execd)))
		return inst, nil, nil
	}
	res := &workerapi.InvokeResult{RequestID: requestID, ExecutedVersion: fn.Version, Worker: w.cfg.Name, Sandbox: inst.id,
		ColdStart: true, InitDuration: inst.initDuration, FunctionError: workerapi.FunctionErrorUnhandled}
	var initErr *runtimeapi.InitError
	switch {
	case errors.As(err, &initErr):
		res.Payload = initErr.Payload
	case inst.exitCtx.Err() != nil:
		<-sb.Exited()
		res.Payload = exitPayload(sb.Exit())
	case ctx.Err() != nil:
		w.retire(inst)
		return nil, nil, ctx.Err()
	default:
		res.Payload = errorPayload("Runtime.InitTimeout", fmt.Sprintf("Init timed out after %.2f seconds", w.cfg.InitTimeout.Seconds()))
	}
	inst.logs.sync()
	res.LogTail = inst.logs.String()
	w.retire(inst)
	return nil, res, nil
}

// newSandbox assigns a stem cell to the function, or creates one for it
// when none is ready (a stem cell starts its init from the small gustd-init
// binary; a plain sandbox re-executes gustd); either way it waits at exec.
// The log tail reads the sandbox's output.
func (w *Worker) newSandbox(ctx context.Context, fn workerapi.FunctionSpec, codeDir string) (*sandbox.Sandbox, *logTail, error) {
	if w.stems != nil {
		sb, release, err := w.stems.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		if release != nil {
			defer release() // holds a creation slot while it creates below
			sb, err = w.sbx.CreateStemNow(ctx, newSandboxID())
			if err != nil && !errors.Is(err, sandbox.ErrNotSupported) {
				return nil, nil, err
			}
		}
		if sb != nil {
			err := sb.Assign(sandbox.Assignment{CodeDir: codeDir, Env: w.environment(fn), MemoryMB: fn.MemoryMB})
			if err == nil {
				return sb, attachLogTail(sb.Output(), w.logs.writer(fn.Name)), nil
			}
			w.log.Warn("assign stem cell; creating a sandbox instead", "sandbox", sb.ID(), "err", err)
			sb.Destroy()
		}
	}
	logs, err := newLogTail(w.logs.writer(fn.Name))
	if err != nil {
		return nil, nil, err
	}
	sb, err := w.sbx.Create(ctx, sandbox.Spec{
		ID: newSandboxID(), CodeDir: codeDir, MemoryMB: fn.MemoryMB, TmpMB: w.cfg.TmpMB,
		Env: w.environment(fn), Stdout: logs.writer(), Stderr: logs.writer(),
	})
	logs.started()
	if err != nil {
		logs.close()
		return nil, nil, err
	}
	return sb, logs, nil
}

// prewarmLater loads a fresh sandbox of fn after win.Prewarm and keeps it
// idle for win.KeepAlive, unless the worker is closing by then.
func (w *Worker) prewarmLater(fn workerapi.FunctionSpec, win keepalive.Window) {
	w.bg.Add(1)
	go func() {
		defer w.bg.Done()
		t := time.NewTimer(win.Prewarm)
		defer t.Stop()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		draining := w.draining
		w.mu.Unlock()
		if draining || w.pool.count(workerapi.PoolKey(fn)) > 0 {
			return // an invocation in the gap already loaded one
		}
		inst, res, err := w.coldStart(context.Background(), fn, "prewarm")
		if err != nil || res != nil {
			w.log.Debug("pre-warm failed", "function", fn.Name, "err", err)
			return
		}
		inst.lastUsed = time.Now()
		inst.idleUntil = inst.lastUsed.Add(win.KeepAlive)
		w.keep(inst)
	}()
}

// reserve claims memory for a new sandbox, evicting idle sandboxes
// (least recently used first) when that makes room.
func (w *Worker) reserve(memoryMB int) bool {
	for !w.pool.reserve(memoryMB, w.cfg.MemoryMB, w.cfg.MaxSandboxes) {
		victim := w.pool.takeLeastRecent()
		if victim == nil {
			return false
		}
		w.pool.noteUnloaded(victim.key, "evicted")
		w.retire(victim)
	}
	return true
}

// keep returns a sandbox to the pool, or destroys it if its function was
// retired while it ran.
func (w *Worker) keep(inst *instance) {
	if !w.pool.put(inst) {
		w.retire(inst)
	}
}

// Retire destroys every sandbox of a deleted function: idle ones now,
// busy ones when their invocation ends. It says how many went now.
func (w *Worker) Retire(_ context.Context, name string) (int, error) {
	if !tenant.ValidStored(name) {
		return 0, fmt.Errorf("%w: name %q", workerapi.ErrInvalidFunction, name)
	}
	idle := w.pool.retireFunction(name)
	for _, inst := range idle {
		w.retire(inst)
	}
	if len(idle) > 0 {
		w.log.Debug("retired a deleted function's sandboxes", "function", name, "count", len(idle))
	}
	return len(idle), nil
}

// retire destroys a sandbox and frees its memory.
func (w *Worker) retire(inst *instance) {
	w.pool.forget(inst.id)
	if inst.api != nil {
		inst.api.Close()
	}
	if inst.sb != nil {
		if err := inst.sb.Destroy(); err != nil {
			w.log.Warn("destroy sandbox", "sandbox", inst.id, "err", err)
		}
	}
	if inst.logs != nil {
		inst.logs.close()
	}
	w.pool.release(inst.memoryMB)
}

// janitor freezes sandboxes that went idle and retires those past keep-alive.
func (w *Worker) janitor() {
	defer close(w.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		for _, inst := range w.pool.takeExpired(now) {
			w.pool.noteUnloaded(inst.key, "keep_alive_expired")
			w.log.Debug("keep-alive expired", "sandbox", inst.id)
			w.retire(inst)
		}
		for _, inst := range w.pool.takeUnfrozenIdleSince(now.Add(-w.cfg.FreezeAfter)) {
			if err := inst.freeze(); err != nil {
				w.log.Warn("freeze failed", "sandbox", inst.id, "err", err)
				w.retire(inst)
				continue
			}
			w.keep(inst)
		}
	}
}

// Close drains: new invocations are refused, in-flight ones finish (or
// ctx ends them), then every sandbox is destroyed and nothing is left.
// Calling it again returns the first call's result.
func (w *Worker) Close(ctx context.Context) error {
	w.closeOnce.Do(func() { w.closeErr = w.close(ctx) })
	return w.closeErr
}

func (w *Worker) close(ctx context.Context) error {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	finished := make(chan struct{})
	go func() { w.inflt.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		w.log.Warn("drain deadline passed; killing in-flight sandboxes")
	}
	close(w.stop)
	<-w.done
	<-w.usageDone
	if err := w.usage.save(); err != nil {
		w.log.Warn("usage rollup", "err", err)
	}
	<-w.stemsDone
	w.bg.Wait()
	for _, inst := range w.pool.takeAll() {
		w.retire(inst)
	}
	w.logs.close()
	return w.sbx.Close()
}

// Sandboxes lists live sandboxes, for operators.
func (w *Worker) Sandboxes(context.Context) ([]workerapi.Sandbox, error) {
	return w.pool.list(w.cfg.Name), nil
}

// StemCells is how many stem cells are ready for cold starts.
func (w *Worker) StemCells() int {
	if w.stems == nil {
		return 0
	}
	return w.stems.size()
}

// StemCellTarget is the stock of stem cells the worker keeps: 0 when it
// keeps none, or when stem cells cannot work here.
func (w *Worker) StemCellTarget() int {
	if w.stems == nil {
		return 0
	}
	select {
	case <-w.stems.off:
		return 0
	default:
		return cap(w.stems.ready)
	}
}

// Provision keeps count initialised sandboxes of a function version here
// for hold (provisioned concurrency): it marks those it has and starts the
// rest. The leader calls it again before hold runs out.
func (w *Worker) Provision(ctx context.Context, fn workerapi.FunctionSpec, count int, hold time.Duration) (existing, started int, err error) {
	w.mu.Lock()
	draining := w.draining
	w.mu.Unlock()
	if draining {
		return 0, 0, workerapi.ErrDraining
	}
	if err := fn.Validate(); err != nil {
		return 0, 0, err
	}
	until := time.Now().Add(hold)
	existing = w.pool.markProvisioned(workerapi.PoolKey(fn), count, until)
	for i := existing; i < count; i++ {
		inst, res, err := w.coldStart(ctx, fn, "provisioned")
		if err != nil {
			return existing, started, err
		}
		if res != nil {
			return existing, started, fmt.Errorf("provisioned sandbox failed to initialise: %s", res.Payload)
		}
		inst.provisionedUntil, inst.lastUsed = until, time.Now()
		inst.idleUntil = inst.lastUsed.Add(w.cfg.KeepAlive)
		w.keep(inst)
		started++
	}
	return existing, started, nil
}

// Drain refuses new invocations from now on; in-flight ones finish.
func (w *Worker) Drain(context.Context) error {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	w.pool.notify()
	return nil
}

// State returns the current pool state.
func (w *Worker) State() workerapi.PoolState {
	w.mu.Lock()
	draining := w.draining
	w.mu.Unlock()
	st, busy := w.pool.state()
	st.MemoryMB = int64(w.cfg.MemoryMB)
	st.FreeMemoryMB = int64(w.cfg.MemoryMB - busy)
	st.Draining = draining
	st.Digests = w.code.digests()
	return st
}

// WatchPool calls fn with the pool state whenever it changes, and at
// least every second, until ctx ends or fn fails.
func (w *Worker) WatchPool(ctx context.Context, fn func(workerapi.PoolState) error) error {
	changed, stop := w.pool.subscribe()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := fn(w.State()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			// Coalesce a burst of changes into one state.
			time.Sleep(2 * time.Millisecond)
		case <-tick.C:
		}
	}
}

func (w *Worker) environment(fn workerapi.FunctionSpec) []string {
	name := fn.FunctionName()
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + sandbox.RuntimeAPIAddr,
		"_HANDLER=" + fn.Handler,
		"LAMBDA_TASK_ROOT=/var/task",
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=" + fn.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + name,
		"AWS_REGION=" + w.cfg.Region,
		"AWS_DEFAULT_REGION=" + w.cfg.Region,
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
	}
	keys := make([]string, 0, len(fn.Env))
	for k := range fn.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+fn.Env[k])
	}
	return env
}

func (w *Worker) functionARN(fn workerapi.FunctionSpec) string {
	arn := "arn:aws:lambda:" + w.cfg.Region + ":000000000000:function:" + fn.FunctionName()
	if fn.Version != "" && fn.Version != "$LATEST" {
		arn += ":" + fn.Version
	}
	return arn
}

func exitPayload(e sandbox.Exit) []byte {
	if e.OOM {
		return errorPayload("Runtime.OutOfMemory", "Runtime exited with error: signal: killed")
	}
	if e.Signal != "" {
		return errorPayload("Runtime.ExitError", "Runtime exited with error: signal: "+e.Signal)
	}
	return errorPayload("Runtime.ExitError", fmt.Sprintf("Runtime exited with error: exit status %d", e.Code))
}

func errorPayload(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	return b
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newSandboxID() string {
	var b [6]byte
	rand.Read(b[:])
	return "sbx-" + hex.EncodeToString(b[:])
}

func hostMemoryMB() int {
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			return int(kb / 1024)
		}
	}
	return 4096
}
