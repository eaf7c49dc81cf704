package runtimeapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	nextPath = "/2018-06-01/runtime/invocation/next"
	initPath = "/2018-06-01/runtime/init/error"
)

func responsePath(id string) string { return "/2018-06-01/runtime/invocation/" + id + "/response" }
func errorPath(id string) string    { return "/2018-06-01/runtime/invocation/" + id + "/error" }

// harness is a Server on a loopback listener plus a fake runtime client.
type harness struct {
	t      *testing.T
	s      *Server
	base   string
	client *http.Client
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := New(ln, opts)
	t.Cleanup(func() { _ = s.Close() })
	// A private transport so idle connections from one test never leak
	// into another.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &harness{t: t, s: s, base: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reply is a fully read HTTP response.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// errorType decodes the errorType of an API error body.
func (r reply) errorType() string {
	var b errorBody
	_ = json.Unmarshal(r.body, &b)
	return b.Type
}

func (h *harness) do(req *http.Request) (reply, error) {
	resp, err := h.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// request sends a request and fails the test on transport errors.
func (h *harness) request(method, path string, body []byte, header http.Header) reply {
	h.t.Helper()
	req, err := http.NewRequestWithContext(testContext(h.t), method, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	r, err := h.do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// next performs GET /next and expects an invocation.
func (h *harness) next() reply {
	h.t.Helper()
	r := h.request(http.MethodGet, nextPath, nil, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET /next: status %d, body %s", r.status, r.body)
	}
	return r
}

// post sends a POST without failing the test, for use off the test goroutine.
func (h *harness) post(path string, body []byte) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	return h.do(req)
}

// runtimeLoop is a minimal runtime: poll, answer with answer(id) (a nil body
// echoes the event), repeat until the server goes away.
func (h *harness) runtimeLoop(answer func(id string) (path string, body []byte)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			req, _ := http.NewRequest(http.MethodGet, h.base+nextPath, nil)
			r, err := h.do(req)
			if err != nil || r.status != http.StatusOK {
				return
			}
			path, body := answer(r.header.Get(hdrRequestID))
			if body == nil {
				body = r.body
			}
			if r, err := h.post(path, body); err != nil || r.status != http.StatusAccepted {
				return
			}
		}
	}()
	return done
}

// outcome is what an asynchronous Invoke returned.
type outcome struct {
	res Result
	err error
}

func (h *harness) invokeAsync(ctx context.Context, inv Invocation) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := h.s.Invoke(ctx, inv)
		ch <- outcome{res, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("Invoke did not return")
		return outcome{}
	}
}

func inv(id string, payload string) Invocation {
	return Invocation{
		RequestID:   id,
		Payload:     []byte(payload),
		Deadline:    time.Now().Add(time.Minute),
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:echo",
	}
}

