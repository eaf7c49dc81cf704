package lambdahttp

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

// sdkClient serves h and returns the unmodified aws-sdk-go-v2 Lambda client
// pointed at it, the way users configure it for gust. Retries are off so
// that each call is one HTTP exchange and errors arrive as they were sent.
func sdkClient(t *testing.T, inv Invoker, opts Options) *lambda.Client {
	t.Helper()
	srv := httptest.NewServer(Handler(inv, opts))
	t.Cleanup(srv.Close)
	return lambda.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSDKInvokeRequestResponse(t *testing.T) {
	fake := &fakeInvoker{resp: &gustv1.InvokeResponse{RequestId: "11111111-2222-4333-8444-555555555555",
		ExecutedVersion: "$LATEST", Payload: []byte(`{"answer":42}`)}}
	c := sdkClient(t, fake, Options{})
	out, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"q":"?"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || string(out.Payload) != `{"answer":42}` || aws.ToString(out.ExecutedVersion) != "$LATEST" ||
		out.FunctionError != nil || out.LogResult != nil {
		t.Errorf("out = status %d payload %s version %v function error %v log %v",
			out.StatusCode, out.Payload, aws.ToString(out.ExecutedVersion), out.FunctionError, out.LogResult)
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); id != "11111111-2222-4333-8444-555555555555" {
		t.Errorf("request id = %q", id)
	}
	want := &gustv1.InvokeRequest{Function: "fn", Payload: []byte(`{"q":"?"}`)}
	if calls := fake.Calls(); len(calls) != 1 || !proto.Equal(calls[0], want) {
		t.Errorf("Invoke got %v, want %v", calls, want)
	}
}

// The SDK escapes the function name into the path; every form of it must
// arrive as a plain name and qualifier.
func TestSDKFunctionNameForms(t *testing.T) {
	for _, tc := range []struct {
		name, qualifier string
		wantName        string
		wantQualifier   string
	}{
		{name: "fn", wantName: "fn"},
		{name: "fn:live", wantName: "fn", wantQualifier: "live"},
		{name: "fn", qualifier: "7", wantName: "fn", wantQualifier: "7"},
		{name: "fn:$LATEST", qualifier: "$LATEST", wantName: "fn", wantQualifier: "$LATEST"},
		{name: "arn:aws:lambda:us-east-1:123456789012:function:fn", wantName: "fn"},
		{name: "arn:aws:lambda:eu-west-1:123456789012:function:fn:prod", wantName: "fn", wantQualifier: "prod"},
		{name: "123456789012:function:fn", qualifier: "3", wantName: "fn", wantQualifier: "3"},
	} {
		t.Run(tc.name+"?"+tc.qualifier, func(t *testing.T) {
			fake := &fakeInvoker{}
			c := sdkClient(t, fake, Options{})
			in := &lambda.InvokeInput{FunctionName: aws.String(tc.name)}
			if tc.qualifier != "" {
				in.Qualifier = aws.String(tc.qualifier)
			}
			if _, err := c.Invoke(ctx(t), in); err != nil {
				t.Fatal(err)
			}
			calls := fake.Calls()
			if len(calls) != 1 || calls[0].GetFunction() != tc.wantName || calls[0].GetQualifier() != tc.wantQualifier {
				t.Errorf("Invoke got %v, want %s / %s", calls, tc.wantName, tc.wantQualifier)
			}
		})
	}
}

func TestSDKDryRun(t *testing.T) {
	fake := &fakeInvoker{}
	checker := &checkingInvoker{fakeInvoker: fake}
	c := sdkClient(t, checker, Options{})
	out, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn:2"), InvocationType: types.InvocationTypeDryRun})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 204 || len(out.Payload) != 0 {
		t.Errorf("DryRun: status %d payload %q, want 204 and none", out.StatusCode, out.Payload)
	}
	if len(fake.Calls()) != 0 {
		t.Errorf("DryRun invoked the function")
	}
	if len(checker.checked) != 1 || checker.checked[0] != [2]string{"fn", "2"} {
		t.Errorf("CheckFunction got %v", checker.checked)
	}

	checker.checkErr = apierr.New(apierr.ResourceNotFound, "Function not found: fn:2")
	_, err = c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn:2"), InvocationType: types.InvocationTypeDryRun})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Function not found: fn:2" {
		t.Errorf("DryRun of a missing function: %v, want ResourceNotFoundException", err)
	}
}

