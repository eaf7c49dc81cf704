package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// lambdaGoInvoker runs an aws-lambda-go handler in process, as the runtime
// in a sandbox would: the payload is decoded by aws-lambda-go into the
// handler's event type, and its answer encoded by aws-lambda-go. A handler
// error is an Unhandled function error, as on Lambda.
type lambdaGoInvoker struct {
	h lambda.Handler

	mu    sync.Mutex
	calls []*gustv1.InvokeRequest
}

func (l *lambdaGoInvoker) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	l.mu.Lock()
	l.calls = append(l.calls, req)
	l.mu.Unlock()
	out, err := l.h.Invoke(ctx, req.GetPayload())
	if err != nil {
		b, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": "errorString"})
		return &gustv1.InvokeResponse{RequestId: "fn-req", ExecutedVersion: "$LATEST", FunctionError: "Unhandled", Payload: b}, nil
	}
	return &gustv1.InvokeResponse{RequestId: "fn-req", ExecutedVersion: "$LATEST", Payload: out}, nil
}

func (l *lambdaGoInvoker) Calls() []*gustv1.InvokeRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// captureEvent returns an Invoker whose function keeps the event it got
// (as aws-lambda-go decoded it) and answers with resp.
func captureEvent(resp events.LambdaFunctionURLResponse) (*lambdaGoInvoker, *events.LambdaFunctionURLRequest) {
	var got events.LambdaFunctionURLRequest
	return &lambdaGoInvoker{h: lambda.NewHandler(func(ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		got = ev
		return resp, nil
	})}, &got
}