// waitFor polls cond; used for server-side state with no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNextDeliversInvocationWithHeaders(t *testing.T) {
	deadline := time.UnixMilli(1_900_000_000_123)
	tests := []struct {
		name       string
		inv        Invocation
		wantHeader map[string]string // "" means the header must be absent
	}{
		{
			name: "all fields",
			inv: Invocation{
				RequestID:       "req-all",
				Payload:         []byte(`{"hello":"world"}`),
				Deadline:        deadline,
				FunctionARN:     "arn:aws:lambda:eu-west-1:1:function:f",
				TraceID:         "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
				ClientContext:   `{"custom":{"k":"v"}}`,
				CognitoIdentity: `{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}`,
			},
			wantHeader: map[string]string{
				"Lambda-Runtime-Aws-Request-Id":       "req-all",
				"Lambda-Runtime-Deadline-Ms":          "1900000000123",
				"Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:1:function:f",
				"Lambda-Runtime-Trace-Id":             "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
				"Lambda-Runtime-Client-Context":       `{"custom":{"k":"v"}}`,
				"Lambda-Runtime-Cognito-Identity":     `{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}`,
				"Content-Type":                        "application/json",
				"Content-Length":                      "17",
			},
		},
		{
			name: "optional headers omitted",
			inv:  Invocation{RequestID: "req-min", Payload: []byte(`{}`), Deadline: deadline, FunctionARN: "arn"},
			wantHeader: map[string]string{
				"Lambda-Runtime-Aws-Request-Id":       "req-min",
				"Lambda-Runtime-Deadline-Ms":          "1900000000123",
				"Lambda-Runtime-Invoked-Function-Arn": "arn",
				"Lambda-Runtime-Trace-Id":             "",
				"Lambda-Runtime-Client-Context":       "",
				"Lambda-Runtime-Cognito-Identity":     "",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			done := h.invokeAsync(testContext(t), tc.inv)
			r := h.next()
			if !bytes.Equal(r.body, tc.inv.Payload) {
				t.Errorf("body = %q, want %q", r.body, tc.inv.Payload)
			}
			for k, want := range tc.wantHeader {
				got, present := r.header[k]
				switch {
				case want == "" && present:
					t.Errorf("header %s = %q, want it absent", k, got)
				case want != "" && r.header.Get(k) != want:
					t.Errorf("header %s = %q, want %q", k, r.header.Get(k), want)
				}
			}
			ack := h.request(http.MethodPost, responsePath(tc.inv.RequestID), []byte(`"ok"`), nil)
			if ack.status != http.StatusAccepted || string(ack.body) != `{"status":"OK"}` {
				t.Fatalf("POST response: %d %s, want 202 {\"status\":\"OK\"}", ack.status, ack.body)
			}
			o := wait(t, done)
			if o.err != nil || o.res.ErrorType != "" || string(o.res.Payload) != `"ok"` {
				t.Fatalf("Invoke = %+v, %v; want payload \"ok\"", o.res, o.err)
			}
		})
	}
}

func TestInvokeDeadlineDefaultsToContext(t *testing.T) {
	h := newHarness(t, Options{})
	want := time.Now().Add(5 * time.Second).Truncate(time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), want)
	defer cancel()
	in := inv("req-ctx", `{}`)
	in.Deadline = time.Time{}
	done := h.invokeAsync(ctx, in)
	r := h.next()
	if got := r.header.Get(hdrDeadlineMS); got != strconv.FormatInt(want.UnixMilli(), 10) {
		t.Errorf("deadline header = %s, want %d", got, want.UnixMilli())
	}
	h.request(http.MethodPost, responsePath("req-ctx"), nil, nil)
	if o := wait(t, done); o.err != nil {
		t.Fatalf("Invoke: %v", o.err)
	}
}

func TestInvokeRejectsInvalidInvocation(t *testing.T) {
	h := newHarness(t, Options{})
	noDeadline := inv("req", `{}`)
	noDeadline.Deadline = time.Time{}
	for name, in := range map[string]Invocation{
		"empty request id":     inv("", `{}`),
		"slash in request id":  inv("a/b", `{}`),
		"no deadline anywhere": noDeadline,
	} {
		if _, err := h.s.Invoke(context.Background(), in); err == nil {
			t.Errorf("%s: Invoke succeeded, want an error", name)
		}
	}
}

