package lambdahttp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

const invokeFn = "/2015-03-31/functions/fn/invocations"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// errShape decodes and checks the restJson1 error body every non-2xx
// answer must carry.
func errShape(t testing.TB, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	if rec.Header().Get(hdrErrorType) == "" {
		t.Errorf("error without %s header", hdrErrorType)
	}
	if rec.Header().Get(hdrRequestID) == "" {
		t.Errorf("error without %s header", hdrRequestID)
	}
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body.String(), err)
	}
	var body errorBody
	json.Unmarshal(rec.Body.Bytes(), &body)
	if body.Type != "User" && body.Type != "Service" {
		t.Errorf("error body Type = %q, want User or Service", body.Type)
	}
	if body.Message == "" {
		t.Errorf("error body %s has no message", rec.Body.String())
	}
	return body
}

func TestInvokeHTTP(t *testing.T) {
	logTail := strings.Repeat("a", 1000) + strings.Repeat("b", maxLogResult)
	tests := []struct {
		name   string
		method string // POST when empty
		target string
		hdr    map[string]string
		body   io.Reader
		opts   Options
		// resp and err are what the fake Invoker answers.
		resp *gustv1.InvokeResponse
		err  error
		// wrap adds optional interfaces to the fake.
		wrap func(*fakeInvoker) Invoker

		wantStatus int
		wantHdr    map[string]string // "" means the header must be absent
		wantBody   string            // exact, for successes
		wantErr    string            // X-Amzn-ErrorType
		wantType   string            // error body Type
		wantMsg    string            // substring of the error message
		wantReason string
		wantReq    *gustv1.InvokeRequest // what Invoke got; nil: not called, unless err is set
		wantQueued *gustv1.InvokeRequest // what InvokeAsync got
	}{
		{
			name:       "RequestResponse by default",
			target:     invokeFn,
			body:       strings.NewReader(`{"x":1}`),
			resp:       &gustv1.InvokeResponse{RequestId: "rid-7", ExecutedVersion: "3", Payload: []byte(`"hi"`)},
			wantStatus: 200,
			wantHdr: map[string]string{"Content-Type": "application/json", hdrExecutedVersion: "3", hdrRequestID: "rid-7",
				hdrFunctionError: "", hdrLogResult: "", "Content-Length": "4"},
			wantBody: `"hi"`,
			wantReq:  &gustv1.InvokeRequest{Function: "fn", Payload: []byte(`{"x":1}`)},
		},
		{
			name:       "explicit RequestResponse, empty body",
			target:     invokeFn,
			hdr:        map[string]string{hdrInvocationType: "RequestResponse"},
			wantStatus: 200,
			wantBody:   `{"ok":true}`,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte{}},
		},
		{
			name:       "SigV4 headers are ignored",
			target:     invokeFn,
			hdr:        map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00", "X-Amz-Date": "20260101T000000Z"},
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte{}},
		},
		{
			name:       "name:qualifier",
			target:     "/2015-03-31/functions/fn:live/invocations",
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Qualifier: "live", Payload: []byte{}},
		},
		{
			name:       "?Qualifier=",
			target:     invokeFn + "?Qualifier=7",
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Qualifier: "7", Payload: []byte{}},
		},
		{
			name:       "escaped ARN with qualifier",
			target:     "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afn%3A%24LATEST/invocations",
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Qualifier: "$LATEST", Payload: []byte{}},
		},
		{
			name:       "ARN without qualifier, ?Qualifier=",
			target:     "/2015-03-31/functions/arn%3Aaws-cn%3Alambda%3Acn-north-1%3A123456789012%3Afunction%3Afn/invocations?Qualifier=prod",
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Qualifier: "prod", Payload: []byte{}},
		},
		{
			name:       "partial ARN",
			target:     "/2015-03-31/functions/123456789012:function:fn:2/invocations",
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Qualifier: "2", Payload: []byte{}},
		},
		{
			name:       "qualifier in both places, agreeing",
			target:     "/2015-03-31/functions/fn:live/invocations?Qualifier=live",
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Qualifier: "live", Payload: []byte{}},
		},
		{
			name:       "qualifier in both places, disagreeing",
			target:     "/2015-03-31/functions/fn:live/invocations?Qualifier=dev",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "does not match",
		},
		{
			name:       "empty ?Qualifier=",
			target:     invokeFn + "?Qualifier=",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "Qualifier",
		},
		{
			name:       "malformed query",
			target:     invokeFn + "?Qualifier=%zz",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "query",
		},
		{
			name:       "not a lambda ARN",
			target:     "/2015-03-31/functions/arn%3Aaws%3As3%3Aus-east-1%3A1%3Afunction%3Afn/invocations",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "ARN",
		},
		{
			name:       "empty qualifier after colon",
			target:     "/2015-03-31/functions/fn:/invocations",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "qualifier",
		},
		{
			name:       "too many colons",
			target:     "/2015-03-31/functions/a:b:c/invocations",
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User",
		},
		{
			name:       "function named arn",
			target:     "/2015-03-31/functions/arn:1/invocations",
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "arn", Qualifier: "1", Payload: []byte{}},
		},
		{
			name:       "DryRun with Checker, function exists",
			target:     invokeFn + "?Qualifier=3",
			hdr:        map[string]string{hdrInvocationType: "DryRun"},
			wrap:       func(f *fakeInvoker) Invoker { return &checkingInvoker{fakeInvoker: f} },
			wantStatus: 204,
			wantBody:   "",
		},
		{
			name:   "DryRun with Checker, no such function",
			target: invokeFn,
			hdr:    map[string]string{hdrInvocationType: "DryRun"},
			wrap: func(f *fakeInvoker) Invoker {
				return &checkingInvoker{fakeInvoker: f, checkErr: apierr.New(apierr.ResourceNotFound, "function not found: fn")}
			},
			wantStatus: 404, wantErr: apierr.ResourceNotFound, wantType: "User", wantMsg: "function not found: fn",
		},
		{
			name:       "DryRun without Checker",
			target:     invokeFn,
			hdr:        map[string]string{hdrInvocationType: "DryRun"},
			wantStatus: 204,
		},
		{
			name:       "DryRun over the sync limit",
			target:     invokeFn,
			hdr:        map[string]string{hdrInvocationType: "DryRun"},
			opts:       Options{MaxSyncPayload: 4},
			body:       strings.NewReader("12345"),
			wrap:       func(f *fakeInvoker) Invoker { return &checkingInvoker{fakeInvoker: f} },
			wantStatus: 413, wantErr: apierr.RequestTooLarge, wantType: "User",
		},
		{
			name:       "Event without AsyncInvoker",
			target:     invokeFn,
			hdr:        map[string]string{hdrInvocationType: "Event"},
			body:       strings.NewReader(`{}`),
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User",
			wantMsg: "asynchronous invocation is not available yet",
		},
		{
			name:   "Event with AsyncInvoker",
			target: "/2015-03-31/functions/fn:live/invocations",
			hdr: map[string]string{hdrInvocationType: "Event", hdrLogType: "Tail",
				hdrClientContext: b64(`{"custom":{"k":"v"}}`)},
			body:       strings.NewReader(`{"e":1}`),
			wrap:       func(f *fakeInvoker) Invoker { return &asyncInvoker{fakeInvoker: f, id: "async-9"} },
			wantStatus: 202,
			wantHdr:    map[string]string{hdrRequestID: "async-9", hdrLogResult: "", "Content-Length": "0"},
			wantQueued: &gustv1.InvokeRequest{Function: "fn", Qualifier: "live", Payload: []byte(`{"e":1}`),
				ClientContext: `{"custom":{"k":"v"}}`},
		},
		{
			name:       "Event under the async limit",
			target:     invokeFn,
			hdr:        map[string]string{hdrInvocationType: "Event"},
			opts:       Options{MaxSyncPayload: 10, MaxAsyncPayload: 5},
			body:       strings.NewReader("12345"),
			wrap:       func(f *fakeInvoker) Invoker { return &asyncInvoker{fakeInvoker: f, id: "a"} },
			wantStatus: 202,
			wantQueued: &gustv1.InvokeRequest{Function: "fn", Payload: []byte("12345")},
		},
		{
			name:       "Event over the async limit though under the sync one",
			target:     invokeFn,
			hdr:        map[string]string{hdrInvocationType: "Event"},
			opts:       Options{MaxSyncPayload: 10, MaxAsyncPayload: 5},
			body:       strings.NewReader("123456"),
			wrap:       func(f *fakeInvoker) Invoker { return &asyncInvoker{fakeInvoker: f, id: "a"} },
			wantStatus: 413, wantErr: apierr.RequestTooLarge, wantType: "User",
		},
		{
			name:   "Event refused by the queue",
			target: invokeFn,
			hdr:    map[string]string{hdrInvocationType: "Event"},
			wrap: func(f *fakeInvoker) Invoker {
				return &asyncInvoker{fakeInvoker: f, asyncErr: apierr.New(apierr.ResourceNotFound, "function not found: fn")}
			},
			wantStatus: 404, wantErr: apierr.ResourceNotFound, wantType: "User",
		},
		{
			name:       "unknown invocation type",
			target:     invokeFn,
			hdr:        map[string]string{hdrInvocationType: "event"},
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "Invocation-Type",
		},
		{
			name:       "sync payload at the limit",
			target:     invokeFn,
			opts:       Options{MaxSyncPayload: 5},
			body:       strings.NewReader("12345"),
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte("12345")},
		},
		{
			name:       "sync payload over the limit, Content-Length known",
			target:     invokeFn,
			opts:       Options{MaxSyncPayload: 5},
			body:       strings.NewReader("123456"),
			wantStatus: 413, wantErr: apierr.RequestTooLarge, wantType: "User", wantMsg: "6 bytes",
		},
		{
			name:       "sync payload over the limit, chunked",
			target:     invokeFn,
			opts:       Options{MaxSyncPayload: 5},
			body:       io.MultiReader(strings.NewReader("123"), strings.NewReader("456")), // hides the length
			wantStatus: 413, wantErr: apierr.RequestTooLarge, wantType: "User",
		},
		{
			name:       "client context",
			target:     invokeFn,
			hdr:        map[string]string{hdrClientContext: b64(`{"client":{"app_title":"t"},"custom":{"a":"b"}}`)},
			wantStatus: 200,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte{}, ClientContext: `{"client":{"app_title":"t"},"custom":{"a":"b"}}`},
		},
		{
			name:       "client context not base64",
			target:     invokeFn,
			hdr:        map[string]string{hdrClientContext: "{not base64}"},
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "base64",
		},
		{
			name:       "client context base64 but not JSON",
			target:     invokeFn,
			hdr:        map[string]string{hdrClientContext: b64("hello")},
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "JSON",
		},
		{
			name:       "client context over Lambda's limit",
			target:     invokeFn,
			hdr:        map[string]string{hdrClientContext: b64(`"` + strings.Repeat("x", 3000) + `"`)},
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "limit",
		},
		{
			name:       "log tail: last 4 KB, base64",
			target:     invokeFn,
			hdr:        map[string]string{hdrLogType: "Tail"},
			resp:       &gustv1.InvokeResponse{RequestId: "r", ExecutedVersion: "$LATEST", Payload: []byte(`1`), LogTail: logTail},
			wantStatus: 200,
			wantHdr:    map[string]string{hdrLogResult: b64(strings.Repeat("b", maxLogResult))},
			wantBody:   `1`,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte{}, LogTail: true},
		},
		{
			name:       "log type None",
			target:     invokeFn,
			hdr:        map[string]string{hdrLogType: "None"},
			resp:       &gustv1.InvokeResponse{RequestId: "r", Payload: []byte(`1`), LogTail: "ignored"},
			wantStatus: 200,
			wantHdr:    map[string]string{hdrLogResult: "", hdrExecutedVersion: ""},
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte{}},
		},
		{
			name:       "unknown log type",
			target:     invokeFn,
			hdr:        map[string]string{hdrLogType: "tail"},
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "Log-Type",
		},
		{
			name:   "function error Handled",
			target: invokeFn,
			resp: &gustv1.InvokeResponse{RequestId: "r", ExecutedVersion: "$LATEST", FunctionError: "Handled",
				Payload: []byte(`{"errorMessage":"boom","errorType":"MyError"}`)},
			wantStatus: 200,
			wantHdr:    map[string]string{hdrFunctionError: "Handled", hdrErrorType: ""},
			wantBody:   `{"errorMessage":"boom","errorType":"MyError"}`,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte{}},
		},
		{
			name:   "function error Unhandled",
			target: invokeFn,
			resp: &gustv1.InvokeResponse{RequestId: "r", ExecutedVersion: "$LATEST", FunctionError: "Unhandled",
				Payload: []byte(`{"errorMessage":"Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}`)},
			wantStatus: 200,
			wantHdr:    map[string]string{hdrFunctionError: "Unhandled"},
			wantBody:   `{"errorMessage":"Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}`,
			wantReq:    &gustv1.InvokeRequest{Function: "fn", Payload: []byte{}},
		},
		{
			name:       "ResourceNotFoundException",
			target:     invokeFn,
			err:        apierr.New(apierr.ResourceNotFound, "function not found: fn"),
			wantStatus: 404, wantErr: apierr.ResourceNotFound, wantType: "User", wantMsg: "function not found: fn",
			wantHdr: map[string]string{"Retry-After": ""},
		},
		{
			name:       "InvalidParameterValueException from the invoker",
			target:     invokeFn,
			err:        apierr.New(apierr.InvalidParameterValue, "bad name"),
			wantStatus: 400, wantErr: apierr.InvalidParameterValue, wantType: "User", wantMsg: "bad name",
		},
		{
			name:       "RequestTooLargeException from the invoker",
			target:     invokeFn,
			err:        apierr.New(apierr.RequestTooLarge, "too big"),
			wantStatus: 413, wantErr: apierr.RequestTooLarge, wantType: "User", wantMsg: "too big",
		},
		{
			name:   "TooManyRequestsException with reason",
			target: invokeFn,
			err: &apierr.Error{Name: apierr.TooManyRequests, Reason: "ConcurrentInvocationLimitExceeded",
				Message: "Rate Exceeded."},
			wantStatus: 429, wantErr: apierr.TooManyRequests, wantType: "User", wantMsg: "Rate Exceeded.",
			wantReason: "ConcurrentInvocationLimitExceeded",
			wantHdr:    map[string]string{"Retry-After": "1"},
		},
		{
			name:       "ServiceException",
			target:     invokeFn,
			err:        apierr.New(apierr.Service, "no capacity for fn"),
			wantStatus: 500, wantErr: apierr.Service, wantType: "Service", wantMsg: "no capacity",
		},
		{
			name:       "ResourceNotReadyException",
			target:     invokeFn,
			err:        apierr.New(apierr.ResourceNotReady, "worker is draining"),
			wantStatus: 502, wantErr: apierr.ResourceNotReady, wantType: "Service", wantMsg: "draining",
		},
		{
			name:       "plain error is a ServiceException",
			target:     invokeFn,
			err:        errors.New("invoke fn: connection refused"),
			wantStatus: 500, wantErr: apierr.Service, wantType: "Service", wantMsg: "connection refused",
		},
		{
			name:       "wrapped apierr keeps its name",
			target:     invokeFn,
			err:        wrapErr(apierr.New(apierr.ResourceNotFound, "gone")),
			wantStatus: 404, wantErr: apierr.ResourceNotFound, wantType: "User",
		},
		{
			name:       "GET on the invoke path",
			method:     http.MethodGet,
			target:     invokeFn,
			wantStatus: 405, wantErr: unknownOperation, wantType: "User", wantMsg: "GET",
			wantHdr: map[string]string{"Allow": "POST"},
		},
		{
			name:       "PUT on the invoke path",
			method:     http.MethodPut,
			target:     invokeFn,
			wantStatus: 405, wantErr: unknownOperation, wantType: "User",
		},
		{
			name:       "unknown Lambda path",
			target:     "/2015-03-31/functions/fn/invoke-async",
			wantStatus: 404, wantErr: unknownOperation, wantType: "User",
		},
		{
			name:       "unknown 2017-10-31 path",
			method:     http.MethodGet,
			target:     "/2017-10-31/functions/fn/nothing",
			wantStatus: 404, wantErr: unknownOperation, wantType: "User",
		},
		{
			name:       "unknown path outside Lambda's",
			method:     http.MethodGet,
			target:     "/whatever",
			wantStatus: 404, wantErr: unknownOperation, wantType: "User",
		},
		{
			name:       "empty function name is not redirected",
			target:     "/2015-03-31/functions//invocations",
			wantStatus: 404, wantErr: unknownOperation, wantType: "User",
		},
		{
			name:       "dot segments are not redirected",
			target:     "/2015-03-31/functions/x/../fn/invocations",
			wantStatus: 404, wantErr: unknownOperation, wantType: "User",
		},
		{
			name:       "escaped slash in the name",
			target:     "/2015-03-31/functions/a%2F..%2Ffn/invocations",
			wantStatus: 404, wantErr: unknownOperation, wantType: "User",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeInvoker{resp: tt.resp, err: tt.err}
			var inv Invoker = fake
			if tt.wrap != nil {
				inv = tt.wrap(fake)
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			body := tt.body
			if body == nil {
				body = http.NoBody
			}
			req := httptest.NewRequest(method, tt.target, body)
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			Handler(inv, tt.opts).ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			for k, v := range tt.wantHdr {
				if got, ok := rec.Header()[http.CanonicalHeaderKey(k)]; v == "" && ok {
					t.Errorf("header %s = %q, want absent", k, got)
				} else if v != "" && rec.Header().Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, rec.Header().Get(k), v)
				}
			}
			if tt.wantErr != "" {
				if got := rec.Header().Get(hdrErrorType); got != tt.wantErr {
					t.Errorf("%s = %q, want %q", hdrErrorType, got, tt.wantErr)
				}
				eb := errShape(t, rec)
				if eb.Type != tt.wantType {
					t.Errorf("Type = %q, want %q", eb.Type, tt.wantType)
				}
				if !strings.Contains(eb.Message, tt.wantMsg) {
					t.Errorf("message = %q, want it to contain %q", eb.Message, tt.wantMsg)
				}
				if eb.Reason != tt.wantReason {
					t.Errorf("Reason = %q, want %q", eb.Reason, tt.wantReason)
				}
			} else {
				if rec.Header().Get(hdrErrorType) != "" {
					t.Errorf("success with %s %q", hdrErrorType, rec.Header().Get(hdrErrorType))
				}
				if rec.Header().Get(hdrRequestID) == "" {
					t.Errorf("success without %s", hdrRequestID)
				}
				if (tt.wantBody != "" || rec.Code != 200) && rec.Body.String() != tt.wantBody {
					t.Errorf("body = %q, want %q", rec.Body, tt.wantBody)
				}
			}

			calls := fake.Calls()
			switch {
			case tt.wantReq == nil && tt.err != nil && len(calls) != 1:
				t.Errorf("Invoke called %d times, want once", len(calls))
			case tt.wantReq == nil && tt.err == nil && len(calls) > 0:
				t.Errorf("Invoke called with %v, want no call", calls[0])
			case tt.wantReq != nil && len(calls) != 1:
				t.Errorf("Invoke called %d times, want once", len(calls))
			case tt.wantReq != nil && !proto.Equal(calls[0], tt.wantReq):
				t.Errorf("Invoke got %v, want %v", calls[0], tt.wantReq)
			}
			if a, ok := inv.(*asyncInvoker); ok {
				q := a.Queued()
				switch {
				case tt.wantQueued == nil && len(q) > 0:
					t.Errorf("InvokeAsync got %v, want no call", q[0])
				case tt.wantQueued != nil && (len(q) != 1 || !proto.Equal(q[0], tt.wantQueued)):
					t.Errorf("InvokeAsync got %v, want [%v]", q, tt.wantQueued)
				}
			}
			if c, ok := inv.(*checkingInvoker); ok && rec.Code == 204 {
				if len(c.checked) != 1 || c.checked[0] != [2]string{"fn", qualifierOf(tt.target)} {
					t.Errorf("CheckFunction got %v", c.checked)
				}
			}
		})
	}
}

