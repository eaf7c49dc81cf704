package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	// Decoding error payloads with aws-lambda-go's own type checks we agree
	// with the runtime client, and keeps the module in go.mod for testdata.
	"github.com/aws/aws-lambda-go/lambda/messages"
)

// echoFn is the testdata/echofn binary, built once per test binary.
var echoFn struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if echoFn.dir != "" {
		_ = os.RemoveAll(echoFn.dir)
	}
	os.Exit(code)
}

// echoBinary builds testdata/echofn the way functions are built for Lambda:
// static, without the legacy RPC mode.
func echoBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Go Lambda function; skipped with -short")
	}
	echoFn.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			echoFn.err = fmt.Errorf("go toolchain not found: %w", err)
			return
		}
		echoFn.dir, err = os.MkdirTemp("", "runtimeapi-echofn-")
		if err != nil {
			echoFn.err = err
			return
		}
		out := filepath.Join(echoFn.dir, "bootstrap")
		cmd := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-o", out, "./testdata/echofn")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			echoFn.err = fmt.Errorf("go build ./testdata/echofn: %w\n%s", err, b)
			return
		}
		echoFn.path = out
	})
	if echoFn.err != nil {
		t.Fatal(echoFn.err)
	}
	return echoFn.path
}

// lockedBuffer collects the child's output from two pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// function is a running echofn process talking to its own Server.
type function struct {
	srv    *Server
	exited chan struct{} // closed when the process exits
	err    error         // cmd.Wait result, valid after exited
	out    *lockedBuffer
}

func startFunction(t *testing.T, opts Options) *function {
	t.Helper()
	bin := echoBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	f := &function{srv: New(ln, opts), exited: make(chan struct{}), out: &lockedBuffer{}}
	t.Cleanup(func() { _ = f.srv.Close() })

	cmd := exec.Command(bin)
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=echo",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
	}
	cmd.Stdout, cmd.Stderr = f.out, f.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start echofn: %v", err)
	}
	go func() {
		f.err = cmd.Wait()
		close(f.exited)
	}()
	// Registered after the server's cleanup, so it runs first.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-f.exited
		if t.Failed() || testing.Verbose() {
			t.Logf("echofn output:\n%s", f.out)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.srv.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return f
}

// invoke runs one invocation with a generous deadline.
func (f *function) invoke(t *testing.T, id, payload string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := f.srv.Invoke(ctx, Invocation{
		RequestID:   id,
		Payload:     []byte(payload),
		Deadline:    time.Now().Add(10 * time.Second),
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:echo",
	})
	if err != nil {
		t.Fatalf("Invoke %s: %v", id, err)
	}
	return res
}

// waitExit waits for the process to exit and returns its exit code.
func (f *function) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-f.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("echofn did not exit")
	}
	var exitErr *exec.ExitError
	if errors.As(f.err, &exitErr) {
		return exitErr.ExitCode()
	}
	if f.err != nil {
		t.Fatalf("echofn wait: %v", f.err)
	}
	return 0
}

func decodeLambdaError(t *testing.T, payload []byte) messages.InvokeResponse_Error {
	t.Helper()
	var e messages.InvokeResponse_Error
	if err := json.Unmarshal(payload, &e); err != nil {
		t.Fatalf("error payload %s is not an InvokeResponse_Error: %v", payload, err)
	}
	return e
}

// contextInfo matches testdata/echofn's reply to {"context":true}.
type contextInfo struct {
	RequestID       string            `json:"request_id"`
	FunctionARN     string            `json:"function_arn"`
	DeadlineMS      int64             `json:"deadline_ms"`
	TraceID         string            `json:"trace_id"`
	ClientCustom    map[string]string `json:"client_custom"`
	CognitoIdentity string            `json:"cognito_identity_id"`
	PID             int               `json:"pid"`
}

func (f *function) contextInfo(t *testing.T, inv Invocation) contextInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := f.srv.Invoke(ctx, inv)
	if err != nil || res.ErrorType != "" {
		t.Fatalf("context Invoke: %v %s %s", err, res.ErrorType, res.Payload)
	}
	var info contextInfo
	if err := json.Unmarshal(res.Payload, &info); err != nil {
		t.Fatalf("decode %s: %v", res.Payload, err)
	}
	return info
}