// TestAcceptedAnswers covers every way a runtime answers an in-flight
// invocation and what Invoke returns for it.
func TestAcceptedAnswers(t *testing.T) {
	const id = "req-1"
	const limit = 64
	tests := []struct {
		name       string
		path       string
		body       []byte
		header     http.Header
		chunked    bool
		trailer    http.Header
		wantStatus int
		wantType   string // errorType in the reply body when not 202
		wantResult Result
	}{
		{
			name: "response", path: responsePath(id), body: []byte(`{"echo":1}`),
			wantStatus: 202, wantResult: Result{Payload: []byte(`{"echo":1}`)},
		},
		{
			name: "empty response", path: responsePath(id), body: nil,
			wantStatus: 202, wantResult: Result{Payload: []byte{}},
		},
		{
			name: "response exactly at limit", path: responsePath(id), body: bytes.Repeat([]byte("a"), limit),
			wantStatus: 202, wantResult: Result{Payload: bytes.Repeat([]byte("a"), limit)},
		},
		{
			name: "response too large", path: responsePath(id), body: bytes.Repeat([]byte("a"), limit+1),
			wantStatus: 413, wantType: "RequestEntityTooLarge", wantResult: tooLargeResult(limit),
		},
		{
			name: "chunked response", path: responsePath(id), body: []byte(`"streamed"`), chunked: true,
			wantStatus: 202, wantResult: Result{Payload: []byte(`"streamed"`)},
		},
		{
			name: "chunked response too large", path: responsePath(id), body: bytes.Repeat([]byte("b"), 3*limit), chunked: true,
			wantStatus: 413, wantType: "RequestEntityTooLarge", wantResult: tooLargeResult(limit),
		},
		{
			name: "chunked response with error trailers", path: responsePath(id), body: []byte(`partial`), chunked: true,
			trailer: http.Header{
				hdrErrorType: {"Runtime.StreamError"},
				trlErrorBody: {base64.StdEncoding.EncodeToString([]byte(`{"errorMessage":"stream broke","errorType":"Runtime.StreamError"}`))},
			},
			wantStatus: 202,
			wantResult: Result{ErrorType: "Runtime.StreamError", Payload: []byte(`{"errorMessage":"stream broke","errorType":"Runtime.StreamError"}`)},
		},
		{
			name: "chunked response with error type trailer only", path: responsePath(id), body: []byte(`partial`), chunked: true,
			trailer:    http.Header{hdrErrorType: {"Runtime.StreamError"}},
			wantStatus: 202,
			wantResult: Result{ErrorType: "Runtime.StreamError", Payload: errorJSON("Runtime.StreamError", "The runtime reported an error while sending the response")},
		},
		{
			name: "error type from header", path: errorPath(id),
			body:       []byte(`{"errorMessage":"bad","errorType":"FromBody"}`),
			header:     http.Header{hdrErrorType: {"FromHeader"}},
			wantStatus: 202,
			wantResult: Result{ErrorType: "FromHeader", Payload: []byte(`{"errorMessage":"bad","errorType":"FromBody"}`)},
		},
		{
			name: "error type from body", path: errorPath(id),
			body:       []byte(`{"errorMessage":"bad","errorType":"errorString"}`),
			wantStatus: 202,
			wantResult: Result{ErrorType: "errorString", Payload: []byte(`{"errorMessage":"bad","errorType":"errorString"}`)},
		},
		{
			name: "error without type", path: errorPath(id), body: []byte(`{"errorMessage":"bad"}`),
			wantStatus: 202, wantResult: Result{ErrorType: "Runtime.Unknown", Payload: []byte(`{"errorMessage":"bad"}`)},
		},
		{
			name: "error body not JSON is wrapped", path: errorPath(id), body: []byte(`it "broke"`),
			header:     http.Header{hdrErrorType: {"Custom.Type"}},
			wantStatus: 202, wantResult: Result{ErrorType: "Custom.Type", Payload: []byte(`{"errorMessage":"it \"broke\"","errorType":"Custom.Type"}`)},
		},
		{
			name: "empty error body", path: errorPath(id), body: nil,
			wantStatus: 202, wantResult: Result{ErrorType: "Runtime.Unknown", Payload: []byte(`{"errorMessage":"","errorType":"Runtime.Unknown"}`)},
		},
		{
			name: "error too large", path: errorPath(id), body: bytes.Repeat([]byte("c"), limit+1),
			wantStatus: 413, wantType: "RequestEntityTooLarge", wantResult: tooLargeResult(limit),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{MaxResponseBytes: limit})
			done := h.invokeAsync(testContext(t), inv(id, `{}`))
			h.next()

			req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, h.base+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if tc.chunked {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
				req.Trailer = tc.trailer
			}
			r, err := h.do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", r.status, r.body, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusAccepted && string(r.body) != `{"status":"OK"}` {
				t.Errorf("body = %s, want {\"status\":\"OK\"}", r.body)
			}
			if tc.wantType != "" && r.errorType() != tc.wantType {
				t.Errorf("reply errorType = %q, want %q", r.errorType(), tc.wantType)
			}
			o := wait(t, done)
			if o.err != nil {
				t.Fatalf("Invoke: %v", o.err)
			}
			if o.res.ErrorType != tc.wantResult.ErrorType || !bytes.Equal(o.res.Payload, tc.wantResult.Payload) {
				t.Errorf("Invoke result = {%q %s}, want {%q %s}",
					o.res.ErrorType, o.res.Payload, tc.wantResult.ErrorType, tc.wantResult.Payload)
			}
		})
	}
}

