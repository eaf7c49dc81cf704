package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/worker/workerapi"
)

// fakeWorker is a scripted workerConn: the router's logic is under test,
// not the worker.
type fakeWorker struct {
	name  string
	mu    sync.Mutex
	calls []bool // WarmOnly of each call
	// answer decides each call's outcome.
	answer func(warmOnly bool, started func()) (*workerapi.InvokeResult, error)
	state  chan workerapi.PoolState
	// usageRes and usageErr answer usage requests.
	usageRes workerapi.UsageReport
	usageErr error
}

var _ workerapi.Worker = (*fakeWorker)(nil)

func newFake(name string, free int64, idle map[string]int32) *fakeWorker {
	f := &fakeWorker{name: name, state: make(chan workerapi.PoolState, 8)}
	f.push(free, idle)
	return f
}

func (f *fakeWorker) push(free int64, idle map[string]int32) {
	f.state <- workerapi.PoolState{MemoryMB: 4096, FreeMemoryMB: free, Idle: idle}
}

func (f *fakeWorker) Name() string { return f.name }

func (f *fakeWorker) Invoke(_ context.Context, req workerapi.InvokeRequest) (*workerapi.InvokeResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req.WarmOnly)
	f.mu.Unlock()
	return f.answer(req.WarmOnly, func() { req.OnStart("sb", !req.WarmOnly) })
}

func (f *fakeWorker) WatchPool(ctx context.Context, fn func(workerapi.PoolState) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case st := <-f.state:
			if err := fn(st); err != nil {
				return err
			}
		}
	}
}

func (f *fakeWorker) Sandboxes(context.Context) ([]workerapi.Sandbox, error) { return nil, nil }
func (f *fakeWorker) Drain(context.Context) error                            { return nil }
func (f *fakeWorker) Provision(context.Context, workerapi.FunctionSpec, int, time.Duration) (int, int, error) {
	return 0, 0, nil
}
func (f *fakeWorker) ReadLogs(context.Context, string, workerapi.LogOptions, func([]byte) error) error {
	return nil
}
func (f *fakeWorker) Usage(context.Context, string, time.Time, time.Time) (workerapi.UsageReport, error) {
	return f.usageRes, f.usageErr
}
func (f *fakeWorker) Retire(context.Context, string) (int, error) { return 0, nil }

func (f *fakeWorker) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

var spec = workerapi.FunctionSpec{Name: "fn", Version: "$LATEST", Revision: 1, CodeDigest: strings.Repeat("a", 64), MemoryMB: 128, Timeout: time.Second}

func ok(name string) func(bool, func()) (*workerapi.InvokeResult, error) {
	return func(_ bool, started func()) (*workerapi.InvokeResult, error) {
		started()
		return &workerapi.InvokeResult{Worker: name, Payload: []byte(`{}`)}, nil
	}
}

func routerWith(t *testing.T, fakes ...*fakeWorker) *Router {
	t.Helper()
	r := NewRouter(nil, nil, nil)
	for _, f := range fakes {
		r.add(f.name, "fake", f, nil)
	}
	t.Cleanup(r.Close)
	deadline := time.Now().Add(2 * time.Second)
	for r.workerCount() < len(fakes) {
		if time.Now().After(deadline) {
			t.Fatal("fake workers never became available")
		}
		time.Sleep(time.Millisecond)
	}
	return r
}

// A coordinator that loses the race for an idle sandbox (the worker says
// NoWarmSandbox) places again instead of failing.
func TestRouterLostWarmRacePlacesAgain(t *testing.T) {
	key := workerapi.PoolKey(spec)
	w1 := newFake("w1", 4096, map[string]int32{key: 1})
	w1.answer = func(warmOnly bool, started func()) (*workerapi.InvokeResult, error) {
		if warmOnly {
			return nil, workerapi.ErrNoWarm // another coordinator took it
		}
		return ok("w1")(warmOnly, started)
	}
	r := routerWith(t, w1)
	res, err := r.Invoke(context.Background(), workerapi.InvokeRequest{Function: spec, RequestID: "r"})
	if err != nil || res.Worker != "w1" {
		t.Fatalf("res %+v err %v", res, err)
	}
	if len(w1.calls) != 2 || !w1.calls[0] || w1.calls[1] {
		t.Fatalf("calls (warm-only flags) %v, want [true false]", w1.calls)
	}
}

// A worker that fails before it starts the invocation is avoided and the
// invocation placed elsewhere; once started, a failure is a retriable
// ServiceException naming the worker, never a second run.
func TestRouterFailureBeforeAndAfterStart(t *testing.T) {
	bad := newFake("bad", 4096, nil)
	good := newFake("good", 1024, nil) // less free: the random tier prefers bad
	bad.answer = func(bool, func()) (*workerapi.InvokeResult, error) {
		return nil, workerapi.ErrDraining
	}
	good.answer = ok("good")
	r := routerWith(t, bad, good)
	for i := 0; i < 5; i++ {
		res, err := r.Invoke(context.Background(), workerapi.InvokeRequest{Function: spec, RequestID: "r"})
		if err != nil || res.Worker != "good" {
			t.Fatalf("invoke %d: res %+v err %v", i, res, err)
		}
	}

	crash := newFake("crash", 4096, nil)
	crash.answer = func(_ bool, started func()) (*workerapi.InvokeResult, error) {
		started()
		return nil, errors.New("connection reset")
	}
	r2 := routerWith(t, crash)
	_, err := r2.Invoke(context.Background(), workerapi.InvokeRequest{Function: spec, RequestID: "r"})
	e, isAPI := apierr.As(err)
	if !isAPI || e.Name != apierr.Service || !strings.Contains(e.Message, "crash") {
		t.Fatalf("got %v, want ServiceException naming worker crash", err)
	}
	if crash.callCount() != 1 {
		t.Fatalf("a started invocation ran %d times", crash.callCount())
	}
}

// Warm beats cold: with an idle sandbox on w2, w2 is asked warm-only.
func TestRouterPrefersWarmWorker(t *testing.T) {
	key := workerapi.PoolKey(spec)
	w1 := newFake("w1", 4096, nil)
	w2 := newFake("w2", 512, map[string]int32{key: 1})
	w1.answer, w2.answer = ok("w1"), ok("w2")
	r := routerWith(t, w1, w2)
	res, err := r.Invoke(context.Background(), workerapi.InvokeRequest{Function: spec, RequestID: "r"})
	if err != nil || res.Worker != "w2" || !w2.calls[0] {
		t.Fatalf("res %+v err %v calls %v", res, err, w2.calls)
	}
}

// With no worker at all the caller gets ResourceNotReadyException after a
// short wait, not a hang.
func TestRouterNoWorkers(t *testing.T) {
	r := NewRouter(nil, nil, nil)
	start := time.Now()
	_, err := r.Invoke(context.Background(), workerapi.InvokeRequest{Function: spec, RequestID: "r"})
	if e, ok := apierr.As(err); !ok || e.Name != apierr.ResourceNotReady {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 3*noWorkerWait {
		t.Fatalf("waited %s", d)
	}
}
