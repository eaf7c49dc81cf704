package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/coordinator/fleet"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/nodeauth"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/worker/workerapi"
	"google.golang.org/grpc"
)

// refuser is a worker whose pool looks ready (free memory, not draining),
// so placement picks it, and which refuses every invocation with err.
type refuser struct {
	err   error
	calls atomic.Int32
}

func (w *refuser) Name() string { return "w1" }

func (w *refuser) Invoke(context.Context, workerapi.InvokeRequest) (*workerapi.InvokeResult, error) {
	w.calls.Add(1)
	return nil, w.err
}

func (w *refuser) WatchPool(ctx context.Context, fn func(workerapi.PoolState) error) error {
	if err := fn(workerapi.PoolState{MemoryMB: 4096, FreeMemoryMB: 4096}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (w *refuser) Sandboxes(context.Context) ([]workerapi.Sandbox, error) { return nil, nil }
func (w *refuser) Drain(context.Context) error                            { return nil }
func (w *refuser) Provision(context.Context, workerapi.FunctionSpec, int, time.Duration) (int, int, error) {
	return 0, 0, nil
}
func (w *refuser) ReadLogs(context.Context, string, workerapi.LogOptions, func([]byte) error) error {
	return nil
}
func (w *refuser) Usage(context.Context, string, time.Time, time.Time) (workerapi.UsageReport, error) {
	return workerapi.UsageReport{}, nil
}
func (w *refuser) Retire(context.Context, string) (int, error) { return 0, nil }

var testSecret = nodeauth.Secret("0123456789abcdef0123456789abcdef")

// serveWorker serves w over gRPC on loopback, behind the node handshake,
// as a worker on another host does; it returns the address.
func serveWorker(t *testing.T, w workerapi.Worker) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	(&workerapi.Server{W: w}).Register(gs)
	go gs.Serve(nodeauth.Listen(ln, testSecret, nil, nodeauth.GRPC))
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// startCoordinator runs a single-node coordinator with its user-facing
// gRPC and HTTP fronts on loopback, placing invocations through router.
func startCoordinator(t *testing.T, router *fleet.Router) *Coordinator {
	t.Helper()
	store, code := openLeadingStores(t)
	cfg := DefaultConfig()
	cfg.Name, cfg.GRPCAddr, cfg.HTTPAddr = "c1", "127.0.0.1:0", "127.0.0.1:0"
	c, err := New(cfg, Deps{Store: store, Code: code, Router: router})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Shutdown(ctx)
		<-served
	})
	return c
}

// waitAvailable waits until the router would place on the worker.
func waitAvailable(t *testing.T, router *fleet.Router) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws := router.Workers()
		if len(ws) == 1 && ws[0].Available {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker never became available: %+v", ws)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A worker's refusal reaches the caller under the name DESIGN.md's error
// table gives it, whether the worker shares the coordinator's process
// (gustd dev) or sits across the gRPC link (a cluster), and through both
// user-facing fronts: draining is ResourceNotReadyException (HTTP 502),
// no capacity is ServiceException (HTTP 500) saying so. A link that drops
// the sentinel turns both into an anonymous "invoke fn" ServiceException.
func TestWorkerRefusalNamedForCaller(t *testing.T) {
	refusals := []struct {
		err    error
		name   string
		status int
		says   string // in the caller's message
	}{
		{fmt.Errorf("worker w1: %w", workerapi.ErrDraining), apierr.ResourceNotReady, http.StatusBadGateway, "draining"},
		{fmt.Errorf("worker w1: %w", workerapi.ErrCapacity), apierr.Service, http.StatusInternalServerError, "no capacity for fn"},
	}
	links := []struct {
		name string
		add  func(t *testing.T, r *fleet.Router, w workerapi.Worker)
	}{
		{"in process", func(_ *testing.T, r *fleet.Router, w workerapi.Worker) { r.AddLocal(w) }},
		{"over gRPC", func(t *testing.T, r *fleet.Router, w workerapi.Worker) {
			r.SetWorker(w.Name(), serveWorker(t, w), true)
		}},
	}
	for _, link := range links {
		for _, rf := range refusals {
			t.Run(link.name+"/"+rf.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				w := &refuser{err: rf.err}
				router := fleet.NewRouter(nil, nil, testSecret)
				c := startCoordinator(t, router)
				link.add(t, router, w)
				waitAvailable(t, router)

				cl, err := client.New([]string{c.GRPCAddr()}, "")
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				if _, err := cl.Deploy(ctx, &gustv1.FunctionConfig{Name: "fn", Handler: "bootstrap"},
					bytes.NewReader(codeZip(t, "#!/bin/sh\n"))); err != nil {
					t.Fatalf("deploy: %v", err)
				}

				// gRPC, through the SDK.
				_, err = cl.Invoke(ctx, &gustv1.InvokeRequest{Function: "fn"})
				e, ok := apierr.As(err)
				if !ok || e.Name != rf.name || !strings.Contains(e.Message, rf.says) {
					t.Errorf("gRPC: got %v, want %s saying %q", err, rf.name, rf.says)
				}

				// HTTP, through the Lambda REST front.
				url := "http://" + c.HTTPAddr() + "/2015-03-31/functions/fn/invocations"
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var body struct {
					Message string `json:"message"`
				}
				derr := json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if derr != nil {
					t.Fatalf("HTTP: error body: %v", derr)
				}
				if got := resp.Header.Get("X-Amzn-ErrorType"); resp.StatusCode != rf.status || got != rf.name || !strings.Contains(body.Message, rf.says) {
					t.Errorf("HTTP: %d %s %q, want %d %s saying %q", resp.StatusCode, got, body.Message, rf.status, rf.name, rf.says)
				}

				// Both reached the worker: the names are its refusal's, not
				// the router's own for an empty fleet.
				if n := w.calls.Load(); n != 2 {
					t.Errorf("the worker saw %d invocations, want 2", n)
				}
			})
		}
	}
}