func TestSDKLogTailAndClientContext(t *testing.T) {
	tail := strings.Repeat("x", 100) + "START RequestId: r\n" + strings.Repeat("log line\n", 500) + "END RequestId: r\n"
	fake := &fakeInvoker{resp: &gustv1.InvokeResponse{RequestId: "r", ExecutedVersion: "4", Payload: []byte(`null`), LogTail: tail}}
	c := sdkClient(t, fake, Options{})
	cc := `{"custom":{"tenant":"a"}}`
	out, err := c.Invoke(ctx(t), &lambda.InvokeInput{
		FunctionName:  aws.String("fn"),
		LogType:       types.LogTypeTail,
		ClientContext: aws.String(base64.StdEncoding.EncodeToString([]byte(cc))),
	})
	if err != nil {
		t.Fatal(err)
	}
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatalf("LogResult %q: %v", aws.ToString(out.LogResult), err)
	}
	if want := tail[len(tail)-maxLogResult:]; string(logs) != want {
		t.Errorf("LogResult decodes to %d bytes ending %q, want the last %d bytes", len(logs), logs[max(0, len(logs)-20):], len(want))
	}
	if aws.ToString(out.ExecutedVersion) != "4" {
		t.Errorf("ExecutedVersion = %q", aws.ToString(out.ExecutedVersion))
	}
	calls := fake.Calls()
	if len(calls) != 1 || !calls[0].GetLogTail() || calls[0].GetClientContext() != cc {
		t.Errorf("Invoke got %v", calls)
	}
}

func TestSDKFunctionError(t *testing.T) {
	for _, kind := range []string{"Handled", "Unhandled"} {
		errObj := `{"errorMessage":"Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}`
		fake := &fakeInvoker{resp: &gustv1.InvokeResponse{RequestId: "r", ExecutedVersion: "$LATEST", FunctionError: kind, Payload: []byte(errObj)}}
		c := sdkClient(t, fake, Options{})
		out, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn")})
		if err != nil {
			t.Fatalf("%s: a function error is not an API error: %v", kind, err)
		}
		if out.StatusCode != 200 || aws.ToString(out.FunctionError) != kind || string(out.Payload) != errObj {
			t.Errorf("%s: status %d FunctionError %v payload %s", kind, out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
		}
	}
}

func TestSDKEvent(t *testing.T) {
	// Not built yet: a typed, clear refusal.
	c := sdkClient(t, &fakeInvoker{}, Options{})
	_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn"), InvocationType: types.InvocationTypeEvent})
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) || !strings.Contains(ip.ErrorMessage(), "asynchronous invocation is not available yet") {
		t.Errorf("Event without async: %v, want InvalidParameterValueException", err)
	}

	// With an AsyncInvoker: 202 and the invocation's id as request id.
	a := &asyncInvoker{fakeInvoker: &fakeInvoker{}, id: "99999999-2222-4333-8444-555555555555"}
	c = sdkClient(t, a, Options{})
	out, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"e":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 202 {
		t.Errorf("Event: status %d, want 202", out.StatusCode)
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); id != a.id {
		t.Errorf("Event request id = %q, want %q", id, a.id)
	}
	if q := a.Queued(); len(q) != 1 || string(q[0].GetPayload()) != `{"e":1}` {
		t.Errorf("InvokeAsync got %v", q)
	}
}

