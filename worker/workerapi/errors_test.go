package workerapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/nodeauth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// sentinels are the refusals that cross the wire as errors (ErrNoWarm is
// an answer on the Invoke stream instead).
var sentinels = []error{ErrDraining, ErrCapacity, ErrCode, ErrInvalidFunction}

// wantOnly checks got is want and no other sentinel: ErrDraining and
// ErrCode share a gRPC code, so only the reason tells them apart.
func wantOnly(t *testing.T, what string, got, want error) {
	t.Helper()
	for _, s := range append(sentinels, ErrNoWarm) {
		if is := errors.Is(got, s); is != (s == want) {
			t.Errorf("%s: errors.Is(%v, %q) = %v", what, got, s, is)
		}
	}
}

// Every sentinel, bare or wrapped with a worker's context, comes back from
// its status as itself, with the worker's message.
func TestSentinelsSurviveStatus(t *testing.T) {
	for _, s := range sentinels {
		for _, err := range []error{s, fmt.Errorf("sandbox for acme.fn: %w", s)} {
			st := toStatus(err)
			if _, ok := status.FromError(st); !ok {
				t.Fatalf("toStatus(%v) = %v, not a gRPC status", err, st)
			}
			got := fromStatus(st)
			wantOnly(t, err.Error(), got, s)
			if got.Error() != err.Error() {
				t.Errorf("message %q arrived as %q", err, got)
			}
		}
	}
	// Any other error stays what it is: no sentinel appears from nowhere.
	got := fromStatus(toStatus(errors.New("disk on fire")))
	wantOnly(t, "plain error", got, nil)
}

// refusingWorker answers every call with err; with started, Invoke first
// tells the caller it has a sandbox and then returns a result.
type refusingWorker struct {
	err     error
	started bool
}

func (w *refusingWorker) Name() string { return "w1" }

func (w *refusingWorker) Invoke(_ context.Context, req InvokeRequest) (*InvokeResult, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.started && req.OnStart != nil {
		req.OnStart("sb-1", true)
	}
	return &InvokeResult{RequestID: req.RequestID, Worker: "w1", Sandbox: "sb-1", ColdStart: true, Payload: []byte(`"ok"`)}, nil
}

func (w *refusingWorker) WatchPool(ctx context.Context, _ func(PoolState) error) error {
	<-ctx.Done()
	return ctx.Err()
}
func (w *refusingWorker) Sandboxes(context.Context) ([]Sandbox, error) { return nil, w.err }
func (w *refusingWorker) Drain(context.Context) error                  { return w.err }
func (w *refusingWorker) Provision(context.Context, FunctionSpec, int, time.Duration) (int, int, error) {
	return 0, 0, w.err
}
func (w *refusingWorker) ReadLogs(context.Context, string, LogOptions, func([]byte) error) error {
	return w.err
}
func (w *refusingWorker) Usage(context.Context, string, time.Time, time.Time) (UsageReport, error) {
	return UsageReport{}, w.err
}
func (w *refusingWorker) Retire(context.Context, string) (int, error) { return 0, w.err }

// serve runs w behind a real gRPC server on loopback, behind the node
// handshake, and returns a Client dialled to it.
func serve(t *testing.T, w Worker) *Client {
	t.Helper()
	secret := nodeauth.Secret("0123456789abcdef0123456789abcdef")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	(&Server{W: w}).Register(gs)
	go gs.Serve(nodeauth.Listen(ln, secret, nil, nodeauth.GRPC))
	t.Cleanup(gs.Stop)
	c, err := Dial("w1", ln.Addr().String(), nil, secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var testSpec = FunctionSpec{Name: "acme.fn", Version: "$LATEST", CodeDigest: "ab", MemoryMB: 128, Timeout: time.Second}

// A worker's refusal reaches the coordinator's side of a real gRPC link as
// the same sentinel, with the worker's message, on every call that
// refuses before doing anything.
func TestRefusalsSurviveTheLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range sentinels {
		refusal := fmt.Errorf("worker w1: %w", s)
		c := serve(t, &refusingWorker{err: refusal})
		check := func(call string, err error) {
			t.Helper()
			wantOnly(t, call+" refused with "+s.Error(), err, s)
			if err != nil && err.Error() != refusal.Error() {
				t.Errorf("%s: message %q arrived as %q", call, refusal, err)
			}
		}
		_, err := c.Invoke(ctx, InvokeRequest{Function: testSpec, RequestID: "r1",
			OnStart: func(string, bool) { t.Errorf("OnStart called for an invocation refused with %v", s) }})
		check("Invoke", err)
		_, _, err = c.Provision(ctx, testSpec, 1, time.Minute)
		check("Provision", err)
		_, err = c.Retire(ctx, testSpec.Name)
		check("Retire", err)
	}
}

// ErrNoWarm is an answer on the Invoke stream, and arrives as ErrNoWarm.
func TestNoWarmSurvivesTheLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := serve(t, &refusingWorker{err: fmt.Errorf("pool: %w", ErrNoWarm)})
	_, err := c.Invoke(ctx, InvokeRequest{Function: testSpec, RequestID: "r1", WarmOnly: true})
	wantOnly(t, "warm-only Invoke", err, ErrNoWarm)
}

// OnStart fires on the client, once, with the worker's sandbox, before the
// result is returned: the router relies on it to know the invocation may
// no longer be placed elsewhere.
func TestOnStartBeforeResult(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := serve(t, &refusingWorker{started: true})
	var starts []string
	returned := false
	res, err := c.Invoke(ctx, InvokeRequest{Function: testSpec, RequestID: "r1", OnStart: func(sandbox string, cold bool) {
		if returned {
			t.Error("OnStart called after Invoke returned")
		}
		starts = append(starts, fmt.Sprintf("%s cold=%v", sandbox, cold))
	}})
	returned = true
	if err != nil {
		t.Fatal(err)
	}
	if len(starts) != 1 || starts[0] != "sb-1 cold=true" {
		t.Errorf("OnStart calls %q, want one for sb-1 cold", starts)
	}
	if res.Sandbox != "sb-1" || string(res.Payload) != `"ok"` || res.RequestID != "r1" {
		t.Errorf("result %+v", res)
	}
}
