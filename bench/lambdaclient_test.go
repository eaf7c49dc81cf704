package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
)

// fakeLambda answers like gust's HTTP front: restJson1 errors, 201, 204.
func fakeLambda(t *testing.T) (*lambdaClient, *[]string) {
	var created []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			FunctionName, Runtime, Handler string
			Code                           struct{ ZipFile []byte }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Runtime != "provided.al2" || len(req.Code.ZipFile) == 0 {
			w.Header().Set("X-Amzn-ErrorType", "InvalidParameterValueException")
			w.WriteHeader(400)
			io.WriteString(w, `{"Type":"User","message":"bad create"}`)
			return
		}
		created = append(created, req.FunctionName)
		w.WriteHeader(201)
		io.WriteString(w, `{}`)
	})
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("name") {
		case "busy":
			w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException:ConcurrentInvocationLimitExceeded")
			w.WriteHeader(429)
			io.WriteString(w, `{"Type":"User","message":"Rate Exceeded.","Reason":"ConcurrentInvocationLimitExceeded"}`)
		case "broken":
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			io.WriteString(w, `{"errorMessage":"exit status 2","errorType":"Runtime.ExitError"}`)
		case "rie-broken":
			io.WriteString(w, `{"errorMessage":"boom","errorType":"errorString"}`)
		default:
			io.WriteString(w, `{"message":"hello, bench","invocations":1}`)
		}
	})
	mux.HandleFunc("DELETE /2015-03-31/functions/{name}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &lambdaClient{hc: newHTTPClient(4), base: srv.URL}, &created
}

func TestLambdaClient(t *testing.T) {
	lc, created := fakeLambda(t)
	ctx := context.Background()
	code := []byte("PK\x03\x04 not really a zip")
	if err := lc.CreateFunction(ctx, newCreateBody(code).For("f-1")); err != nil {
		t.Fatal(err)
	}
	if len(*created) != 1 || (*created)[0] != "f-1" {
		t.Fatalf("created %v", *created)
	}
	out, err := lc.Invoke(ctx, "f-1", []byte(`{}`))
	if err != nil || coldFromPayload(out) != ColdYes {
		t.Fatalf("invoke: %s %v", out, err)
	}
	if err := lc.DeleteFunction(ctx, "f-1"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ function, kind string }{
		{"busy", "TooManyRequestsException"},
		{"broken", "function Runtime.ExitError"},
		{"rie-broken", "function errorString"},
	} {
		_, err := lc.Invoke(ctx, tc.function, nil)
		if err == nil || errorKind(err) != tc.kind {
			t.Errorf("%s: err %v, kind %q, want %q", tc.function, err, errorKind(err), tc.kind)
		}
	}
	var he *httpError
	if _, err := lc.Invoke(ctx, "busy", nil); !errors.As(err, &he) || he.Status != 429 || he.Message != "Rate Exceeded." {
		t.Errorf("429 decoded as %#v", he)
	}
	err = lc.CreateFunction(ctx, []byte(`{"FunctionName":"x"}`))
	if errorKind(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), "bad create") {
		t.Errorf("bad create: %v", err)
	}
	dead := &lambdaClient{hc: &http.Client{Timeout: time.Second}, base: "http://127.0.0.1:1"}
	if _, err := dead.Invoke(ctx, "x", nil); errorKind(err) != "transport" {
		t.Errorf("refused connection: kind %q (%v)", errorKind(err), err)
	}
}

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errClientOverload, "client overload"},
		{&httpError{Status: 502}, "HTTP 502"},
		{apierr.New("ResourceNotFoundException", "no"), "ResourceNotFoundException"},
		{context.DeadlineExceeded, "timeout"},
		{context.Canceled, "canceled"},
		{&functionError{Kind: "Handled", Payload: "not json"}, "function Handled"},
		{errors.New("x"), "error"},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestCreateBody(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(boot, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	z, err := zipBootstrap(boot)
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		FunctionName, Runtime, Handler, Role string
		Code                                 struct{ ZipFile []byte }
	}
	if err := json.Unmarshal(newCreateBody(z).For(`odd"name`), &req); err != nil {
		t.Fatal(err)
	}
	if req.FunctionName != `odd"name` || req.Runtime != "provided.al2" || req.Handler != "bootstrap" || req.Role == "" {
		t.Errorf("request %+v", req)
	}
	zr, err := zip.NewReader(bytes.NewReader(req.Code.ZipFile), int64(len(req.Code.ZipFile)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode()&0o111 == 0 {
		t.Fatalf("zip: %v %v", zr, err)
	}
}

func TestColdFromPayload(t *testing.T) {
	for in, want := range map[string]Cold{
		`{"message":"hello","invocations":1}`: ColdYes,
		`{"invocations":7}`:                   ColdNo,
		`{"message":"hello"}`:                 ColdUnknown,
		`"just a string"`:                     ColdUnknown,
		``:                                    ColdUnknown,
	} {
		if got := coldFromPayload([]byte(in)); got != want {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
}

func TestRuntimeStub(t *testing.T) {
	stub, err := startRuntimeStub([]byte(`{"name":"bench"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	base := "http://" + stub.Addr() + "/2018-06-01/runtime"
	next, done, _ := stub.arm()
	resp, err := http.Get(base + "/invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	if resp.StatusCode != 200 || string(body) != `{"name":"bench"}` || id == "" || resp.Header.Get("Lambda-Runtime-Deadline-Ms") == "" {
		t.Fatalf("next: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	select {
	case <-next:
	default:
		t.Fatal("no /next signal")
	}
	resp, err = http.Post(base+"/invocation/"+id+"/response", "application/json", strings.NewReader(`{"ok":true}`))
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("response: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("no response signal")
	}
	// A second /next waits: the process is killed there.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/invocation/next", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("second /next answered %d", resp.StatusCode)
	}
}
