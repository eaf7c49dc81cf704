package e2e

// gustd dev --auth: a root token at first start, every call refused
// without a token (CLI and HTTP), tenants' tokens made by root, and each
// tenant alone seeing and invoking its functions, through the CLI, the
// Lambda REST API with the unmodified aws-sdk-go-v2 client (the token as
// the access key id), function URLs and async invocations.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/gustfaas/gust/internal/testutil"
)

func TestAuthTenants(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, "--auth")

	// The first start wrote the root token, readable by root only.
	path := filepath.Join(d.dataDir, "root.token")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("root token: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("root.token mode %v, want 0600", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(string(b))
	as := func(token string, args ...string) cliResult {
		t.Helper()
		return d.gust(t, append([]string{"--token", token}, args...)...)
	}
	mustAs := func(token string, args ...string) cliResult {
		t.Helper()
		r := as(token, args...)
		if r.code != 0 {
			t.Fatalf("gust %s: want exit 0, got\n%s", strings.Join(args, " "), r)
		}
		return r
	}

	// No token, or a wrong one: the CLI is refused and says why.
	for _, r := range []cliResult{d.gust(t, "fn", "ls"), as("gust_wrong", "fn", "ls"), d.gust(t, "invoke", "hello")} {
		if r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") || !strings.Contains(r.stderr, "UnrecognizedClientException") {
			t.Errorf("call without a valid token: want exit 1 and unauthenticated, got\n%s", r)
		}
	}

	// Root makes tenants' tokens; the token is the last line.
	create := func(tenant string) string {
		t.Helper()
		out := strings.TrimSpace(mustAs(root, "token", "create", "--tenant", tenant).stdout)
		lines := strings.Split(out, "\n")
		tok := strings.TrimSpace(lines[len(lines)-1])
		if !strings.HasPrefix(tok, "gust_") {
			t.Fatalf("token create printed %q", out)
		}
		return tok
	}
	acme, beta := create("acme"), create("beta")
	if acme == beta {
		t.Fatal("two tenants got one token")
	}
	// A tenant may not make tokens nor administer the cluster.
	for _, args := range [][]string{{"token", "create", "--tenant", "x"}, {"nodes"}, {"quota", "set", "--tenant", "acme", "--concurrency", "500"}} {
		if r := as(acme, args...); r.code != 1 || !strings.Contains(r.stderr, "AccessDeniedException") {
			t.Errorf("tenant running gust %s: want AccessDeniedException, got\n%s", strings.Join(args, " "), r)
		}
	}
	if r := as(root, "token", "create", "--tenant", "Not.Valid"); r.code != 1 || !strings.Contains(r.stderr, "InvalidParameterValueException") {
		t.Errorf("bad tenant name: %s", r)
	}

	// Tenant A deploys and invokes its own functions; the function sees
	// its own name.
	mustAs(acme, "fn", "deploy", "hello", "--code", bin.probeZip)
	mustAs(acme, "fn", "deploy", "private", "--code", bin.probeZip)
	env := invokeAs(t, d, acme, "private", `{"action":"env"}`)
	var got map[string]any
	decode(t, env.Payload, &got)
	if got["AWS_LAMBDA_FUNCTION_NAME"] != "private" {
		t.Errorf("function sees its name as %v", got["AWS_LAMBDA_FUNCTION_NAME"])
	}
	if names := lsAs(t, d, acme); strings.Join(names, ",") != "hello,private" {
		t.Errorf("acme lists %v", names)
	}
	// Its logs are its own too.
	if !waitFor(10*time.Second, func() bool {
		r := as(acme, "logs", "private")
		return r.code == 0 && strings.Contains(r.stdout, "REPORT RequestId: "+env.RequestID)
	}) {
		t.Errorf("acme's logs of private lack the REPORT line: %s", as(acme, "logs", "private"))
	}

	// Tenant B sees none of them, and another tenant's function is simply
	// not found, whatever the call.
	if names := lsAs(t, d, beta); len(names) != 0 {
		t.Errorf("beta lists acme's functions: %v", names)
	}
	for _, args := range [][]string{
		{"invoke", "private", "--payload", "{}"},
		{"invoke", "private", "--async", "--payload", "{}"},
		{"fn", "get", "private"},
		{"fn", "rm", "private"},
		{"logs", "private"},
		{"invoke", "acme.private", "--payload", "{}"}, // spelling the stored name does not help
	} {
		r := as(beta, args...)
		// The message names only what beta asked for, in beta's own names.
		asked := strings.Join(args, " ")
		leak := strings.Contains(r.stderr, "beta.") || (!strings.Contains(asked, "acme") && strings.Contains(r.stderr, "acme"))
		if r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") || leak {
			t.Errorf("beta running gust %s: want ResourceNotFoundException naming nothing of acme, got\n%s", asked, r)
		}
	}
	// B may have its own "hello", apart from A's.
	mustAs(beta, "fn", "deploy", "hello", "--code", bin.probeZip, "--env", "WHO=beta")
	if v := envOf(t, invokeAs(t, d, beta, "hello", `{"action":"env","key":"WHO"}`)); v != "beta" {
		t.Errorf("beta's hello sees WHO=%q", v)
	}
	if v := envOf(t, invokeAs(t, d, acme, "hello", `{"action":"env","key":"WHO"}`)); v != "" {
		t.Errorf("acme's hello sees WHO=%q (beta's deploy replaced it?)", v)
	}
	// Root, the operator, sees every tenant's function by its stored name.
	if names := lsAs(t, d, root); strings.Join(names, ",") != "acme.hello,acme.private,beta.hello" {
		t.Errorf("root lists %v", names)
	}

	// GUST_TOKEN works as --token does.
	cmd := exec.Command(bin.gust, "--addr", d.grpc, "fn", "ls")
	cmd.Env = append(cleanEnv(), "GUST_TOKEN="+beta)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "hello") || strings.Contains(string(out), "private") {
		t.Errorf("GUST_TOKEN=beta gust fn ls: %v\n%s", err, out)
	}

	// An async invocation is its tenant's too.
	id := strings.TrimSpace(mustAs(acme, "invoke", "private", "--async", "--payload", `{"action":"echo","data":"x"}`).stdout)
	mustAs(acme, "invocation", "get", id)
	if r := as(beta, "invocation", "get", id); r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
		t.Errorf("beta reading acme's invocation: %s", r)
	}

	// HTTP: no token is 401 with Lambda's error shape, everywhere but the
	// health probes; /metrics is root's.
	base := "http://" + d.http
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/2015-03-31/functions/", "", http.StatusUnauthorized},
		{"POST", "/2015-03-31/functions/private/invocations", "", http.StatusUnauthorized},
		{"POST", "/2015-03-31/functions/private/invocations", "gust_wrong", http.StatusUnauthorized},
		{"GET", "/fn/private", "", http.StatusUnauthorized},
		{"GET", "/metrics", "", http.StatusUnauthorized},
		{"GET", "/metrics", acme, http.StatusForbidden},
		{"GET", "/metrics", root, http.StatusOK},
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/readyz", "", http.StatusOK},
		{"POST", "/2015-03-31/functions/private/invocations", acme, http.StatusOK},
		{"POST", "/2015-03-31/functions/private/invocations", beta, http.StatusNotFound},
		{"GET", "/fn/private", acme, http.StatusOK},
		{"GET", "/fn/private", beta, http.StatusNotFound},
	} {
		status, hdr, body := httpCall(t, c.method, base+c.path, c.token)
		if status != c.want {
			t.Errorf("%s %s (token %q): status %d, want %d: %s", c.method, c.path, short(c.token), status, c.want, body)
			continue
		}
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			var e struct{ Type, Message string }
			if json.Unmarshal(body, &e) != nil || e.Type != "User" || hdr.Get("X-Amzn-ErrorType") == "" {
				t.Errorf("%s %s: refusal not in Lambda's error shape: %v %s", c.method, c.path, hdr, body)
			}
			if status == http.StatusUnauthorized && !strings.Contains(e.Message, "unauthenticated") {
				t.Errorf("%s %s: message %q", c.method, c.path, e.Message)
			}
		}
	}

	// The unmodified Lambda SDK, its access key id being the token.
	ctx := context.Background()
	sdk := func(key string) *lambda.Client {
		return lambda.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(base),
			Credentials: credentials.NewStaticCredentialsProvider(key, "unused-secret", "")})
	}
	list, err := sdk(acme).ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatalf("SDK ListFunctions as acme: %v", err)
	}
	var sdkNames []string
	for _, f := range list.Functions {
		sdkNames = append(sdkNames, aws.ToString(f.FunctionName))
	}
	sort.Strings(sdkNames)
	if strings.Join(sdkNames, ",") != "hello,private" {
		t.Errorf("SDK ListFunctions as acme: %v", sdkNames)
	}
	out, err := sdk(acme).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("private"), Payload: []byte(`{"action":"echo","data":"sdk"}`)})
	if err != nil || out.FunctionError != nil || !bytes.Contains(out.Payload, []byte(`"sdk"`)) {
		t.Errorf("SDK Invoke as acme: %v %+v", err, out)
	}
	_, err = sdk(beta).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("private"), Payload: []byte(`{}`)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("SDK Invoke of acme's function as beta: want ResourceNotFoundException, got %v", err)
	}
	_, err = sdk("AKIDEXAMPLE").ListFunctions(ctx, &lambda.ListFunctionsInput{})
	var api interface{ ErrorCode() string } // smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "UnrecognizedClientException" {
		t.Errorf("SDK with an unknown key: want UnrecognizedClientException, got %v", err)
	}

	// Quotas are per tenant: root gives acme a limit of its own, 1, and
	// while one of acme's invocations runs the next is throttled; beta,
	// sharing the account's pool, is not.
	mustAs(root, "quota", "set", "--tenant", "acme", "--concurrency", "1")
	var q struct {
		Tenant      string
		Concurrency int64
	}
	decode(t, []byte(mustAs(acme, "-o", "json", "quota", "get").stdout), &q)
	if q.Tenant != "acme" || q.Concurrency != 1 {
		t.Errorf("acme's quota: %+v", q)
	}
	mustAs(acme, "fn", "deploy", "slow", "--code", bin.probeZip, "--timeout", "20s")
	slow := make(chan cliResult, 1)
	go func() {
		r, _ := runGust(d.grpc, "", "--token", acme, "invoke", "slow", "--payload", `{"action":"sleep","n":6000}`)
		slow <- r
	}()
	throttled := waitFor(15*time.Second, func() bool {
		r := as(acme, "invoke", "private", "--payload", `{"action":"echo"}`)
		return r.code == 1 && strings.Contains(r.stderr, "TooManyRequestsException")
	})
	if !throttled {
		t.Error("acme at its limit of 1 was never throttled")
	} else {
		invokeAs(t, d, beta, "hello", `{"action":"echo"}`) // beta's pool is not acme's
	}
	if r := <-slow; r.code != 0 {
		t.Errorf("acme's slow invocation: %s", r)
	}
	mustAs(root, "quota", "set", "--tenant", "acme", "--concurrency", "0")
	if !waitFor(10*time.Second, func() bool { return as(acme, "invoke", "private", "--payload", "{}").code == 0 }) {
		t.Error("acme back in the account pool still refused")
	}

	// Auth stays on: restarted without --auth, the cluster (its Raft state
	// holds a root token) still refuses calls without a token, and the
	// tokens made before still work.
	if code, ok := d.stop(syscall.SIGTERM, 30*time.Second); code != 0 || !ok {
		t.Fatalf("gustd dev stop: exit %d, in time %v", code, ok)
	}
	d = startDaemonAt(t, d.dataDir, d.grpc, d.http)
	if r := d.gust(t, "fn", "ls"); r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("restarted without --auth, no token: want unauthenticated, got\n%s", r)
	}
	if names := lsAs(t, d, acme); strings.Join(names, ",") != "hello,private,slow" {
		t.Errorf("restarted without --auth, acme lists %v", names)
	}
	if status, _, body := httpCall(t, "GET", base+"/2015-03-31/functions/", ""); status != http.StatusUnauthorized {
		t.Errorf("restarted without --auth, HTTP without a token: %d %s", status, body)
	}

	// Tokens are listed by id, never shown again, and revoked by id: a
	// revoked token is refused everywhere at once; the others work on.
	var toks []struct {
		ID, Tenant string
		Root       bool
	}
	decode(t, []byte(mustAs(root, "-o", "json", "token", "ls").stdout), &toks)
	ids := map[string]string{}
	for _, tk := range toks {
		ids[tk.Tenant] = tk.ID
		if tk.Root != (tk.Tenant == "") || len(tk.ID) != 16 {
			t.Errorf("token ls row %+v", tk)
		}
	}
	if len(toks) != 3 || ids["acme"] == "" || ids["beta"] == "" || ids[""] == "" {
		t.Fatalf("token ls: %+v, want root, acme and beta", toks)
	}
	if text := mustAs(root, "token", "ls").stdout; strings.Contains(text, "gust_") || !strings.Contains(text, ids["acme"]) {
		t.Errorf("token ls shows a token or lacks acme's id:\n%s", text)
	}
	for _, c := range []struct {
		token, id, want string
	}{
		{beta, ids["acme"], "AccessDeniedException"}, // only root revokes
		{root, ids[""], "InvalidParameterValueException"},
		{root, "0123456789abcdef", "ResourceNotFoundException"},
	} {
		if r := as(c.token, "token", "revoke", c.id); r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("token revoke %s as %s: want %s, got\n%s", c.id, short(c.token), c.want, r)
		}
	}
	if r := mustAs(root, "token", "revoke", ids["acme"]); !strings.Contains(r.stdout, "acme") {
		t.Errorf("token revoke printed %q", r.stdout)
	}
	if r := as(acme, "fn", "ls"); r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("revoked token on the CLI: want unauthenticated, got\n%s", r)
	}
	if status, _, body := httpCall(t, "POST", base+"/2015-03-31/functions/private/invocations", acme); status != http.StatusUnauthorized {
		t.Errorf("revoked token over HTTP: %d %s", status, body)
	}
	if _, err := sdk(acme).ListFunctions(ctx, &lambda.ListFunctionsInput{}); !errors.As(err, &api) || api.ErrorCode() != "UnrecognizedClientException" {
		t.Errorf("revoked token in the SDK: want UnrecognizedClientException, got %v", err)
	}
	if r := as(root, "token", "revoke", acme); r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
		t.Errorf("revoking a revoked token (by the token itself): %s", r)
	}
	invokeAs(t, d, beta, "hello", `{"action":"echo"}`)
	if names := lsAs(t, d, root); !slices.Contains(names, "acme.private") {
		t.Errorf("revoking acme's token removed its functions: root lists %v", names)
	}

	// Root's token is rotated, not revoked: a tenant may not; root gets a
	// new one on the last line, written to root.token too; the old one is
	// refused at once; tenants' tokens are untouched.
	if r := as(beta, "token", "rotate-root"); r.code != 1 || !strings.Contains(r.stderr, "AccessDeniedException") {
		t.Errorf("a tenant rotating the root token: %s", r)
	}
	rotated := strings.TrimSpace(mustAs(root, "token", "rotate-root").stdout)
	lines := strings.Split(rotated, "\n")
	newRoot := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(newRoot, "gust_") || newRoot == root || !strings.Contains(rotated, path) {
		t.Fatalf("token rotate-root printed %q; want a new token on the last line and %s rewritten", rotated, path)
	}
	if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != newRoot {
		t.Errorf("root.token after rotation: %q %v, want the new token", b, err)
	}
	if r := as(root, "fn", "ls"); r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("the old root token after rotation: %s", r)
	}
	if names := lsAs(t, d, newRoot); !slices.Contains(names, "beta.hello") {
		t.Errorf("the new root token lists %v", names)
	}
	invokeAs(t, d, beta, "hello", `{"action":"echo"}`)
}

// invokeAs invokes name as token's tenant and requires success.
func invokeAs(t *testing.T, d *daemon, token, name, payload string) envelope {
	t.Helper()
	return d.mustInvokeJSON(t, name, payload, "--token", token)
}

func envOf(t *testing.T, env envelope) string {
	t.Helper()
	var got struct{ Value string }
	decode(t, env.Payload, &got)
	return got.Value
}

// lsAs lists function names as token's tenant.
func lsAs(t *testing.T, d *daemon, token string) []string {
	t.Helper()
	r := d.gust(t, "--token", token, "-o", "json", "fn", "ls")
	if r.code != 0 {
		t.Fatalf("fn ls: %s", r)
	}
	var fns []struct{ Name string }
	decode(t, []byte(r.stdout), &fns)
	names := []string{}
	for _, f := range fns {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names
}

func httpCall(t *testing.T, method, url, token string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"action":"echo"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func short(tok string) string {
	if len(tok) > 10 {
		return tok[:10] + "…"
	}
	return tok
}