// httpStatus digs the HTTP status out of an SDK error.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestSDKTypedErrors(t *testing.T) {
	t.Run("ResourceNotFoundException", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{err: apierr.New(apierr.ResourceNotFound, "Function not found: fn")}, Options{})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn")})
		var e *types.ResourceNotFoundException
		if !errors.As(err, &e) {
			t.Fatalf("err = %v (%T), want *types.ResourceNotFoundException", err, err)
		}
		if aws.ToString(e.Message) != "Function not found: fn" || aws.ToString(e.Type) != "User" || httpStatus(err) != 404 {
			t.Errorf("Message %q Type %q status %d", aws.ToString(e.Message), aws.ToString(e.Type), httpStatus(err))
		}
	})
	t.Run("TooManyRequestsException", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{err: &apierr.Error{Name: apierr.TooManyRequests,
			Reason: "ConcurrentInvocationLimitExceeded", Message: "Rate Exceeded."}}, Options{})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn")})
		var e *types.TooManyRequestsException
		if !errors.As(err, &e) {
			t.Fatalf("err = %v (%T), want *types.TooManyRequestsException", err, err)
		}
		if e.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded || e.ErrorMessage() != "Rate Exceeded." ||
			aws.ToString(e.RetryAfterSeconds) != "1" || aws.ToString(e.Type) != "User" || httpStatus(err) != 429 {
			t.Errorf("Reason %q Message %q RetryAfter %q Type %q status %d", e.Reason, e.ErrorMessage(),
				aws.ToString(e.RetryAfterSeconds), aws.ToString(e.Type), httpStatus(err))
		}
	})
	t.Run("TooManyRequestsException reserved", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{err: &apierr.Error{Name: apierr.TooManyRequests,
			Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Message: "Rate Exceeded."}}, Options{})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn")})
		var e *types.TooManyRequestsException
		if !errors.As(err, &e) || e.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
			t.Fatalf("err = %v, want TooManyRequestsException with the reserved reason", err)
		}
	})
	t.Run("RequestTooLargeException from the handler's limit", func(t *testing.T) {
		fake := &fakeInvoker{}
		c := sdkClient(t, fake, Options{MaxSyncPayload: 1024})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: make([]byte, 1025)})
		var e *types.RequestTooLargeException
		if !errors.As(err, &e) || httpStatus(err) != 413 || !strings.Contains(e.ErrorMessage(), "1024 byte limit") {
			t.Fatalf("err = %v (status %d), want RequestTooLargeException 413", err, httpStatus(err))
		}
		if len(fake.Calls()) != 0 {
			t.Errorf("Invoke was called for an oversized payload")
		}
	})
	t.Run("RequestTooLargeException at the default 6 MiB", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{}, Options{})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: make([]byte, DefaultMaxSyncPayload+1)})
		var e *types.RequestTooLargeException
		if !errors.As(err, &e) || httpStatus(err) != 413 {
			t.Fatalf("err = %v (status %d), want RequestTooLargeException 413", err, httpStatus(err))
		}
		// And exactly 6 MiB goes through.
		if _, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: make([]byte, DefaultMaxSyncPayload)}); err != nil {
			t.Fatalf("6 MiB payload: %v", err)
		}
	})
	t.Run("InvalidParameterValueException", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{}, Options{})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn:a"), Qualifier: aws.String("b")})
		var e *types.InvalidParameterValueException
		if !errors.As(err, &e) || httpStatus(err) != 400 || aws.ToString(e.Type) != "User" || !strings.Contains(e.ErrorMessage(), "does not match") {
			t.Fatalf("err = %v (status %d), want InvalidParameterValueException 400", err, httpStatus(err))
		}
	})
	t.Run("ServiceException", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{err: errors.New("raft: no leader")}, Options{})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn")})
		var e *types.ServiceException
		if !errors.As(err, &e) || httpStatus(err) != 500 || aws.ToString(e.Type) != "Service" || e.ErrorMessage() != "raft: no leader" {
			t.Fatalf("err = %v (status %d), want ServiceException 500", err, httpStatus(err))
		}
	})
	t.Run("ResourceNotReadyException", func(t *testing.T) {
		c := sdkClient(t, &fakeInvoker{err: apierr.New(apierr.ResourceNotReady, "worker is draining")}, Options{})
		_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("fn")})
		var e *types.ResourceNotReadyException
		if !errors.As(err, &e) || httpStatus(err) != 502 || e.ErrorMessage() != "worker is draining" {
			t.Fatalf("err = %v (status %d), want ResourceNotReadyException 502", err, httpStatus(err))
		}
	})
	t.Run("unknown operation", func(t *testing.T) {
		// An operation gust does not serve reaches the catch-all and is
		// still a decodable API error, not a parse failure.
		c := sdkClient(t, &fakeInvoker{}, Options{})
		_, err := c.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{})
		var ae interface{ ErrorCode() string } // smithy.APIError, without importing smithy-go
		if !errors.As(err, &ae) || ae.ErrorCode() != "UnknownOperationException" || httpStatus(err) != 404 {
			t.Fatalf("err = %v (status %d), want UnknownOperationException 404", err, httpStatus(err))
		}
	})
}