func qualifierOf(target string) string {
	if _, q, ok := strings.Cut(target, "?Qualifier="); ok {
		return q
	}
	return ""
}

// wrapped hides an apierr behind fmt-style wrapping, as the coordinator's
// layers may.
type wrapped struct{ err error }

func (w wrapped) Error() string { return "invoke: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrapErr(err error) error { return wrapped{err} }

// countingReader is an endless body that counts what was read from it.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += int64(len(p))
	return len(p), nil
}

// An endless body of unknown length is read no further than limit+1
// bytes, whichever invocation type sets the limit.
func TestBodyReadIsBounded(t *testing.T) {
	for _, tc := range []struct {
		invType string
		limit   int64
	}{{"RequestResponse", 1000}, {"DryRun", 1000}, {"Event", 100}} {
		t.Run(tc.invType, func(t *testing.T) {
			fake := &fakeInvoker{}
			h := Handler(&asyncInvoker{fakeInvoker: fake, id: "a"}, Options{MaxSyncPayload: 1000, MaxAsyncPayload: 100})
			body := &countingReader{}
			req := httptest.NewRequest(http.MethodPost, invokeFn, body)
			req.Header.Set(hdrInvocationType, tc.invType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status = %d, want 413", rec.Code)
			}
			// io.ReadAll grows its buffer, but through a LimitReader it
			// can only ever pull limit+1 bytes out of the body.
			if body.n > tc.limit+1 {
				t.Errorf("read %d bytes of the body, want at most %d", body.n, tc.limit+1)
			}
			if len(fake.Calls()) != 0 {
				t.Errorf("Invoke called for an oversized body")
			}
		})
	}
}

