package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/codezip"
	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/sandbox"
	"github.com/gustfaas/gust/worker"
	"github.com/gustfaas/gust/worker/keepalive"
	"github.com/gustfaas/gust/worker/workerapi"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

// memCode serves code zips from memory, counting fetches.
type memCode struct {
	mu      sync.Mutex
	zips    map[string][]byte
	fetches int
}

func (m *memCode) OpenCode(_ context.Context, digest string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fetches++
	return io.NopCloser(bytes.NewReader(m.zips[digest])), nil
}

func helloZip(t *testing.T) []byte {
	t.Helper()
	bin := testutil.BuildStatic(t, "../examples/hello", filepath.Join(t.TempDir(), "bootstrap"))
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.BootstrapZip(t, data)
}

func newWorker(t *testing.T, mutate func(*worker.Config)) (*worker.Worker, workerapi.FunctionSpec, *memCode) {
	t.Helper()
	testutil.RequireRoot(t)
	z := helloZip(t)
	digest, _, err := codezip.Digest(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	code := &memCode{zips: map[string][]byte{digest: z}}
	cfg := worker.DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.Code, cfg.MemoryMB = "w1", t.TempDir(), code, 2048
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	fn := workerapi.FunctionSpec{Name: "hello", Version: "$LATEST", Revision: 1, CodeDigest: digest, MemoryMB: 128, Timeout: 3 * time.Second}
	return w, fn, code
}

func invocations(t *testing.T, res *workerapi.InvokeResult) int {
	t.Helper()
	var body struct{ Invocations int }
	if err := json.Unmarshal(res.Payload, &body); err != nil || res.FunctionError != "" {
		t.Fatalf("payload %s, function error %q: %v", res.Payload, res.FunctionError, err)
	}
	return body.Invocations
}

func TestWarmReuseAndCodeCache(t *testing.T) {
	w, fn, code := newWorker(t, nil)
	ctx := context.Background()
	first, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r1", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r2", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !first.ColdStart || second.ColdStart || first.Sandbox != second.Sandbox {
		t.Fatalf("cold %v/%v sandboxes %s/%s", first.ColdStart, second.ColdStart, first.Sandbox, second.Sandbox)
	}
	if invocations(t, first) != 1 || invocations(t, second) != 2 {
		t.Fatal("state was not kept in the warm process")
	}
	// A new revision is a new sandbox, but the same digest is not fetched again.
	fn.Revision = 2
	third, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r3", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !third.ColdStart || third.Sandbox == first.Sandbox {
		t.Fatal("a new revision reused the old sandbox")
	}
	if code.fetches != 1 {
		t.Fatalf("code fetched %d times, want 1", code.fetches)
	}
}

func TestConcurrentInvokesGetTheirOwnSandboxes(t *testing.T) {
	w, fn, _ := newWorker(t, nil)
	var wg sync.WaitGroup
	results := make([]*workerapi.InvokeResult, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := w.Invoke(context.Background(), workerapi.InvokeRequest{Function: fn, RequestID: "c", Payload: []byte(`{}`)})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range results {
		if r != nil {
			invocations(t, r)
			seen[r.Sandbox] = true
		}
	}
	if len(seen) < 2 {
		t.Fatalf("3 concurrent invokes shared %d sandbox(es); a sandbox runs one invocation at a time", len(seen))
	}
}

func TestFreezeThenKeepAliveExpiry(t *testing.T) {
	w, fn, _ := newWorker(t, func(c *worker.Config) {
		c.FreezeAfter = 50 * time.Millisecond
		c.KeepAlive = 1500 * time.Millisecond
	})
	ctx := context.Background()
	first, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r1", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		s := sandboxes(t, w)
		return len(s) == 1 && s[0].State == "frozen"
	}, "idle sandbox never frozen")
	// A frozen sandbox thaws and answers warm.
	second, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r2", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if second.ColdStart || second.Sandbox != first.Sandbox || invocations(t, second) != 2 {
		t.Fatalf("frozen sandbox not reused: %+v", second)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return len(sandboxes(t, w)) == 0 }, "keep-alive never expired")
	third, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r3", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !third.ColdStart {
		t.Fatal("invoke after keep-alive expiry was warm")
	}
}

