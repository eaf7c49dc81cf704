package lambdahttp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// stallingBody delivers data and then fails as a client that hung up
// would, so a test can see what a handler allocated for a body that was
// declared large and never came.
type stallingBody struct{ data []byte }

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// TestDeclaredLengthIsNotAllocated is the trial's H2: a Content-Length
// under the limit used to be allocated in full before a byte arrived, so
// 200 slow invokes declaring 6 MB took the coordinator's heap to 1.2 GB.
func TestDeclaredLengthIsNotAllocated(t *testing.T) {
	h := Handler(newFakeManager(), Options{})
	for _, tc := range []struct {
		name, method, target string
		declared             int64
	}{
		{"invoke", http.MethodPost, invokeFn, DefaultMaxSyncPayload},
		{"function URL", http.MethodPost, "/fn/fn/x", DefaultMaxFunctionURLBody},
		{"CreateFunction", http.MethodPost, "/2015-03-31/functions", DefaultMaxCodeRequest},
		{"UpdateFunctionCode", http.MethodPut, "/2015-03-31/functions/fn/code", DefaultMaxCodeRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, &stallingBody{data: []byte(`{"a":`)})
			req.ContentLength = tc.declared
			rec := httptest.NewRecorder()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			h.ServeHTTP(rec, req)
			runtime.ReadMemStats(&after)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 400 for a body cut short", rec.Code)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
				t.Errorf("allocated %d KiB for 5 bytes of a body declared as %d MiB", got>>10, tc.declared>>20)
			}
		})
	}
}

// oneByteReader hands out a byte per Read, the worst case for growth.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(1, len(p))]) }

func TestReadAtMost(t *testing.T) {
	const limit = 100_000
	for _, tc := range []struct {
		name     string
		size     int
		declared int64 // -1: unknown (chunked)
		tooLarge bool
	}{
		{name: "empty", size: 0, declared: 0},
		{name: "small, declared", size: 10, declared: 10},
		{name: "at the limit, declared", size: limit, declared: limit},
		{name: "at the limit, chunked", size: limit, declared: -1},
		{name: "over the limit, chunked", size: limit + 1, declared: -1, tooLarge: true},
		{name: "more than declared", size: 50_000, declared: 20_000},
		{name: "more than declared, over the limit", size: limit + 5, declared: 20_000, tooLarge: true},
		{name: "less than declared", size: 30_000, declared: 60_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Repeat([]byte("x"), tc.size)
			for _, r := range []io.Reader{bytes.NewReader(data), oneByteReader{bytes.NewReader(data)}} {
				got, err := readAtMost(r, limit, tc.declared)
				if tc.tooLarge {
					if err != errTooLarge {
						t.Fatalf("got %d bytes, %v; want errTooLarge", len(got), err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("got %d bytes, %v; want the %d bytes sent", len(got), err, tc.size)
				}
				// An honest body ends in a buffer of its own size (plus
				// the byte that saw EOF); others in at most twice theirs.
				if tc.declared == int64(tc.size) && cap(got) != tc.size+1 {
					t.Errorf("buffer of %d bytes for a %d byte body", cap(got), tc.size)
				}
				if cap(got) > max(2*tc.size, initialBodyBuffer) {
					t.Errorf("buffer of %d bytes for a %d byte body", cap(got), tc.size)
				}
			}
		})
	}
}

// blockingInvoker answers after hold, reporting whether the request's
// context was cancelled meanwhile.
type blockingInvoker struct {
	hold      time.Duration
	cancelled chan bool
	payload   chan []byte
}

func (b *blockingInvoker) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	b.payload <- req.GetPayload()
	select {
	case <-time.After(b.hold):
		b.cancelled <- false
	case <-ctx.Done():
		b.cancelled <- true
	}
	return &gustv1.InvokeResponse{Payload: []byte(`"done"`)}, nil
}

// pacedServer serves Handler on a real connection, where read deadlines
// exist, with a short grace so the tests run in about a second.
func pacedServer(t *testing.T, inv Invoker, readTimeout time.Duration) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(Handler(inv, Options{BodyGrace: 300 * time.Millisecond, MinBodyRate: 1000}))
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawRequest writes an invoke's headers declaring length bytes of body.
func rawRequest(t *testing.T, addr string, length int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", invokeFn, length)
	return c
}

// TestSlowBodyIsCutOff: a client that sends a byte of a declared 100 kB
// body and then nothing gets 408 after the grace, and its connection is
// closed; the function is not run.
func TestSlowBodyIsCutOff(t *testing.T) {
	fake := &fakeInvoker{}
	c := rawRequest(t, pacedServer(t, fake, 0), 100_000)
	c.Write([]byte("{"))
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body) // to EOF: the server closed the connection
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get(hdrErrorType) != requestTimeout || !resp.Close {
		t.Errorf("got %d %s (close %v) %s; want 408 %s and the connection closed",
			resp.StatusCode, resp.Header.Get(hdrErrorType), resp.Close, body, requestTimeout)
	}
	if !strings.Contains(string(body), "at least 1000 bytes per second") {
		t.Errorf("message %s does not say what pace is needed", body)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("cut off after %v; want about the 300ms grace", took)
	}
	if len(fake.Calls()) != 0 {
		t.Error("the function ran with a body that never arrived")
	}
}

// TestSteadySlowBodyPasses: a body slower than the network but faster
// than the minimum rate is read in full, however long it takes overall.
func TestSteadySlowBodyPasses(t *testing.T) {
	fake := &fakeInvoker{}
	const chunks, size = 20, 100 // 2000 bytes at 2000 B/s, twice the minimum
	c := rawRequest(t, pacedServer(t, fake, 0), chunks*size)
	for range chunks {
		if _, err := c.Write(bytes.Repeat([]byte("7"), size)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the client's pace, not a wait for the server
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d for a body sent at twice the minimum rate", resp.StatusCode)
	}
	if calls := fake.Calls(); len(calls) != 1 || len(calls[0].GetPayload()) != chunks*size {
		t.Errorf("the function got %d calls, want one with the whole body", len(calls))
	}
}

// TestLongInvocationOutlivesDeadlines: once the body is in (or when there
// is none), neither the pacing deadline nor the server's ReadTimeout may
// cancel an invocation that runs far longer than both (net/http cancels
// the context when its background read of the connection fails).
func TestLongInvocationOutlivesDeadlines(t *testing.T) {
	for _, body := range []string{`{"x":1}`, ""} {
		t.Run(fmt.Sprintf("body %q", body), func(t *testing.T) {
			inv := &blockingInvoker{hold: time.Second, cancelled: make(chan bool, 1), payload: make(chan []byte, 1)}
			c := rawRequest(t, pacedServer(t, inv, 300*time.Millisecond), len(body))
			c.Write([]byte(body))
			if got := <-inv.payload; string(got) != body {
				t.Fatalf("payload %q, want %q", got, body)
			}
			if <-inv.cancelled {
				t.Fatal("the invocation's context was cancelled by a read deadline")
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("answer %v, %v; want 200", resp, err)
			}
		})
	}
}