// A Content-Length over the limit is refused without reading the body.
func TestDeclaredLengthOverLimitReadsNothing(t *testing.T) {
	body := &countingReader{}
	req := httptest.NewRequest(http.MethodPost, invokeFn, body)
	req.ContentLength = DefaultMaxSyncPayload + 1
	rec := httptest.NewRecorder()
	Handler(&fakeInvoker{}, Options{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || body.n != 0 {
		t.Fatalf("status %d after reading %d bytes; want 413 after none", rec.Code, body.n)
	}
}

func TestDefaults(t *testing.T) {
	// Exactly 6 MiB is allowed synchronously; one byte more is not.
	fake := &fakeInvoker{}
	h := Handler(fake, Options{})
	for _, tc := range []struct {
		n    int
		want int
	}{{DefaultMaxSyncPayload, 200}, {DefaultMaxSyncPayload + 1, 413}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, invokeFn, bytes.NewReader(make([]byte, tc.n))))
		if rec.Code != tc.want {
			t.Errorf("%d bytes: status %d, want %d", tc.n, rec.Code, tc.want)
		}
	}
	// 256 KiB for Event.
	a := &asyncInvoker{fakeInvoker: &fakeInvoker{}, id: "x"}
	h = Handler(a, Options{})
	for _, tc := range []struct {
		n    int
		want int
	}{{DefaultMaxAsyncPayload, 202}, {DefaultMaxAsyncPayload + 1, 413}} {
		req := httptest.NewRequest(http.MethodPost, invokeFn, bytes.NewReader(make([]byte, tc.n)))
		req.Header.Set(hdrInvocationType, "Event")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Event %d bytes: status %d, want %d", tc.n, rec.Code, tc.want)
		}
	}
}