func TestCapacityEvictsIdleSandboxes(t *testing.T) {
	w, fn, _ := newWorker(t, func(c *worker.Config) { c.MemoryMB = 256 })
	ctx := context.Background()
	for rev := uint64(1); rev <= 3; rev++ {
		fn.Revision = rev
		res, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r", Payload: []byte(`{}`)})
		if err != nil {
			t.Fatalf("revision %d: %v", rev, err)
		}
		invocations(t, res)
	}
	if n := len(sandboxes(t, w)); n > 2 {
		t.Fatalf("%d sandboxes of 128 MB live in 256 MB", n)
	}
	fn.MemoryMB, fn.Revision = 512, 4 // a config change is a new revision
	if _, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r", Payload: []byte(`{}`)}); err == nil {
		t.Fatal("a 512 MB function fit in a 256 MB worker")
	}
}

// TestColdStartFromStemCell: with stem cells ready, a cold start assigns
// one (its /var/task is the stem's own directory) rather than creating a
// sandbox, the function's output reaches its log, and the stock is topped
// up again.
func TestColdStartFromStemCell(t *testing.T) {
	if !sandbox.StemsSupported() {
		if os.Getenv("CI") == "true" {
			t.Fatal("stem cells need a statically linked test binary: run through make test")
		}
		t.Skip("stem cells need a statically linked test binary: run through make test")
	}
	var dataDir string
	w, fn, _ := newWorker(t, func(c *worker.Config) { c.StemCells, dataDir = 2, c.DataDir })
	testutil.Eventually(t, 20*time.Second, func() bool { return w.StemCells() == 2 }, "stem cells never became ready")
	fn.MemoryMB = 256
	fn.Env = map[string]string{"GREETING": "from a stem"}
	res, err := w.Invoke(context.Background(), workerapi.InvokeRequest{Function: fn, RequestID: "r1", Payload: []byte(`{"name":"stem"}`), LogTail: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.ColdStart || res.FunctionError != "" {
		t.Fatalf("cold %v, error %q: %s (log %s)", res.ColdStart, res.FunctionError, res.Payload, res.LogTail)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "sandbox-work", res.Sandbox, "bootstrap")); err != nil {
		t.Fatalf("sandbox %s was not a stem cell: %v", res.Sandbox, err)
	}
	if !bytes.Contains(res.Payload, []byte(`"hello, stem"`)) {
		t.Fatalf("payload %s", res.Payload)
	}
	// The function's own stderr reaches its tail through the stem's pipe.
	for _, want := range []string{"greeting stem", "REPORT RequestId: r1", "Memory Size: 256 MB"} {
		if !bytes.Contains([]byte(res.LogTail), []byte(want)) {
			t.Fatalf("log tail %q lacks %q", res.LogTail, want)
		}
	}
	testutil.Eventually(t, 20*time.Second, func() bool { return w.StemCells() == 2 }, "stem cells were not topped up")
}

// prewarmPolicy unloads every idle sandbox and asks for a fresh one soon.
type prewarmPolicy struct{ prewarm time.Duration }

func (prewarmPolicy) Arrived(string, time.Time) {}
func (p prewarmPolicy) Idle(string, time.Time) keepalive.Window {
	return keepalive.Window{Prewarm: p.prewarm, KeepAlive: time.Minute}
}
func (prewarmPolicy) Forget(string) {}

// TestKeepAlivePolicyPrewarm: a policy that pre-warms unloads the idle
// sandbox at once and loads a fresh one later, so the next invocation is
// warm on a new sandbox.
func TestKeepAlivePolicyPrewarm(t *testing.T) {
	w, fn, _ := newWorker(t, func(c *worker.Config) { c.KeepAlivePolicy = prewarmPolicy{300 * time.Millisecond} })
	ctx := context.Background()
	first, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r1", Payload: []byte(`{}`)})
	if err != nil || !first.ColdStart {
		t.Fatalf("first: %+v %v", first, err)
	}
	for _, s := range sandboxes(t, w) {
		if s.ID == first.Sandbox {
			t.Fatalf("sandbox %s still loaded after a pre-warm decision", s.ID)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		s := sandboxes(t, w)
		return len(s) == 1 && s[0].ID != first.Sandbox && s[0].State == "idle"
	}, "no pre-warmed sandbox appeared")
	second, err := w.Invoke(ctx, workerapi.InvokeRequest{Function: fn, RequestID: "r2", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if second.ColdStart || second.Sandbox == first.Sandbox {
		t.Fatalf("second: cold %v on %s (first %s)", second.ColdStart, second.Sandbox, first.Sandbox)
	}
}

func sandboxes(t *testing.T, w *worker.Worker) []workerapi.Sandbox {
	t.Helper()
	list, err := w.Sandboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}
