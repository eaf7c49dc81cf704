package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fuzzID is the request ID of the invocation the fuzz states set up.
const fuzzID = "fuzz-req"

// allowedStatus is every status code the Runtime API may answer with.
var allowedStatus = map[int]bool{200: true, 202: true, 400: true, 403: true, 404: true, 405: true, 413: true}

// parseHeaderLines turns "Key: value" lines into a header, skipping junk;
// the handler must cope with whatever values get through.
func parseHeaderLines(s string) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && k != "" {
			h.Add(k, strings.TrimSpace(v))
		}
	}
	return h
}

// fuzzServer builds a Server (no network) in one of a few protocol states.
func fuzzServer(t *testing.T, state uint8) (*Server, *call) {
	s := newServer(Options{MaxResponseBytes: 64})
	var c *call
	if st := state % 5; st >= 1 && st <= 3 {
		var err error
		c, err = s.enqueue(Invocation{RequestID: fuzzID, Payload: []byte(`{}`), Deadline: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
	}
	switch state % 5 {
	case 0: // fresh: init not finished
	case 1: // invocation queued, no poll yet
	case 2, 3: // invocation delivered (3: and answered)
		rec := httptest.NewRecorder()
		s.route(rec, httptest.NewRequest(http.MethodGet, "/2018-06-01/runtime/invocation/next", nil))
		if rec.Code != 200 {
			t.Fatalf("setup GET /next: %d", rec.Code)
		}
		if state%5 == 3 {
			rec = httptest.NewRecorder()
			s.route(rec, httptest.NewRequest(http.MethodPost, responsePath(fuzzID), strings.NewReader(`1`)))
			if rec.Code != 202 {
				t.Fatalf("setup POST response: %d", rec.Code)
			}
		}
	case 4: // init failed
		rec := httptest.NewRecorder()
		s.route(rec, httptest.NewRequest(http.MethodPost, initPath, strings.NewReader(`{"errorType":"X"}`)))
		if rec.Code != 202 {
			t.Fatalf("setup POST init/error: %d", rec.Code)
		}
	}
	return s, c
}

// FuzzRuntimeAPI sends arbitrary requests through the handler in several
// protocol states and checks it never panics, never blocks, answers only
// with an allowed status and always with a JSON body on non-200.
func FuzzRuntimeAPI(f *testing.F) {
	f.Add(uint8(1), "GET", "/2018-06-01/runtime/invocation/next", "", "", []byte(nil), false)
	f.Add(uint8(2), "POST", "/2018-06-01/runtime/invocation/fuzz-req/response", "Content-Type: application/json", "", []byte(`{"a":1}`), false)
	f.Add(uint8(2), "POST", "/2018-06-01/runtime/invocation/fuzz-req/response", "", "Lambda-Runtime-Function-Error-Type: Runtime.X\nLambda-Runtime-Function-Error-Body: e30=", []byte(`part`), true)
	f.Add(uint8(2), "POST", "/2018-06-01/runtime/invocation/fuzz-req/error", "Lambda-Runtime-Function-Error-Type: Foo", "", []byte(`not json`), false)
	f.Add(uint8(2), "POST", "/2018-06-01/runtime/invocation/fuzz-req/error", "", "", bytes.Repeat([]byte("z"), 100), true)
	f.Add(uint8(3), "POST", "/2018-06-01/runtime/invocation/fuzz-req/response", "", "", []byte(`dup`), false)
	f.Add(uint8(2), "POST", "/2018-06-01/runtime/invocation/other/response", "", "", []byte(`x`), false)
	f.Add(uint8(0), "POST", "/2018-06-01/runtime/init/error", "", "", []byte(`{"errorMessage":"m","errorType":"T"}`), false)
	f.Add(uint8(4), "GET", "/2018-06-01/runtime/invocation/next", "", "", []byte(nil), false)
	f.Add(uint8(0), "DELETE", "/2018-06-01/runtime/invocation/next", "", "", []byte(nil), false)
	f.Add(uint8(0), "GET", "/../2018-06-01//runtime/invocation/next", "", "", []byte(nil), false)

	f.Fuzz(func(t *testing.T, state uint8, method, path, header, trailer string, body []byte, chunked bool) {
		s, c := fuzzServer(t, state)

		// A GET /next with nothing queued would (correctly) wait forever;
		// give it a runtime that has already hung up instead.
		ctx := context.Background()
		if len(s.queue) == 0 {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			ctx = cctx
		}
		req := &http.Request{
			Method:        method,
			URL:           &url.URL{Path: path},
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        parseHeaderLines(header),
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "127.0.0.1:9001",
		}
		if chunked {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
			req.Trailer = parseHeaderLines(trailer)
		}
		req = req.WithContext(ctx)

		rec := httptest.NewRecorder()
		s.route(rec, req)

		if !allowedStatus[rec.Code] {
			t.Fatalf("%s %q: status %d not allowed", method, path, rec.Code)
		}
		if rec.Code != 200 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: status %d with non-JSON body %q", method, path, rec.Code, rec.Body.Bytes())
		}
		if c == nil {
			return
		}
		// Whatever happened, the invocation is in a consistent state.
		s.mu.Lock()
		defer s.mu.Unlock()
		switch c.state {
		case stateQueued:
			if len(s.queue) != 1 {
				t.Fatalf("invocation queued but queue len %d", len(s.queue))
			}
		case stateDelivered, stateAnswered:
			if len(s.queue) != 0 {
				t.Fatalf("invocation %v but still in the queue", c.state)
			}
		default:
			t.Fatalf("invocation left in state %v", c.state)
		}
		if c.state == stateAnswered {
			select {
			case <-c.done:
			default:
				t.Fatal("invocation answered but done not closed")
			}
		}
		if state%5 == 2 && (rec.Code == 202 || rec.Code == 413) && c.state != stateAnswered {
			t.Fatalf("%s %q: %d but invocation not answered", method, path, rec.Code)
		}
	})
}
