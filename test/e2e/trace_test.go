package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is an OTLP/gRPC trace receiver that keeps span names by trace id.
type collector struct {
	collectorpb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string // trace id (hex) → span names
}

func (c *collector) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := hex.EncodeToString(sp.GetTraceId())
				c.spans[id] = append(c.spans[id], sp.GetName())
			}
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func (c *collector) names(traceID string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.spans[traceID]...)
}

// TestTraces: a traceparent sent with an HTTP invoke reaches the function
// as its trace id (_X_AMZN_TRACE_ID, as aws-lambda-go sees it), and the
// spans of admission, placement, sandbox start and invoke arrive at the
// OTLP collector under that trace. Without a traceparent the function
// still gets a trace id.
func TestTraces(t *testing.T) {
	col := &collector{spans: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(gs, col)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	d := startDaemon(t, "--otlp-endpoint", ln.Addr().String(), "--otlp-insecure")
	d.deploy(t, "tr", bin.probeDir)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	invoke := func(traceparent string) (fnSaw struct{ Env, Ctx string }) {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+d.http+"/2015-03-31/functions/tr/invocations", strings.NewReader(`{"action":"trace"}`))
		if err != nil {
			t.Fatal(err)
		}
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
			t.Fatalf("invoke: %d %s", resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, &fnSaw); err != nil {
			t.Fatalf("invoke: %v: %s", err, body)
		}
		return fnSaw
	}

	saw := invoke("00-" + traceID + "-00f067aa0ba902b7-01")
	wantRoot := "Root=1-" + traceID[:8] + "-" + traceID[8:] + ";"
	if !strings.HasPrefix(saw.Env, wantRoot) || !strings.Contains(saw.Env, ";Sampled=1") || saw.Ctx != saw.Env {
		t.Fatalf("function saw trace %q (context %q), want it to start %q and be sampled", saw.Env, saw.Ctx, wantRoot)
	}
	if strings.Contains(saw.Env, "Parent=00f067aa0ba902b7") {
		t.Errorf("function's parent is the caller's span, not gust's: %q", saw.Env)
	}

	// Warm, and a second trace: each invocation gets its own.
	other := invoke("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if !strings.HasPrefix(other.Env, "Root=1-0af76519-16cd43dd8448eb211c80319c;") {
		t.Errorf("second invocation saw %q", other.Env)
	}
	// No traceparent: a fresh trace id all the same, as on Lambda.
	if fresh := invoke(""); !strings.HasPrefix(fresh.Env, "Root=1-") || strings.Contains(fresh.Env, traceID[8:]) {
		t.Errorf("invocation without traceparent saw %q", fresh.Env)
	}

	want := []string{"invoke", "admission", "placement", "sandbox.start", "sandbox.invoke"}
	testutil.Eventually(t, 20*time.Second, func() bool {
		got := strings.Join(col.names(traceID), ",")
		for _, w := range want {
			if !strings.Contains(","+got+",", ","+w+",") {
				return false
			}
		}
		return true
	}, "collector never got spans %v of trace %s; got %v", want, traceID, stringer(func() string { return strings.Join(col.names(traceID), ",") }))
}

// stringer prints what its function returns when the message is made.
type stringer func() string

func (s stringer) String() string { return s() }