func TestParseFunctionName(t *testing.T) {
	tests := []struct {
		in, name, qual string
		bad            bool
	}{
		{in: "fn", name: "fn"},
		{in: "fn:1", name: "fn", qual: "1"},
		{in: "fn:$LATEST", name: "fn", qual: "$LATEST"},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:fn", name: "fn"},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:fn:prod", name: "fn", qual: "prod"},
		{in: "123456789012:function:fn", name: "fn"},
		{in: "123456789012:function:fn:v", name: "fn", qual: "v"},
		{in: "arn", name: "arn"},
		{in: "function:1", name: "function", qual: "1"},
		{in: "", bad: true},
		{in: ":1", bad: true},
		{in: "fn:", bad: true},
		{in: "a:b:c", bad: true},
		{in: "arn:aws:lambda:us-west-2:123456789012:function", bad: true},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:", bad: true},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:fn:", bad: true},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:fn:1:2", bad: true},
		{in: "arn:aws:lambda:us-west-2:123456789012:layer:fn", bad: true},
		{in: "arn:aws:sqs:us-west-2:123456789012:function:fn", bad: true},
		{in: "1:function:fn:1:2", bad: true},
	}
	for _, tt := range tests {
		name, qual, err := parseFunctionName(tt.in)
		if tt.bad {
			if e, ok := apierr.As(err); !ok || e.Name != apierr.InvalidParameterValue {
				t.Errorf("parseFunctionName(%q) = %q, %q, %v; want InvalidParameterValueException", tt.in, name, qual, err)
			}
			continue
		}
		if err != nil || name != tt.name || qual != tt.qual {
			t.Errorf("parseFunctionName(%q) = %q, %q, %v; want %q, %q", tt.in, name, qual, err, tt.name, tt.qual)
		}
	}
}

func TestLastBytes(t *testing.T) {
	if got := lastBytes("short", 10); got != "short" {
		t.Errorf("lastBytes(short) = %q", got)
	}
	if got := lastBytes("abcdef", 3); got != "def" {
		t.Errorf("lastBytes = %q, want def", got)
	}
	// "é" is two bytes; cutting through it must not leave half a rune.
	if got := lastBytes("xxé1", 3); got != "é1" {
		t.Errorf("lastBytes = %q, want é1", got)
	}
	if got := lastBytes("xé12", 4); got != "é12" {
		t.Errorf("lastBytes = %q, want é12", got)
	}
	if got := lastBytes("xxé12", 3); got != "12" {
		t.Errorf("lastBytes = %q, want 12", got)
	}
}

// The handler composes with a coordinator mux that owns /healthz.
func TestMountedAtRoot(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", Handler(&fakeInvoker{}, Options{}))
	for _, tc := range []struct {
		method, target string
		want           int
	}{
		{http.MethodGet, "/healthz", 200},
		{http.MethodPost, invokeFn, 200},
		{http.MethodGet, invokeFn, 405},
		{http.MethodGet, "/nope", 404},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, rec.Code, tc.want)
		}
	}
}
