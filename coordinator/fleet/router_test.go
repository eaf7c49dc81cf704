package coordinator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/worker"
)

// fakeWorker is a scripted workerConn: the router's logic is under test,
// not the worker.
type fakeWorker struct {
	name  string
	mu    sync.Mutex
	calls []bool // WarmOnly of each call
	// answer decides each call's outcome.
	answer func(warmOnly bool, started func()) (*worker.InvokeResult, error)
	state  chan *nodev1.WatchPoolResponse
	// usageRes and usageErr answer usage requests.
	usageRes *nodev1.FunctionUsageResponse
	usageErr error
}

func newFake(name string, free int64, idle map[string]int32) *fakeWorker {
	f := &fakeWorker{name: name, state: make(chan *nodev1.WatchPoolResponse, 8)}
	f.push(free, idle)
	return f
}

func (f *fakeWorker) push(free int64, idle map[string]int32) {
	st := &nodev1.WatchPoolResponse{Worker: f.name, MemoryMb: 4096, FreeMemoryMb: free}
	for k, n := range idle {
		st.Entries = append(st.Entries, &nodev1.PoolEntry{Key: k, Idle: n})
	}
	f.state <- st
}

func (f *fakeWorker) invoke(_ context.Context, req *nodev1.InvokeRequest, started func()) (*worker.InvokeResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req.GetWarmOnly())
	f.mu.Unlock()
	return f.answer(req.GetWarmOnly(), started)
}

func (f *fakeWorker) watch(ctx context.Context, fn func(*nodev1.WatchPoolResponse)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case st := <-f.state:
			fn(st)
		}
	}
}

func (f *fakeWorker) listSandboxes(context.Context) ([]*nodev1.Sandbox, error) { return nil, nil }
func (f *fakeWorker) drain(context.Context) error                              { return nil }

func (f *fakeWorker) provision(context.Context, *nodev1.ProvisionRequest) (int, error) { return 0, nil }
func (f *fakeWorker) logs(context.Context, *nodev1.FunctionLogsRequest, func([]byte) error) error {
	return nil
}
func (f *fakeWorker) usage(context.Context, *nodev1.FunctionUsageRequest) (*nodev1.FunctionUsageResponse, error) {
	return f.usageRes, f.usageErr
}
func (f *fakeWorker) close() error                         { return nil }
func (f *fakeWorker) retire(context.Context, string) error { return nil }

func (f *fakeWorker) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

var spec = worker.FunctionSpec{Name: "fn", Version: "$LATEST", Revision: 1, CodeDigest: strings.Repeat("a", 64), MemoryMB: 128, Timeout: time.Second}

func ok(name string) func(bool, func()) (*worker.InvokeResult, error) {
	return func(_ bool, started func()) (*worker.InvokeResult, error) {
		started()
		return &worker.InvokeResult{Worker: name, Payload: []byte(`{}`)}, nil
	}
}

func routerWith(t *testing.T, fakes ...*fakeWorker) *Router {
	t.Helper()
	r := NewRouter(nil)
	for _, f := range fakes {
		r.add(f.name, "fake", f)
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
	key := worker.PoolKey(spec)
	w1 := newFake("w1", 4096, map[string]int32{key: 1})
	w1.answer = func(warmOnly bool, started func()) (*worker.InvokeResult, error) {
		if warmOnly {
			return nil, errNoWarm // another coordinator took it
		}
		return ok("w1")(warmOnly, started)
	}
	r := routerWith(t, w1)
	res, err := r.Invoke(context.Background(), worker.InvokeRequest{Function: spec, RequestID: "r"})
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
	bad.answer = func(bool, func()) (*worker.InvokeResult, error) {
		return nil, errRefused
	}
	good.answer = ok("good")
	r := routerWith(t, bad, good)
	for i := 0; i < 5; i++ {
		res, err := r.Invoke(context.Background(), worker.InvokeRequest{Function: spec, RequestID: "r"})
		if err != nil || res.Worker != "good" {
			t.Fatalf("invoke %d: res %+v err %v", i, res, err)
		}
	}

	crash := newFake("crash", 4096, nil)
	crash.answer = func(_ bool, started func()) (*worker.InvokeResult, error) {
		started()
		return nil, errors.New("connection reset")
	}
	r2 := routerWith(t, crash)
	_, err := r2.Invoke(context.Background(), worker.InvokeRequest{Function: spec, RequestID: "r"})
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
	key := worker.PoolKey(spec)
	w1 := newFake("w1", 4096, nil)
	w2 := newFake("w2", 512, map[string]int32{key: 1})
	w1.answer, w2.answer = ok("w1"), ok("w2")
	r := routerWith(t, w1, w2)
	res, err := r.Invoke(context.Background(), worker.InvokeRequest{Function: spec, RequestID: "r"})
	if err != nil || res.Worker != "w2" || !w2.calls[0] {
		t.Fatalf("res %+v err %v calls %v", res, err, w2.calls)
	}
}

// With no worker at all the caller gets ResourceNotReadyException after a
// short wait, not a hang.
func TestRouterNoWorkers(t *testing.T) {
	r := NewRouter(nil)
	start := time.Now()
	_, err := r.Invoke(context.Background(), worker.InvokeRequest{Function: spec, RequestID: "r"})
	if e, ok := apierr.As(err); !ok || e.Name != apierr.ResourceNotReady {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 3*noWorkerWait {
		t.Fatalf("waited %s", d)
	}
}