// TestRejectedRequests covers every 400/403/404/405 reply.
func TestRejectedRequests(t *testing.T) {
	// deliverCur leaves invocation "cur" delivered and unanswered.
	deliverCur := func(t *testing.T, h *harness) {
		h.invokeAsync(testContext(t), inv("cur", `{}`))
		h.next()
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T, h *harness)
		method     string
		path       string
		wantStatus int
		wantType   string
		wantAllow  string
	}{
		{"unknown id response", deliverCur, "POST", responsePath("nope"), 400, "InvalidRequestID", ""},
		{"unknown id error", deliverCur, "POST", errorPath("nope"), 400, "InvalidRequestID", ""},
		{"queued but never delivered id", func(t *testing.T, h *harness) {
			h.invokeAsync(testContext(t), inv("cur", `{}`))
			waitFor(t, "invocation queued", func() bool { return len(h.s.queue) == 1 })
		}, "POST", responsePath("cur"), 400, "InvalidRequestID", ""},
		{"already answered", func(t *testing.T, h *harness) {
			done := h.invokeAsync(testContext(t), inv("cur", `{}`))
			h.next()
			h.request("POST", responsePath("cur"), []byte(`1`), nil)
			wait(t, done)
		}, "POST", responsePath("cur"), 403, "InvalidStateTransition", ""},
		{"answered then error", func(t *testing.T, h *harness) {
			done := h.invokeAsync(testContext(t), inv("cur", `{}`))
			h.next()
			h.request("POST", responsePath("cur"), []byte(`1`), nil)
			wait(t, done)
		}, "POST", errorPath("cur"), 403, "InvalidStateTransition", ""},
		{"previous id while another is in flight", func(t *testing.T, h *harness) {
			done := h.invokeAsync(testContext(t), inv("old", `{}`))
			h.next()
			h.request("POST", responsePath("old"), []byte(`1`), nil)
			wait(t, done)
			deliverCur(t, h)
		}, "POST", responsePath("old"), 403, "InvalidStateTransition", ""},
		{"abandoned id", func(t *testing.T, h *harness) {
			ctx, cancel := context.WithCancel(context.Background())
			done := h.invokeAsync(ctx, inv("cur", `{}`))
			h.next()
			cancel()
			if o := wait(t, done); !errors.Is(o.err, context.Canceled) {
				t.Fatalf("Invoke err = %v, want context.Canceled", o.err)
			}
		}, "POST", responsePath("cur"), 403, "InvalidStateTransition", ""},
		{"init error after init", deliverCur, "POST", initPath, 403, "InvalidStateTransition", ""},
		{"unknown prefix", nil, "GET", "/2019-01-01/runtime/invocation/next", 404, "NotFound", ""},
		{"root", nil, "GET", "/", 404, "NotFound", ""},
		{"no action", nil, "POST", "/2018-06-01/runtime/invocation/cur", 404, "NotFound", ""},
		{"unknown action", nil, "POST", "/2018-06-01/runtime/invocation/cur/cancel", 404, "NotFound", ""},
		{"empty id", nil, "POST", "/2018-06-01/runtime/invocation//response", 404, "NotFound", ""},
		{"nested id", nil, "POST", "/2018-06-01/runtime/invocation/a/b/response", 404, "NotFound", ""},
		{"POST next", nil, "POST", nextPath, 405, "MethodNotAllowed", "GET"},
		{"GET response", nil, "GET", responsePath("cur"), 405, "MethodNotAllowed", "POST"},
		{"PUT error", nil, "PUT", errorPath("cur"), 405, "MethodNotAllowed", "POST"},
		{"GET init error", nil, "GET", initPath, 405, "MethodNotAllowed", "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			if tc.setup != nil {
				tc.setup(t, h)
			}
			r := h.request(tc.method, tc.path, []byte(`{"errorType":"X"}`), nil)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", r.status, r.body, tc.wantStatus)
			}
			if r.errorType() != tc.wantType {
				t.Errorf("errorType = %q (body %s), want %q", r.errorType(), r.body, tc.wantType)
			}
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := r.header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
		})
	}
}