// TestAWSLambdaGo drives the real aws-lambda-go runtime client through one
// warm process: echo, headers, a returned error, more echoes, then a panic.
func TestAWSLambdaGo(t *testing.T) {
	f := startFunction(t, Options{})

	deadline := time.Now().Add(7 * time.Second)
	first := f.contextInfo(t, Invocation{
		RequestID:       "ctx-1",
		Payload:         []byte(`{"context":true}`),
		Deadline:        deadline,
		FunctionARN:     "arn:aws:lambda:eu-west-1:1:function:echo:live",
		TraceID:         "Root=1-abc;Parent=def;Sampled=1",
		ClientContext:   `{"custom":{"tenant":"t1"}}`,
		CognitoIdentity: `{"cognitoIdentityId":"ident","cognitoIdentityPoolId":"pool"}`,
	})
	want := contextInfo{
		RequestID:       "ctx-1",
		FunctionARN:     "arn:aws:lambda:eu-west-1:1:function:echo:live",
		DeadlineMS:      deadline.UnixMilli(),
		TraceID:         "Root=1-abc;Parent=def;Sampled=1",
		ClientCustom:    map[string]string{"tenant": "t1"},
		CognitoIdentity: "ident",
		PID:             first.PID,
	}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("runtime saw %+v, want %+v", first, want)
	}

	for i := range 5 {
		payload := fmt.Sprintf(`{"n":%d,"s":"warm"}`, i)
		res := f.invoke(t, fmt.Sprintf("echo-%d", i), payload)
		if res.ErrorType != "" || string(res.Payload) != payload {
			t.Fatalf("echo %d = {%q %s}, want %s", i, res.ErrorType, res.Payload, payload)
		}
	}

	res := f.invoke(t, "err-1", `{"error":"bad input"}`)
	if res.ErrorType != "errorString" {
		t.Errorf("returned error: ErrorType = %q, want errorString", res.ErrorType)
	}
	if e := decodeLambdaError(t, res.Payload); e.Message != "bad input" || e.Type != "errorString" {
		t.Errorf("returned error payload = %+v, want errorString/bad input", e)
	}

	// A returned error is not fatal: the same process keeps serving.
	if again := f.contextInfo(t, Invocation{RequestID: "ctx-2", Payload: []byte(`{"context":true}`),
		Deadline: time.Now().Add(5 * time.Second)}); again.PID != first.PID {
		t.Errorf("process changed after a returned error: pid %d, want %d", again.PID, first.PID)
	}

	res = f.invoke(t, "panic-1", `{"panic":"kaboom"}`)
	if res.ErrorType != "string" {
		t.Errorf("panic: ErrorType = %q, want string (the panic value's type)", res.ErrorType)
	}
	e := decodeLambdaError(t, res.Payload)
	if e.Message != "kaboom" || len(e.StackTrace) == 0 {
		t.Errorf("panic payload = %s, want errorMessage kaboom with a stackTrace", res.Payload)
	}
	// After reporting a panic aws-lambda-go exits via log.Fatalf.
	if code := f.waitExit(t); code != 1 {
		t.Errorf("exit code after panic = %d, want 1", code)
	}
	if !strings.Contains(f.out.String(), "panic") {
		t.Errorf("expected the runtime to log the panic, output:\n%s", f.out)
	}
	// Nobody polls any more: the caller must notice the exit and cancel.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := f.srv.Invoke(ctx, Invocation{RequestID: "orphan", Payload: []byte(`{}`), Deadline: time.Now().Add(time.Second)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Invoke after the runtime exited = %v, want DeadlineExceeded", err)
	}
}

// TestAWSLambdaGoResponseTooLarge: a 413 is fatal for aws-lambda-go.
func TestAWSLambdaGoResponseTooLarge(t *testing.T) {
	f := startFunction(t, Options{MaxResponseBytes: 1024})
	big := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 2048))
	res := f.invoke(t, "big-1", big)
	if res.ErrorType != "Function.ResponseSizeTooLarge" {
		t.Fatalf("ErrorType = %q (%s), want Function.ResponseSizeTooLarge", res.ErrorType, res.Payload)
	}
	if e := decodeLambdaError(t, res.Payload); e.Type != "Function.ResponseSizeTooLarge" || e.Message == "" {
		t.Errorf("payload = %s", res.Payload)
	}
	if code := f.waitExit(t); code != 1 {
		t.Errorf("exit code after 413 = %d, want 1", code)
	}
}

// TestAWSLambdaGoTimeout: after Invoke gives up, the function's late answer
// gets 403, which is fatal for aws-lambda-go.
func TestAWSLambdaGoTimeout(t *testing.T) {
	f := startFunction(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.srv.Invoke(ctx, Invocation{RequestID: "slow-1", Payload: []byte(`{"sleep_ms":400}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke = %v, want DeadlineExceeded", err)
	}
	if code := f.waitExit(t); code != 1 {
		t.Errorf("exit code after a late answer = %d, want 1", code)
	}
	if out := f.out.String(); !strings.Contains(out, "403") {
		t.Errorf("expected the runtime to log the 403, output:\n%s", out)
	}
}