func TestFunctionURLEvent(t *testing.T) {
	inv, ev := captureEvent(events.LambdaFunctionURLResponse{StatusCode: 200})
	req := httptest.NewRequest(http.MethodPost, "http://example.test:8080/fn/web/a/b%2Fc%20d?x=1&x=2&y=%20z", strings.NewReader(`{"k":"v"}`))
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Add("Cookie", "a=1; b=2")
	req.Header.Add("Cookie", "c=3")
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	req.Header.Set("User-Agent", "ua/1")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	before := time.Now()
	Handler(inv, Options{}).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}

	calls := inv.Calls()
	if len(calls) != 1 || calls[0].GetFunction() != "web" || calls[0].GetQualifier() != "" {
		t.Fatalf("Invoke got %v", calls)
	}
	if ev.Version != "2.0" || ev.RawPath != "/a/b%2Fc%20d" || ev.RawQueryString != "x=1&x=2&y=%20z" ||
		ev.Body != `{"k":"v"}` || ev.IsBase64Encoded {
		t.Errorf("event: version %q rawPath %q rawQueryString %q body %q base64 %v", ev.Version, ev.RawPath, ev.RawQueryString, ev.Body, ev.IsBase64Encoded)
	}
	if !slices.Equal(ev.Cookies, []string{"a=1", "b=2", "c=3"}) {
		t.Errorf("cookies = %q", ev.Cookies)
	}
	for k, v := range map[string]string{"x-multi": "1,2", "user-agent": "ua/1", "content-type": "application/json",
		"host": "example.test:8080", "x-forwarded-for": "192.0.2.1", "x-forwarded-proto": "http"} {
		if ev.Headers[k] != v {
			t.Errorf("headers[%s] = %q, want %q", k, ev.Headers[k], v)
		}
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) || k == "cookie" {
			t.Errorf("header %q in the event", k)
		}
	}
	if len(ev.QueryStringParameters) != 2 || ev.QueryStringParameters["x"] != "1,2" || ev.QueryStringParameters["y"] != " z" {
		t.Errorf("queryStringParameters = %q", ev.QueryStringParameters)
	}
	rc := ev.RequestContext
	if rc.AccountID != "anonymous" || rc.DomainName != "example.test" || rc.DomainPrefix != "example" || rc.APIID != "example" ||
		rc.RequestID == "" || rc.Authorizer != nil {
		t.Errorf("requestContext = %+v", rc)
	}
	if h := rc.HTTP; h.Method != "POST" || h.Path != "/a/b%2Fc%20d" || h.Protocol != "HTTP/1.1" || h.SourceIP != "192.0.2.1" || h.UserAgent != "ua/1" {
		t.Errorf("requestContext.http = %+v", h)
	}
	ts, err := time.Parse(functionURLTime, rc.Time)
	if err != nil || ts.Before(before.Truncate(time.Second)) || ts.After(time.Now()) {
		t.Errorf("requestContext.time = %q (%v)", rc.Time, err)
	}
	if ms := rc.TimeEpoch; ms < before.UnixMilli() || ms > time.Now().UnixMilli() {
		t.Errorf("requestContext.timeEpoch = %d", ms)
	}

	// The members aws-lambda-go's type does not have are there too.
	var raw struct {
		RouteKey       string `json:"routeKey"`
		RequestContext struct {
			RouteKey string `json:"routeKey"`
			Stage    string `json:"stage"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(calls[0].GetPayload(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw.RouteKey != "$default" || raw.RequestContext.RouteKey != "$default" || raw.RequestContext.Stage != "$default" {
		t.Errorf("routeKey %q requestContext.routeKey %q stage %q", raw.RouteKey, raw.RequestContext.RouteKey, raw.RequestContext.Stage)
	}
}

func TestFunctionURLPaths(t *testing.T) {
	for _, tc := range []struct {
		target   string
		wantName string // "" means 404 UnknownOperationException
		wantPath string
	}{
		{"/fn/web", "web", "/"},
		{"/fn/web/", "web", "/"},
		{"/fn/web/x/", "web", "/x/"},
		{"/fn/web/a/../b", "web", "/a/../b"},
		{"/fn/web//x", "web", "//x"},
		{"/fn/%77eb/x", "web", "/x"},
		{"/%66n/web/x", "web", "/x"},
		{"/fn/my_fn-1/deep/er?q=1", "my_fn-1", "/deep/er"},
		{"/fn/", "", ""},
		{"/fn//x", "", ""},
		{"/fn", "", ""},
		{"/fnord/x", "", ""},
	} {
		t.Run(tc.target, func(t *testing.T) {
			inv, ev := captureEvent(events.LambdaFunctionURLResponse{StatusCode: 200})
			rec := httptest.NewRecorder()
			Handler(inv, Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.target, nil))
			if tc.wantName == "" {
				if rec.Code != 404 || rec.Header().Get(hdrErrorType) != unknownOperation || len(inv.Calls()) != 0 {
					t.Errorf("status %d %s, calls %d; want 404 UnknownOperationException", rec.Code, rec.Header().Get(hdrErrorType), len(inv.Calls()))
				}
				return
			}
			if rec.Code != 200 {
				t.Fatalf("status %d body %s", rec.Code, rec.Body)
			}
			if calls := inv.Calls(); len(calls) != 1 || calls[0].GetFunction() != tc.wantName || ev.RawPath != tc.wantPath || ev.RequestContext.HTTP.Path != tc.wantPath {
				t.Errorf("function %v rawPath %q, want %s %q", calls, ev.RawPath, tc.wantName, tc.wantPath)
			}
		})
	}
}

func TestFunctionURLBodyEncoding(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		body        string
		wantBase64  bool
	}{
		{"text/plain; charset=utf-8", "héllo", false},
		{"application/json", `{"a":[1,2]}`, false},
		{"application/vnd.api+json", `{}`, false},
		{"application/x-www-form-urlencoded", "a=1&b=%20", false},
		{"application/xml", "<a/>", false},
		{"text/plain", "\xff\xfe not utf-8", true},
		{"application/octet-stream", "abc", true},
		{"image/png", "\x89PNG\r\n", true},
		{"", "abc", true},
		{"garbage;;;", "abc", true},
		{"application/json", "", false},
	} {
		t.Run(tc.contentType+" "+tc.body, func(t *testing.T) {
			inv, ev := captureEvent(events.LambdaFunctionURLResponse{StatusCode: 200})
			req := httptest.NewRequest(http.MethodPut, "/fn/f", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			Handler(inv, Options{}).ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("status %d body %s", rec.Code, rec.Body)
			}
			if ev.IsBase64Encoded != tc.wantBase64 {
				t.Errorf("isBase64Encoded = %v, want %v", ev.IsBase64Encoded, tc.wantBase64)
			}
			got := ev.Body
			if ev.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(ev.Body)
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			}
			if got != tc.body {
				t.Errorf("body = %q, want %q", got, tc.body)
			}
		})
	}
}

// payloadInvoker answers every invocation with a fixed payload (or error).
type payloadInvoker struct {
	payload       string
	functionError string
	err           error
	calls         int
}

func (p *payloadInvoker) Invoke(context.Context, *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	p.calls++
	if p.err != nil {
		return nil, p.err
	}
	return &gustv1.InvokeResponse{RequestId: "rid-url", Payload: []byte(p.payload), FunctionError: p.functionError}, nil
}

func TestFunctionURLResponse(t *testing.T) {
	const badGateway = `{"Message":"Internal Server Error"}`
	tests := []struct {
		name     string
		inv      *payloadInvoker
		body     string
		opts     Options
		status   int
		hdr      map[string]string // "" means absent
		cookies  []string
		wantBody string
		wantErr  string // restJson1 error name
		reason   string
	}{
		{
			name: "response object",
			inv: &payloadInvoker{payload: `{"statusCode":201,"headers":{"Content-Type":"text/plain","x-a":"1,2"},
				"cookies":["s=1; Path=/","t=2"],"body":"created"}`},
			status: 201, hdr: map[string]string{"Content-Type": "text/plain", "X-A": "1,2", hdrRequestID: "rid-url", "Content-Length": "7"},
			cookies: []string{"s=1; Path=/", "t=2"}, wantBody: "created",
		},
		{
			name:   "base64 body",
			inv:    &payloadInvoker{payload: `{"statusCode":200,"body":"AAEC/w==","isBase64Encoded":true,"headers":{"content-type":"application/octet-stream"}}`},
			status: 200, hdr: map[string]string{"Content-Type": "application/octet-stream"}, wantBody: "\x00\x01\x02\xff",
		},
		{
			name:   "status only",
			inv:    &payloadInvoker{payload: `{"statusCode":204}`},
			status: 204, wantBody: "",
		},
		{
			name:   "no content type defaults to JSON",
			inv:    &payloadInvoker{payload: `{"statusCode":418,"body":"{\"tea\":true}"}`},
			status: 418, hdr: map[string]string{"Content-Type": "application/json"}, wantBody: `{"tea":true}`,
		},
		{
			name: "hop-by-hop and invalid headers are dropped",
			inv: &payloadInvoker{payload: `{"statusCode":200,"body":"ok","headers":{"Content-Length":"99","Transfer-Encoding":"chunked",
				"Connection":"close","Bad Name":"x","X-Split":"a\r\nInjected: 1","X-Ok":"fine","X-Amzn-RequestId":"spoofed"},
				"cookies":["bad\ncookie",""]}`},
			status: 200, hdr: map[string]string{"Content-Length": "2", "Transfer-Encoding": "", "Connection": "", "X-Split": "",
				"Injected": "", "X-Ok": "fine", hdrRequestID: "rid-url", "Set-Cookie": ""},
			wantBody: "ok",
		},
		{
			name:   "plain JSON object",
			inv:    &payloadInvoker{payload: ` {"hello":"world"} `},
			status: 200, hdr: map[string]string{"Content-Type": "application/json"}, wantBody: `{"hello":"world"}`,
		},
		{
			name:   "object with StatusCode in another case is plain JSON",
			inv:    &payloadInvoker{payload: `{"StatusCode":500}`},
			status: 200, wantBody: `{"StatusCode":500}`,
		},
		{
			name:   "JSON string",
			inv:    &payloadInvoker{payload: `"hi"`},
			status: 200, hdr: map[string]string{"Content-Type": "application/json"}, wantBody: `"hi"`,
		},
		{
			name:   "JSON null",
			inv:    &payloadInvoker{payload: `null`},
			status: 200, wantBody: `null`,
		},
		{
			name:   "JSON array",
			inv:    &payloadInvoker{payload: `[1,{"statusCode":500}]`},
			status: 200, wantBody: `[1,{"statusCode":500}]`,
		},
		{name: "not JSON", inv: &payloadInvoker{payload: `hello`}, status: 502, wantBody: badGateway},
		{name: "empty payload", inv: &payloadInvoker{payload: ``}, status: 502, wantBody: badGateway},
		{name: "statusCode a string", inv: &payloadInvoker{payload: `{"statusCode":"200"}`}, status: 502, wantBody: badGateway},
		{name: "statusCode null", inv: &payloadInvoker{payload: `{"statusCode":null}`}, status: 502, wantBody: badGateway},
		{name: "statusCode 1xx", inv: &payloadInvoker{payload: `{"statusCode":101}`}, status: 502, wantBody: badGateway},
		{name: "statusCode 600", inv: &payloadInvoker{payload: `{"statusCode":600}`}, status: 502, wantBody: badGateway},
		{name: "headers not strings", inv: &payloadInvoker{payload: `{"statusCode":200,"headers":{"a":1}}`}, status: 502, wantBody: badGateway},
		{name: "bad base64", inv: &payloadInvoker{payload: `{"statusCode":200,"body":"%%","isBase64Encoded":true}`}, status: 502, wantBody: badGateway},
		{
			name:   "function error",
			inv:    &payloadInvoker{payload: `{"errorMessage":"boom","errorType":"E"}`, functionError: "Unhandled"},
			status: 502, hdr: map[string]string{"Content-Type": "application/json", hdrRequestID: "rid-url", hdrErrorType: ""},
			wantBody: badGateway,
		},
		{
			name:   "handled function error that looks like a response",
			inv:    &payloadInvoker{payload: `{"statusCode":200,"body":"no"}`, functionError: "Handled"},
			status: 502, wantBody: badGateway,
		},
		{
			name:   "no such function",
			inv:    &payloadInvoker{err: apierr.New(apierr.ResourceNotFound, "function not found: f")},
			status: 404, wantErr: apierr.ResourceNotFound,
		},
		{
			name:   "throttled",
			inv:    &payloadInvoker{err: &apierr.Error{Name: apierr.TooManyRequests, Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Message: "Rate Exceeded."}},
			status: 429, wantErr: apierr.TooManyRequests, reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
			hdr: map[string]string{"Retry-After": "1"},
		},
		{
			name:   "event over the invoker's limit",
			inv:    &payloadInvoker{err: apierr.New(apierr.RequestTooLarge, "request payload too big")},
			status: 413, wantErr: apierr.RequestTooLarge,
		},
		{
			name:   "platform failure",
			inv:    &payloadInvoker{err: errors.New("no workers")},
			status: 500, wantErr: apierr.Service,
		},
		{
			name: "body over the limit", inv: &payloadInvoker{payload: `{}`}, body: "12345", opts: Options{MaxFunctionURLBody: 4},
			status: 413, wantErr: apierr.RequestTooLarge,
		},
		{
			name: "body at the limit", inv: &payloadInvoker{payload: `{}`}, body: "1234", opts: Options{MaxFunctionURLBody: 4},
			status: 200, wantBody: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/fn/f/x", strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			Handler(tt.inv, tt.opts).ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			for k, v := range tt.hdr {
				if got, ok := rec.Header()[http.CanonicalHeaderKey(k)]; v == "" && ok {
					t.Errorf("header %s = %q, want absent", k, got)
				} else if v != "" && rec.Header().Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, rec.Header().Get(k), v)
				}
			}
			if tt.cookies != nil && !slices.Equal(rec.Header().Values("Set-Cookie"), tt.cookies) {
				t.Errorf("Set-Cookie = %q, want %q", rec.Header().Values("Set-Cookie"), tt.cookies)
			}
			if tt.wantErr != "" {
				if got := rec.Header().Get(hdrErrorType); got != tt.wantErr {
					t.Errorf("%s = %q, want %q", hdrErrorType, got, tt.wantErr)
				}
				if eb := errShape(t, rec); eb.Reason != tt.reason {
					t.Errorf("Reason = %q, want %q", eb.Reason, tt.reason)
				}
				return
			}
			if rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body, tt.wantBody)
			}
		})
	}
	// Over the limit, the function is not run.
	inv := &payloadInvoker{payload: `{}`}
	rec := httptest.NewRecorder()
	Handler(inv, Options{MaxFunctionURLBody: 4}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/fn/f", strings.NewReader("12345")))
	if rec.Code != 413 || inv.calls != 0 {
		t.Errorf("oversized body: status %d, %d calls", rec.Code, inv.calls)
	}
	// The default limit is 6 MiB.
	rec = httptest.NewRecorder()
	Handler(inv, Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/fn/f", bytes.NewReader(make([]byte, DefaultMaxFunctionURLBody+1))))
	if rec.Code != 413 {
		t.Errorf("6 MiB + 1: status %d", rec.Code)
	}
}

// Over a real connection, with an aws-lambda-go function: what a browser
// or curl would see.
func TestFunctionURLOverHTTP(t *testing.T) {
	inv := &lambdaGoInvoker{h: lambda.NewHandler(func(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		if ev.RawPath == "/fail" {
			return events.LambdaFunctionURLResponse{}, errors.New("boom")
		}
		body := ev.Body
		if ev.IsBase64Encoded {
			b, _ := base64.StdEncoding.DecodeString(body)
			body = string(b)
		}
		echo, _ := json.Marshal(map[string]any{"method": ev.RequestContext.HTTP.Method, "path": ev.RawPath,
			"query": ev.QueryStringParameters, "body": body, "cookies": ev.Cookies, "length": ev.Headers["content-length"]})
		return events.LambdaFunctionURLResponse{
			StatusCode:      202,
			Headers:         map[string]string{"Content-Type": "application/octet-stream", "X-Echo": "yes"},
			Cookies:         []string{"session=abc; HttpOnly", "theme=dark"},
			Body:            base64.StdEncoding.EncodeToString(echo),
			IsBase64Encoded: true,
		}, nil
	})}
	srv := httptest.NewServer(Handler(inv, Options{}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/fn/echo/items/7?full=1", bytes.NewReader([]byte{0, 1, 2, 'x'}))
	req.Header.Set("Cookie", "k=v")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 || resp.Header.Get("X-Echo") != "yes" || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		resp.Header.Get(hdrRequestID) != "fn-req" {
		t.Errorf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	var cookies []string
	for _, c := range resp.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if !slices.Equal(cookies, []string{"session=abc", "theme=dark"}) {
		t.Errorf("cookies = %q", cookies)
	}
	var echo struct {
		Method, Path, Body, Length string
		Query                      map[string]string
		Cookies                    []string
	}
	if err := json.Unmarshal(b, &echo); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	if echo.Method != "PATCH" || echo.Path != "/items/7" || echo.Body != "\x00\x01\x02x" || echo.Query["full"] != "1" ||
		!slices.Equal(echo.Cookies, []string{"k=v"}) || echo.Length != "4" {
		t.Errorf("the function saw %+v", echo)
	}

	resp, err = srv.Client().Get(srv.URL + "/fn/echo/fail")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || string(b) != `{"Message":"Internal Server Error"}` {
		t.Errorf("function error: status %d body %s", resp.StatusCode, b)
	}
}

func TestIsTextual(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/html": true, "TEXT/CSV; charset=x": true, "application/json": true, "application/problem+json": true,
		"application/atom+xml": true, "application/javascript": true, "application/octet-stream": false,
		"multipart/form-data; boundary=x": false, "": false, "image/svg+xml": true, "application/pdf": false,
	} {
		if got := isTextual(ct); got != want {
			t.Errorf("isTextual(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestEscapeQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"a=1&b=%20":       "a=1&b=%20",
		"q=é":             "q=%C3%A9",
		"x=\xc2":          "x=%C2",
		"a b=\x00\x7f~":   "a%20b=%00%7F~",
		"\xff":            "%FF",
		"ok=1&bad=\xfe!x": "ok=1&bad=%FE!x",
	} {
		if got := escapeQuery(in); got != want {
			t.Errorf("escapeQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