// TestRejectedPostLeavesInvocationAnswerable checks a 400 for a wrong ID does
// not disturb the in-flight invocation.
func TestRejectedPostLeavesInvocationAnswerable(t *testing.T) {
	h := newHarness(t, Options{})
	done := h.invokeAsync(testContext(t), inv("cur", `{}`))
	h.next()
	if r := h.request("POST", responsePath("other"), []byte(`1`), nil); r.status != 400 {
		t.Fatalf("wrong id: status %d, want 400", r.status)
	}
	if r := h.request("POST", responsePath("cur"), []byte(`2`), nil); r.status != 202 {
		t.Fatalf("right id: status %d, want 202", r.status)
	}
	if o := wait(t, done); o.err != nil || string(o.res.Payload) != "2" {
		t.Fatalf("Invoke = %+v, %v; want payload 2", o.res, o.err)
	}
}

func TestInitError(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		header   http.Header
		wantType string
		wantBody string
	}{
		{"type from header", `{"errorMessage":"no config","errorType":"Body.Type"}`, http.Header{hdrErrorType: {"Runtime.ConfigError"}},
			"Runtime.ConfigError", `{"errorMessage":"no config","errorType":"Body.Type"}`},
		{"type from body", `{"errorMessage":"no config","errorType":"Body.Type"}`, nil,
			"Body.Type", `{"errorMessage":"no config","errorType":"Body.Type"}`},
		{"no type, not JSON", `boom`, nil,
			"Runtime.Unknown", `{"errorMessage":"boom","errorType":"Runtime.Unknown"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			ready := make(chan error, 1)
			go func() { ready <- h.s.WaitReady(testContext(t)) }()

			if r := h.request("POST", initPath, []byte(tc.body), tc.header); r.status != http.StatusAccepted || string(r.body) != `{"status":"OK"}` {
				t.Fatalf("POST init/error: %d %s, want 202", r.status, r.body)
			}
			var initErr *InitError
			select {
			case err := <-ready:
				if !errors.As(err, &initErr) {
					t.Fatalf("WaitReady = %v, want *InitError", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("WaitReady not released by the init error")
			}
			if initErr.Type != tc.wantType || string(initErr.Payload) != tc.wantBody {
				t.Errorf("InitError = {%q %s}, want {%q %s}", initErr.Type, initErr.Payload, tc.wantType, tc.wantBody)
			}
			if !strings.Contains(initErr.Error(), tc.wantType) {
				t.Errorf("Error() = %q, want it to mention %q", initErr.Error(), tc.wantType)
			}

			// Once init failed, the runtime may neither report again nor poll.
			if r := h.request("POST", initPath, []byte(`{}`), nil); r.status != 403 || r.errorType() != "InvalidStateTransition" {
				t.Errorf("second init/error: %d %s, want 403 InvalidStateTransition", r.status, r.body)
			}
			if r := h.request("GET", nextPath, nil, nil); r.status != 403 || r.errorType() != "InvalidStateTransition" {
				t.Errorf("GET /next after init error: %d %s, want 403 InvalidStateTransition", r.status, r.body)
			}
			if _, err := h.s.Invoke(testContext(t), inv("x", `{}`)); !errors.As(err, &initErr) {
				t.Errorf("Invoke after init error = %v, want *InitError", err)
			}
		})
	}
}

func TestInitErrorReleasesPendingInvoke(t *testing.T) {
	h := newHarness(t, Options{})
	done := h.invokeAsync(testContext(t), inv("early", `{}`))
	waitFor(t, "invocation queued", func() bool { return len(h.s.queue) == 1 })
	h.request("POST", initPath, []byte(`{"errorMessage":"x","errorType":"Init.Fail"}`), nil)
	var initErr *InitError
	if o := wait(t, done); !errors.As(o.err, &initErr) || initErr.Type != "Init.Fail" {
		t.Fatalf("Invoke err = %v, want *InitError Init.Fail", o.err)
	}
}

func TestWaitReady(t *testing.T) {
	t.Run("first next ends init", func(t *testing.T) {
		h := newHarness(t, Options{})
		ready := make(chan error, 1)
		go func() { ready <- h.s.WaitReady(testContext(t)) }()
		select {
		case err := <-ready:
			t.Fatalf("WaitReady returned %v before any GET /next", err)
		case <-time.After(50 * time.Millisecond):
		}
		done := h.invokeAsync(testContext(t), inv("r", `{}`))
		h.next()
		if err := <-ready; err != nil {
			t.Fatalf("WaitReady = %v, want nil", err)
		}
		h.request("POST", responsePath("r"), nil, nil)
		wait(t, done)
		if err := h.s.WaitReady(testContext(t)); err != nil {
			t.Fatalf("WaitReady after ready = %v", err)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		h := newHarness(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := h.s.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitReady = %v, want DeadlineExceeded", err)
		}
	})
}

func TestConcurrentInvokeRejected(t *testing.T) {
	h := newHarness(t, Options{})
	done := h.invokeAsync(testContext(t), inv("first", `{}`))
	waitFor(t, "first invocation queued", func() bool { return len(h.s.queue) == 1 })
	if _, err := h.s.Invoke(testContext(t), inv("second", `{}`)); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Invoke err = %v, want ErrBusy", err)
	}
	r := h.next()
	if got := r.header.Get(hdrRequestID); got != "first" {
		t.Fatalf("GET /next delivered %q, want first", got)
	}
	h.request("POST", responsePath("first"), nil, nil)
	if o := wait(t, done); o.err != nil {
		t.Fatalf("first Invoke: %v", o.err)
	}
	// The slot is free again.
	done = h.invokeAsync(testContext(t), inv("third", `{}`))
	h.next()
	h.request("POST", responsePath("third"), nil, nil)
	if o := wait(t, done); o.err != nil {
		t.Fatalf("third Invoke: %v", o.err)
	}
}

func TestInvokeContextDone(t *testing.T) {
	t.Run("never picked up", func(t *testing.T) {
		h := newHarness(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if _, err := h.s.Invoke(ctx, inv("lost", `{}`)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Invoke err = %v, want DeadlineExceeded", err)
		}
		// The abandoned invocation must not reach the runtime later.
		done := h.invokeAsync(testContext(t), inv("fresh", `{}`))
		if got := h.next().header.Get(hdrRequestID); got != "fresh" {
			t.Fatalf("GET /next delivered %q, want fresh", got)
		}
		h.request("POST", responsePath("fresh"), nil, nil)
		wait(t, done)
	})
	t.Run("in flight", func(t *testing.T) {
		h := newHarness(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := h.invokeAsync(ctx, inv("slow", `{}`))
		h.next()
		if o := wait(t, done); !errors.Is(o.err, context.DeadlineExceeded) {
			t.Fatalf("Invoke err = %v, want DeadlineExceeded", o.err)
		}
		if r := h.request("POST", responsePath("slow"), []byte(`late`), nil); r.status != 403 {
			t.Fatalf("late response: status %d, want 403", r.status)
		}
	})
	t.Run("already done", func(t *testing.T) {
		h := newHarness(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := h.s.Invoke(ctx, inv("x", `{}`)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Invoke err = %v, want Canceled", err)
		}
		if n := len(h.s.queue); n != 0 {
			t.Fatalf("queue holds %d invocations, want 0", n)
		}
	})
}

func TestCloseReleasesWaiters(t *testing.T) {
	h := newHarness(t, Options{})

	// A runtime parked on GET /next.
	nextErr := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, h.base+nextPath, nil)
		r, err := h.do(req)
		if err == nil {
			err = fmt.Errorf("got a reply: %d %s", r.status, r.body)
		}
		nextErr <- err
	}()
	waitFor(t, "GET /next parked", func() bool { return h.s.waiting.Load() == 1 })

	if err := h.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-nextErr:
		t.Logf("GET /next released with: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("GET /next still pending after Close")
	}
	if err := h.s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := h.s.Invoke(testContext(t), inv("after", `{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Invoke after Close = %v, want ErrClosed", err)
	}
	if err := h.s.WaitReady(testContext(t)); err != nil {
		t.Errorf("WaitReady after ready+Close = %v, want nil (init did finish)", err)
	}
}

func TestCloseReleasesPendingInvoke(t *testing.T) {
	for _, delivered := range []bool{false, true} {
		t.Run(fmt.Sprintf("delivered=%v", delivered), func(t *testing.T) {
			h := newHarness(t, Options{})
			done := h.invokeAsync(testContext(t), inv("pending", `{}`))
			if delivered {
				h.next()
			} else {
				waitFor(t, "invocation queued", func() bool { return len(h.s.queue) == 1 })
			}
			if err := h.s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if o := wait(t, done); !errors.Is(o.err, ErrClosed) {
				t.Fatalf("Invoke err = %v, want ErrClosed", o.err)
			}
			if !delivered {
				if err := h.s.WaitReady(testContext(t)); !errors.Is(err, ErrClosed) {
					t.Fatalf("WaitReady = %v, want ErrClosed", err)
				}
			}
		})
	}
}

func TestNextDisconnectKeepsInvocation(t *testing.T) {
	h := newHarness(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.base+nextPath, nil)
		_, err := h.do(req)
		polled <- err
	}()
	waitFor(t, "GET /next parked", func() bool { return h.s.waiting.Load() == 1 })
	cancel()
	if err := <-polled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled GET /next err = %v, want Canceled", err)
	}
	waitFor(t, "server to notice the disconnect", func() bool { return h.s.waiting.Load() == 0 })

	done := h.invokeAsync(testContext(t), inv("kept", `{"n":1}`))
	r := h.next()
	if got := r.header.Get(hdrRequestID); got != "kept" || string(r.body) != `{"n":1}` {
		t.Fatalf("GET /next delivered %q %s, want kept {\"n\":1}", got, r.body)
	}
	h.request("POST", responsePath("kept"), []byte(`ok`), nil)
	if o := wait(t, done); o.err != nil || string(o.res.Payload) != "ok" {
		t.Fatalf("Invoke = %+v, %v", o.res, o.err)
	}
}

