package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// urlFuzzInvoker checks the event it is given and answers with answer, a
// function error or a platform error, by mode.
type urlFuzzInvoker struct {
	t      *testing.T
	mode   uint8
	answer []byte
	event  *events.LambdaFunctionURLRequest
	called bool
}

func (u *urlFuzzInvoker) Invoke(_ context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	u.called = true
	if req.GetQualifier() != "" || req.GetFunction() == "" {
		u.t.Errorf("Invoke got function %q qualifier %q", req.GetFunction(), req.GetQualifier())
	}
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(req.GetPayload(), &ev); err != nil {
		u.t.Fatalf("event %q does not decode: %v", req.GetPayload(), err)
	}
	u.event = &ev
	if u.mode%4 == 1 {
		return nil, fuzzErrors[int(u.mode>>2)%(len(fuzzErrors)-1)+1]
	}
	resp := &gustv1.InvokeResponse{RequestId: "r", Payload: u.answer}
	if u.mode%4 == 2 {
		resp.FunctionError = "Unhandled"
	}
	return resp, nil
}

func FuzzFunctionURL(f *testing.F) {
	for _, s := range []struct {
		method, target, contentType, cookie string
		body, answer                        []byte
		mode                                uint8
	}{
		{"GET", "/fn/web", "", "", nil, []byte(`{"statusCode":200,"body":"hi"}`), 0},
		{"POST", "/fn/web/a/b?x=1&x=2", "application/json", "a=1; b=2", []byte(`{"k":"v"}`), []byte(`{"ok":true}`), 0},
		{"PUT", "/fn/web/%2F..%2F?%zz=1", "text/plain", "", []byte("\xff\xfe"), []byte(`"str"`), 0},
		{"DELETE", "/fn/%77eb/", "image/png", ";;", []byte{0, 1, 2}, []byte(`{"statusCode":201,"headers":{"X-A":"1","Bad Name":"x"},"cookies":["c=1"],"body":"AAE=","isBase64Encoded":true}`), 0},
		{"PATCH", "/fn/web/x", "text/html; charset=utf-8", "", []byte("<p>é</p>"), []byte(`{"statusCode":"200"}`), 0},
		{"GET", "/fn/web", "", "", nil, []byte(`not json`), 0},
		{"GET", "/fn/web", "", "", nil, []byte(`{"statusCode":99}`), 0},
		{"GET", "/fn/web", "", "", nil, []byte(`{"statusCode":200,"body":"%%","isBase64Encoded":true}`), 0},
		{"GET", "/fn/web", "", "", nil, []byte(`{"statusCode":302,"headers":{"Location":"/x\r\nInjected: 1"}}`), 0},
		{"POST", "/fn/web", "", "", []byte("x"), []byte(`{}`), 2},
		{"POST", "/fn/web", "", "", []byte("x"), []byte(`{}`), 1},
		{"POST", "/fn/web", "", "", []byte("x"), []byte(`{}`), 5},
		{"POST", "/fn/web", "", "", []byte(strings.Repeat("y", 80)), []byte(`{}`), 0},
		{"GET", "/fn/", "", "", nil, []byte(`{}`), 0},
		{"GET", "/fn//x", "", "", nil, []byte(`{}`), 0},
		{"GET", "/fn/web/../..", "", "", nil, []byte(`null`), 0},
	} {
		f.Add(s.method, s.target, s.contentType, s.cookie, s.body, s.answer, s.mode)
	}
	f.Fuzz(func(t *testing.T, method, target, contentType, cookie string, body, answer []byte, mode uint8) {
		if !strings.HasPrefix(target, "/") {
			return
		}
		req, err := http.NewRequest(method, "http://gust.test"+target, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, functionURLPrefix) {
			return
		}
		for k, v := range map[string]string{"Content-Type": contentType, "Cookie": cookie} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		req.RemoteAddr = "192.0.2.7:4000"
		inv := &urlFuzzInvoker{t: t, mode: mode, answer: answer}
		rec := httptest.NewRecorder()
		Handler(inv, Options{MaxFunctionURLBody: 64}).ServeHTTP(rec, req)

		if rec.Header().Get(hdrRequestID) == "" {
			t.Errorf("no %s", hdrRequestID)
		}
		for k, vs := range rec.Header() {
			if !validHeaderName(k) {
				t.Errorf("invalid header name %q", k)
			}
			for _, v := range vs {
				if !validHeaderValue(v) {
					t.Errorf("header %s has invalid value %q", k, v)
				}
			}
		}
		if !inv.called {
			// Refused before the function: unknown path or body too big.
			if rec.Code != 404 && rec.Code != 413 || rec.Header().Get(hdrErrorType) == "" {
				t.Fatalf("not invoked, yet status %d (%s)", rec.Code, rec.Header().Get(hdrErrorType))
			}
			if rec.Code == 413 && len(body) <= 64 {
				t.Errorf("413 for a %d byte body", len(body))
			}
			return
		}

		// The event, as aws-lambda-go decoded it, says what was sent.
		ev := inv.event
		if ev.Version != "2.0" || !strings.HasPrefix(ev.RawPath, "/") || ev.RawPath != ev.RequestContext.HTTP.Path ||
			ev.RequestContext.HTTP.Method != method || ev.RawQueryString != escapeQuery(req.URL.RawQuery) || ev.RequestContext.HTTP.SourceIP != "192.0.2.7" {
			t.Errorf("event: version %q rawPath %q method %q rawQueryString %q", ev.Version, ev.RawPath, ev.RequestContext.HTTP.Method, ev.RawQueryString)
		}
		got := []byte(ev.Body)
		if ev.IsBase64Encoded {
			if got, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
				t.Fatalf("base64 body %q: %v", ev.Body, err)
			}
		} else if !utf8.Valid(body) {
			t.Errorf("a body that is not UTF-8 was sent as text")
		}
		if !bytes.Equal(got, body) {
			t.Errorf("event body %q, want %q", got, body)
		}
		for k := range ev.Headers {
			if k != strings.ToLower(k) || k == "cookie" {
				t.Errorf("event header %q", k)
			}
		}
		if !utf8.ValidString(ev.RawQueryString) {
			t.Errorf("rawQueryString %q is not UTF-8", ev.RawQueryString)
		}
		if q, err := url.ParseQuery(req.URL.RawQuery); err == nil {
			// Encoding the query kept its meaning.
			if q2, err := url.ParseQuery(ev.RawQueryString); err != nil || !maps.EqualFunc(q, q2, slices.Equal) {
				t.Errorf("rawQueryString %q parses to %v (%v), the request's %q to %v", ev.RawQueryString, q2, err, req.URL.RawQuery, q)
			}
			for k, vs := range req.URL.Query() {
				if !utf8.ValidString(k) || !utf8.ValidString(strings.Join(vs, "")) {
					continue // JSON carries it as U+FFFD; rawQueryString has the bytes
				}
				if ev.QueryStringParameters[k] != strings.Join(vs, ",") {
					t.Errorf("queryStringParameters[%q] = %q, want %q", k, ev.QueryStringParameters[k], strings.Join(vs, ","))
				}
			}
		}

		// The answer: a platform error in the restJson1 shape, 502 for a
		// function error or an unmappable answer, else the mapping.
		switch {
		case mode%4 == 1:
			if rec.Header().Get(hdrErrorType) == "" || rec.Code < 400 {
				t.Errorf("platform error answered %d without %s", rec.Code, hdrErrorType)
			}
			errShape(t, rec)
		case mode%4 == 2:
			if rec.Code != 502 || rec.Body.String() != string(badGatewayBody) {
				t.Errorf("function error answered %d %q", rec.Code, rec.Body)
			}
		default:
			status, _, want, ok := functionURLResponse(answer)
			if !ok {
				if rec.Code != 502 || rec.Body.String() != string(badGatewayBody) {
					t.Errorf("unmappable answer %q: %d %q", answer, rec.Code, rec.Body)
				}
				return
			}
			if status < 200 || status > 599 || rec.Code != status || !bytes.Equal(rec.Body.Bytes(), want) || rec.Header().Get("Content-Type") == "" {
				t.Errorf("answer %q: status %d body %q", answer, rec.Code, rec.Body)
			}
			if !json.Valid(bytes.TrimSpace(answer)) {
				t.Errorf("answer %q is not JSON, yet mapped", answer)
			}
		}
	})
}

