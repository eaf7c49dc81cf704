package lambdahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// fuzzStatuses is every status the handler may answer with; anything else
// (a 301 from ServeMux, a 200 with no payload mapping, …) is a bug.
var fuzzStatuses = map[int]bool{200: true, 202: true, 204: true, 400: true, 404: true, 405: true, 413: true, 429: true, 500: true, 502: true}

// fuzzInvoker's answer is chosen by mode, so the fuzzer explores the error
// paths as well as the request parsing. It has Checker and AsyncInvoker
// always; fuzzSyncOnly hides them.
type fuzzInvoker struct{ mode uint8 }

var fuzzErrors = []error{
	nil,
	apierr.New(apierr.ResourceNotFound, "function not found"),
	&apierr.Error{Name: apierr.TooManyRequests, Reason: "ConcurrentInvocationLimitExceeded", Message: "Rate Exceeded."},
	apierr.New(apierr.RequestTooLarge, "too big"),
	apierr.New(apierr.InvalidParameterValue, "bad"),
	apierr.New(apierr.Service, "no capacity"),
	apierr.New(apierr.ResourceNotReady, "draining"),
	&apierr.Error{Name: "SomethingNew", Message: "unknown name"},
	&apierr.Error{Message: "no name"},
	errors.New("plain"),
}

func (f fuzzInvoker) err() error { return fuzzErrors[int(f.mode>>1)%len(fuzzErrors)] }

func (f fuzzInvoker) Invoke(_ context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	resp := &gustv1.InvokeResponse{RequestId: "r", ExecutedVersion: req.GetQualifier(), Payload: req.GetPayload(), LogTail: string(req.GetPayload())}
	if f.mode&1 == 1 {
		resp.FunctionError = "Unhandled"
	}
	return resp, nil
}

func (f fuzzInvoker) CheckFunction(_ context.Context, _, _ string) error { return f.err() }

func (f fuzzInvoker) InvokeAsync(_ context.Context, _ *gustv1.InvokeRequest) (string, error) {
	return "async-id", f.err()
}

// fuzzSyncOnly has only Invoke, so Event and DryRun take their fallbacks.
type fuzzSyncOnly struct{ Invoker }

func FuzzInvokeRequest(f *testing.F) {
	arn := "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afn%3Alive/invocations"
	for _, s := range []struct {
		method, target, invType, logType, clientContext string
		body                                            []byte
		mode                                            uint8
	}{
		{"POST", invokeFn, "", "", "", []byte(`{"a":1}`), 0},
		{"POST", invokeFn, "RequestResponse", "Tail", b64(`{"custom":{}}`), []byte(`{}`), 1},
		{"POST", invokeFn + "?Qualifier=3", "DryRun", "None", "", nil, 2},
		{"POST", "/2015-03-31/functions/fn:live/invocations?Qualifier=dev", "", "", "", nil, 0},
		{"POST", arn, "Event", "", "", []byte(`{"e":true}`), 0},
		{"POST", arn + "?Qualifier=live", "Event", "Tail", "", []byte(strings.Repeat("x", 40)), 4},
		{"POST", invokeFn, "", "", "!!!", nil, 0},
		{"POST", invokeFn, "", "", b64("not json"), nil, 0},
		{"POST", invokeFn, "Bogus", "Bogus", "", nil, 0},
		{"POST", invokeFn, "", "", "", []byte(strings.Repeat("y", 100)), 0},
		{"GET", invokeFn, "", "", "", nil, 0},
		{"DELETE", "/2017-10-31/functions/fn/concurrency", "", "", "", nil, 0},
		{"POST", "/2015-03-31/functions//invocations", "", "", "", nil, 0},
		{"POST", "/2015-03-31/functions/a%2F..%2Fb/invocations", "", "", "", nil, 0},
		{"POST", "/2015-03-31/functions/fn/invocations?Qualifier=%zz&Qualifier=1", "", "", "", nil, 0},
		{"POST", "/", "", "", "", nil, 0},
		{"POST", "/2015-03-31/functions/123:function:fn:1/invocations", "DryRun", "", "", nil, 6},
		{"POST", invokeFn, "", "", "", nil, 9},
		{"POST", invokeFn, "", "", "", nil, 15},
		{"POST", invokeFn, "", "", "", nil, 17},
	} {
		f.Add(s.method, s.target, s.invType, s.logType, s.clientContext, s.body, s.mode)
	}
	f.Fuzz(func(t *testing.T, method, target, invType, logType, clientContext string, body []byte, mode uint8) {
		if !strings.HasPrefix(target, "/") {
			return // not an origin-form request target; net/http would refuse it first
		}
		req, err := http.NewRequest(method, "http://gust.test"+target, bytes.NewReader(body))
		if err != nil {
			return // net/http would not have parsed this request either
		}
		if strings.HasPrefix(req.URL.Path, functionURLPrefix) {
			return // the function's own answer, not the Lambda API: FuzzFunctionURL
		}
		for k, v := range map[string]string{hdrInvocationType: invType, hdrLogType: logType, hdrClientContext: clientContext} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		var inv Invoker = fuzzInvoker{mode}
		if mode&0x80 != 0 {
			inv = fuzzSyncOnly{inv}
		}
		rec := httptest.NewRecorder()
		Handler(inv, Options{MaxSyncPayload: 64, MaxAsyncPayload: 32}).ServeHTTP(rec, req)

		if !fuzzStatuses[rec.Code] {
			t.Fatalf("%s %s: status %d not allowed; body %s", method, target, rec.Code, rec.Body)
		}
		if rec.Header().Get(hdrRequestID) == "" {
			t.Errorf("no %s", hdrRequestID)
		}
		if rec.Code < 300 {
			if rec.Header().Get(hdrErrorType) != "" {
				t.Errorf("status %d with %s", rec.Code, hdrErrorType)
			}
			return
		}
		if rec.Header().Get(hdrErrorType) == "" {
			t.Errorf("status %d without %s", rec.Code, hdrErrorType)
		}
		var eb map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
			t.Fatalf("status %d body %q is not JSON: %v", rec.Code, rec.Body, err)
		}
		wantType := "User"
		if rec.Code >= 500 {
			wantType = "Service"
		}
		if eb["Type"] != wantType {
			t.Errorf("status %d: Type %v, want %s", rec.Code, eb["Type"], wantType)
		}
		if _, ok := eb["message"].(string); !ok {
			t.Errorf("status %d: no message in %s", rec.Code, rec.Body)
		}
	})
}