// TestNextCancelledPollLeavesInvocationQueued covers a poll whose runtime
// is already gone when an invocation is available: select may pick either
// case, and in both the invocation must stay queued, undelivered.
func TestNextCancelledPollLeavesInvocationQueued(t *testing.T) {
	s := newServer(Options{})
	c, err := s.enqueue(inv("q", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 200 {
		rec := httptest.NewRecorder()
		s.route(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, nextPath, nil))
		if rec.Body.Len() != 0 || rec.Header().Get(hdrRequestID) != "" {
			t.Fatalf("a cancelled poll was sent the invocation: %q", rec.Body.Bytes())
		}
		if len(s.queue) != 1 || c.state != stateQueued {
			t.Fatalf("queue len %d, state %v; want the invocation still queued", len(s.queue), c.state)
		}
	}
	rec := httptest.NewRecorder()
	s.route(rec, httptest.NewRequest(http.MethodGet, nextPath, nil))
	if rec.Code != 200 || rec.Header().Get(hdrRequestID) != "q" {
		t.Fatalf("live poll: %d %q, want 200 q", rec.Code, rec.Header().Get(hdrRequestID))
	}
}

// failingWriter is a connection that died: writes fail.
type failingWriter struct{ header http.Header }

func (w *failingWriter) Header() http.Header       { return w.header }
func (w *failingWriter) WriteHeader(int)           {}
func (w *failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestNextWriteFailureRequeues: if sending the invocation fails, the
// runtime never got it, so the next poll must.
func TestNextWriteFailureRequeues(t *testing.T) {
	s := newServer(Options{})
	c, err := s.enqueue(inv("w", `{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	s.route(&failingWriter{header: http.Header{}}, httptest.NewRequest(http.MethodGet, nextPath, nil))
	if len(s.queue) != 1 || c.state != stateQueued {
		t.Fatalf("after failed write: queue len %d, state %v; want requeued", len(s.queue), c.state)
	}
	rec := httptest.NewRecorder()
	s.route(rec, httptest.NewRequest(http.MethodGet, nextPath, nil))
	if rec.Code != 200 || rec.Body.String() != `{"x":1}` {
		t.Fatalf("retry poll: %d %s, want 200 {\"x\":1}", rec.Code, rec.Body)
	}
}

// TestManyInvocations runs a fake runtime loop for a while; with -race it
// checks the hand-off between Invoke and the handlers.
func TestManyInvocations(t *testing.T) {
	h := newHarness(t, Options{})
	// Request IDs ending in 7 are answered as errors, echoing the event.
	answer := func(id string) (string, []byte) {
		if strings.HasSuffix(id, "7") {
			return errorPath(id), nil
		}
		return responsePath(id), nil
	}
	runtimeDone := h.runtimeLoop(answer)
	if err := h.s.WaitReady(testContext(t)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	for i := range 300 {
		id := fmt.Sprintf("req-%d", i)
		payload := fmt.Sprintf(`{"i":%d}`, i)
		res, err := h.s.Invoke(testContext(t), inv(id, payload))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		wantType := ""
		if strings.HasSuffix(id, "7") {
			wantType = "Runtime.Unknown"
		}
		if string(res.Payload) != payload || res.ErrorType != wantType {
			t.Fatalf("%s: result {%q %s}, want {%q %s}", id, res.ErrorType, res.Payload, wantType, payload)
		}
	}
	_ = h.s.Close()
	<-runtimeDone
}

// TestConcurrentPollers models a runtime with several poll loops: each
// invocation goes to exactly one of them.
func TestConcurrentPollers(t *testing.T) {
	h := newHarness(t, Options{})
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				req, _ := http.NewRequest(http.MethodGet, h.base+nextPath, nil)
				r, err := h.do(req)
				if err != nil || r.status != 200 {
					return
				}
				id := r.header.Get(hdrRequestID)
				mu.Lock()
				got[id]++
				mu.Unlock()
				if _, err := h.post(responsePath(id), nil); err != nil {
					return
				}
			}
		}()
	}
	waitFor(t, "three pollers parked", func() bool { return h.s.waiting.Load() == 3 })
	for i := range 30 {
		if _, err := h.s.Invoke(testContext(t), inv(fmt.Sprintf("p-%d", i), `{}`)); err != nil {
			t.Fatalf("Invoke %d: %v", i, err)
		}
	}
	_ = h.s.Close()
	wg.Wait()
	for i := range 30 {
		if n := got[fmt.Sprintf("p-%d", i)]; n != 1 {
			t.Errorf("p-%d delivered %d times, want 1", i, n)
		}
	}
}

func TestReadBodyNeverExceedsLimit(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, 513, 1000, 1024, 1025, 5000} {
		body, tooLarge, err := readBody(bytes.NewReader(make([]byte, size)), -1, 1024)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if wantTooLarge := size > 1024; tooLarge != wantTooLarge {
			t.Errorf("size %d: tooLarge = %v, want %v", size, tooLarge, wantTooLarge)
		}
		if !tooLarge && (len(body) != size || cap(body) > 1025) {
			t.Errorf("size %d: len %d cap %d, want len %d cap <= 1025", size, len(body), cap(body), size)
		}
	}
	if _, _, err := readBody(strings.NewReader("short"), 10, 1024); err == nil {
		t.Error("body shorter than Content-Length: want an error")
	}
}

// TestNotDelivered: an Invoke that ends before any GET /next took its
// event says so (the worker may send it elsewhere); one that ends after
// the runtime took it does not.
func TestNotDelivered(t *testing.T) {
	h := newHarness(t, Options{})
	ctx, cancel := context.WithCancel(testContext(t))
	done := h.invokeAsync(ctx, inv("never-taken", `{}`))
	waitFor(t, "the invocation queued", func() bool { h.s.mu.Lock(); defer h.s.mu.Unlock(); return h.s.current != nil })
	cancel()
	if o := wait(t, done); !errors.Is(o.err, ErrNotDelivered) || !errors.Is(o.err, context.Canceled) {
		t.Fatalf("Invoke never taken, cancelled: %v, want ErrNotDelivered and context.Canceled", o.err)
	}

	ctx, cancel = context.WithCancel(testContext(t))
	done = h.invokeAsync(ctx, inv("taken", `{}`))
	h.next() // the runtime takes it, and never answers
	cancel()
	if o := wait(t, done); errors.Is(o.err, ErrNotDelivered) || !errors.Is(o.err, context.Canceled) {
		t.Fatalf("Invoke taken, cancelled: %v, want context.Canceled without ErrNotDelivered", o.err)
	}
}