// FuzzManagement drives the management routes against a seeded
// fakeManager whose calls fail by mode (mode&3 == 3), with an AliasGetter
// when mode&0x80 is set.
func FuzzManagement(f *testing.F) {
	for _, s := range []struct {
		method, target string
		body           []byte
		mode           uint8
	}{
		{"POST", fnsPath, []byte(`{"FunctionName":"n","Code":{"ZipFile":"emlw"},"Timeout":5,"MemorySize":256,"Environment":{"Variables":{"A":"b"}}}`), 0},
		{"POST", fnsPath + "/", []byte(`{"FunctionName":"fn","Code":{"ZipFile":"emlw"}}`), 0},
		{"POST", fnsPath, []byte(`{"FunctionName":`), 0},
		{"POST", fnsPath, []byte(`{"FunctionName":"x","Code":{"S3Bucket":"b"}}`), 0},
		{"GET", fnsPath + "/fn?Qualifier=live", nil, 0},
		{"GET", fnsPath + "/fn:1?Qualifier=2", nil, 0},
		{"GET", fnsPath + "?MaxItems=1", nil, 0},
		{"GET", fnsPath + "/", nil, 3},
		{"DELETE", fnsPath + "/fn?Qualifier=1", nil, 0},
		{"DELETE", fnsPath + "/nope", nil, 0},
		{"PUT", fnsPath + "/fn/code", []byte(`{"ZipFile":"emlw","Publish":true}`), 0},
		{"PUT", fnsPath + "/fn/code", []byte(`{"ZipFile":"emlw","DryRun":true}`), 0},
		{"POST", fnsPath + "/fn/versions", []byte(`{"Description":"d"}`), 0},
		{"POST", fnsPath + "/fn/versions", nil, 5},
		{"POST", fnsPath + "/fn/aliases", []byte(`{"Name":"b","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"$LATEST":0.5}}}`), 0},
		{"PUT", fnsPath + "/fn/aliases/live", []byte(`{"Description":"x"}`), 0x80},
		{"PUT", fnsPath + "/fn/aliases/live", []byte(`{"RoutingConfig":{}}`), 0x80},
		{"PUT", "/2017-10-31/functions/fn/concurrency", []byte(`{"ReservedConcurrentExecutions":3}`), 0},
		{"PUT", "/2017-10-31/functions/fn/concurrency", []byte(`{"ReservedConcurrentExecutions":-3}`), 0},
		{"PATCH", fnsPath, nil, 0},
		{"POST", fnsPath + "/fn/invocations", []byte(`{}`), 0},
	} {
		f.Add(s.method, s.target, s.body, s.mode)
	}
	f.Fuzz(func(t *testing.T, method, target string, body []byte, mode uint8) {
		if !strings.HasPrefix(target, "/") {
			return
		}
		req, err := http.NewRequest(method, "http://gust.test"+target, bytes.NewReader(body))
		if err != nil || strings.HasPrefix(req.URL.Path, functionURLPrefix) {
			return
		}
		m := newFakeManager()
		m.seed("fn")
		if mode&3 == 3 {
			m.err = fuzzErrors[int(mode>>2)%(len(fuzzErrors)-1)+1]
		}
		var inv Invoker = m
		if mode&0x80 != 0 {
			inv = aliasGetterManager{m}
		}
		rec := httptest.NewRecorder()
		Handler(inv, Options{MaxCodeRequest: 256, MaxSyncPayload: 64}).ServeHTTP(rec, req)

		if !fuzzStatuses[rec.Code] && rec.Code != 201 && rec.Code != 409 {
			t.Fatalf("%s %s: status %d not allowed; body %s", method, target, rec.Code, rec.Body)
		}
		if rec.Header().Get(hdrRequestID) == "" {
			t.Errorf("no %s", hdrRequestID)
		}
		if rec.Code >= 300 {
			if rec.Header().Get(hdrErrorType) == "" {
				t.Errorf("status %d without %s", rec.Code, hdrErrorType)
			}
			errShape(t, rec)
			return
		}
		if rec.Header().Get(hdrErrorType) != "" {
			t.Errorf("status %d with %s", rec.Code, hdrErrorType)
		}
		if rec.Code == 204 {
			if rec.Body.Len() != 0 {
				t.Errorf("204 with a body")
			}
			return
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Errorf("status %d body %q is not JSON", rec.Code, rec.Body)
		}
	})
}
