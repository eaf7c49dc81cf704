package runtimeapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialRaw opens a connection to addr and sends what, if anything. It
// returns nil if the server reset the connection before the dial returned.
func dialRaw(t *testing.T, addr, what string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if what != "" {
		c.Write([]byte(what)) // the server may already have closed it
	}
	return c
}

func (h *harness) dialRaw(what string) net.Conn {
	h.t.Helper()
	return dialRaw(h.t, strings.TrimPrefix(h.base, "http://"), what)
}

// closedWithin reports whether the server closes c (EOF or reset) within
// d; a nil c was reset as it was dialled.
func closedWithin(c net.Conn, d time.Duration) bool {
	if c == nil {
		return true
	}
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

const rawNext = "GET " + nextPath + " HTTP/1.1\r\nHost: x\r\n\r\n"

// TestConnectionLimit: past MaxConns, connections are closed as soon as
// they are accepted, without a goroutine each, and the runtime's own
// connections keep working.
func TestConnectionLimit(t *testing.T) {
	h := newHarness(t, Options{MaxConns: 4})
	got := make(chan string, 4)
	for range 4 {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, h.base+nextPath, nil)
			r, err := h.do(req)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- r.header.Get(hdrRequestID)
		}()
	}
	waitFor(t, "four pollers parked", func() bool { return h.s.waiting.Load() == 4 })
	goroutines := runtime.NumGoroutine()

	start := time.Now()
	for i := range 300 {
		what := rawNext
		if i%2 == 1 {
			what = "GET " + nextPath + " HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", 4000) // never ends
		}
		if c := h.dialRaw(what); !closedWithin(c, 5*time.Second) {
			t.Fatalf("connection %d past the limit was served", i)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("refusing 300 connections took %s", took)
	}
	if n := h.s.Refused(); n != 300 {
		t.Errorf("Refused() = %d, want 300", n)
	}
	if n := runtime.NumGoroutine(); n > goroutines+5 {
		t.Errorf("%d goroutines after the refused connections, %d before", n, goroutines)
	}

	// The parked pollers are untouched: an invocation reaches one of them.
	done := h.invokeAsync(testContext(t), inv("after-flood", `{"x":1}`))
	if id := <-got; id != "after-flood" {
		t.Fatalf("a parked poller got %q, want the invocation", id)
	}
	if r, err := h.post(responsePath("after-flood"), []byte(`"ok"`)); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("answer after the flood: %v %+v", err, r)
	}
	if o := wait(t, done); o.err != nil || string(o.res.Payload) != `"ok"` {
		t.Fatalf("Invoke after the flood: %+v", o)
	}
}

// TestConnectionLimitFreesPlaces: a closed connection gives its place back.
func TestConnectionLimitFreesPlaces(t *testing.T) {
	h := newHarness(t, Options{MaxConns: 2})
	a, b := h.dialRaw(rawNext), h.dialRaw(rawNext)
	if a == nil || b == nil {
		t.Fatal("a connection under the limit was reset")
	}
	waitFor(t, "two pollers parked", func() bool { return h.s.waiting.Load() == 2 })
	if c := h.dialRaw(rawNext); !closedWithin(c, 5*time.Second) {
		t.Fatal("a third connection was served with MaxConns 2")
	}
	a.Close()
	b.Close()
	waitFor(t, "places given back", func() bool { return h.s.ln.open.Load() == 0 })
	if h.dialRaw(rawNext) == nil {
		t.Fatal("a connection was reset after places were given back")
	}
	waitFor(t, "a new poller parked", func() bool { return h.s.waiting.Load() == 1 })
}

// TestHeaderLimit: headers past maxHeaderBytes get 431; an X-Ray error
// cause of a few hundred KB, as runtimes send with a function error,
// passes.
func TestHeaderLimit(t *testing.T) {
	h := newHarness(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, h.base+nextPath, nil)
	req.Header.Set("X-Pad", strings.Repeat("a", maxHeaderBytes+8<<10))
	// The server answers 431 and closes; the client may see the reset of
	// the headers it was still sending instead.
	if r, err := h.do(req); !errors.Is(err, syscall.ECONNRESET) && r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET /next with %d bytes of headers: %v %d, want 431 or a reset", maxHeaderBytes+8<<10, err, r.status)
	}
	if h.s.waiting.Load() != 0 {
		t.Error("the request with oversized headers was served")
	}

	done := h.invokeAsync(testContext(t), inv("xray", `{}`))
	h.next()
	cause := fmt.Sprintf(`{"exceptions":[{"message":%q}]}`, strings.Repeat("m", 300<<10))
	r := h.request(http.MethodPost, errorPath("xray"), []byte(`{"errorMessage":"m","errorType":"E"}`),
		http.Header{"Lambda-Runtime-Function-Xray-Error-Cause": {cause}})
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /error with a 300 KB X-Ray cause: %d %s, want 202", r.status, r.body)
	}
	if o := wait(t, done); o.err != nil || o.res.ErrorType != "E" {
		t.Fatalf("Invoke: %+v, want error type E", o)
	}
}

// TestIdleConnectionsClosed: a connection that sends no request, or half
// of one, or sits idle after one, is closed; a GET /next parked for many
// times the idle timeout is not, and still gets its invocation.
func TestIdleConnectionsClosed(t *testing.T) {
	h := newHarness(t, Options{headerTimeout: 100 * time.Millisecond, idleTimeout: 100 * time.Millisecond})
	for name, what := range map[string]string{
		"silent":      "",
		"half header": "GET " + nextPath + " HTTP/1.1\r\nHost: x\r\n",
	} {
		if c := h.dialRaw(what); !closedWithin(c, 5*time.Second) {
			t.Errorf("%s connection not closed", name)
		}
	}

	idle := h.dialRaw("POST " + responsePath("nobody") + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest || resp.Close {
		t.Fatalf("POST for an unknown id: %v %+v, want a kept-alive 400", err, resp)
	}
	if !closedWithin(idle, 5*time.Second) {
		t.Error("idle keep-alive connection not closed")
	}

	parked := h.dialRaw(rawNext)
	waitFor(t, "a poller parked", func() bool { return h.s.waiting.Load() == 1 })
	time.Sleep(time.Second) // ten idle timeouts: a frozen sandbox's poll waits far longer
	done := h.invokeAsync(testContext(t), inv("late", `{}`))
	parked.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(parked), nil)
	if err != nil || resp.Header.Get(hdrRequestID) != "late" {
		t.Fatalf("long-parked GET /next: %v %+v, want the invocation", err, resp)
	}
	resp.Body.Close()
	h.s.Close()
	wait(t, done)
}

// askReader serves data and records the largest read asked of it.
type askReader struct {
	data   []byte
	maxAsk int
}

func (r *askReader) Read(p []byte) (int, error) {
	r.maxAsk = max(r.maxAsk, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReadBodyGrowsAsDataArrives: a declared length is not allocated
// before the body arrives.
func TestReadBodyGrowsAsDataArrives(t *testing.T) {
	r := &askReader{data: []byte("short")}
	if _, _, err := readBody(r, DefaultMaxResponseBytes, DefaultMaxResponseBytes); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("6 MB declared, 5 bytes sent: %v, want unexpected EOF", err)
	}
	if r.maxAsk > 4<<10 {
		t.Errorf("readBody asked for %d bytes at once before any arrived", r.maxAsk)
	}
	r = &askReader{data: make([]byte, 3<<20)}
	if body, tooLarge, err := readBody(r, 3<<20, DefaultMaxResponseBytes); err != nil || tooLarge || len(body) != 3<<20 {
		t.Errorf("3 MB declared and sent: %d bytes, tooLarge %v, %v", len(body), tooLarge, err)
	}
}

// TestAWSLambdaGoLongError: a function error whose message is 200 KB
// reaches the caller, and the runtime keeps serving; aws-lambda-go sends
// the message again in its X-Ray cause header.
func TestAWSLambdaGoLongError(t *testing.T) {
	f := startFunction(t, Options{})
	msg := strings.Repeat("e", 200<<10)
	res := f.invoke(t, "long-err", fmt.Sprintf(`{"error":%q}`, msg))
	if e := decodeLambdaError(t, res.Payload); res.ErrorType != "errorString" || e.Message != msg {
		t.Errorf("long error: type %q, message of %d bytes; want errorString and the %d bytes", res.ErrorType, len(e.Message), len(msg))
	}
	if res := f.invoke(t, "after", `{"n":1}`); res.ErrorType != "" || string(res.Payload) != `{"n":1}` {
		t.Errorf("after the long error: {%q %s}", res.ErrorType, res.Payload)
	}
}

// TestAWSLambdaGoThroughFloodAndIdle: aws-lambda-go keeps working while
// other connections flood the server and after idling in GET /next for
// many idle timeouts.
func TestAWSLambdaGoThroughFloodAndIdle(t *testing.T) {
	f := startFunction(t, Options{MaxConns: 2, headerTimeout: 100 * time.Millisecond, idleTimeout: 100 * time.Millisecond})
	if res := f.invoke(t, "before", `{"n":0}`); res.ErrorType != "" {
		t.Fatalf("before the flood: {%q %s}", res.ErrorType, res.Payload)
	}
	addr := f.srv.ln.Addr().String()
	for range 200 {
		dialRaw(t, addr, "GET "+nextPath+" HTTP/1.1\r\nX-Pad: endless")
	}
	time.Sleep(time.Second)
	for i := range 3 {
		payload := fmt.Sprintf(`{"n":%d}`, i+1)
		if res := f.invoke(t, fmt.Sprintf("after-%d", i), payload); res.ErrorType != "" || string(res.Payload) != payload {
			t.Fatalf("after the flood: {%q %s}", res.ErrorType, res.Payload)
		}
	}
	if f.srv.Refused() == 0 {
		t.Error("no connection was refused")
	}
}
