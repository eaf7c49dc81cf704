// Attacks of one tenant on another through what tenants share (issue 14:
// H5, M6, M1), against `gustd dev --auth` with tenants acme and bob, as
// the attack trial ran them: idempotency keys, code digests, and the
// account's concurrency.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/testutil"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// tenantsDaemon is a `gustd dev --auth` with root's token and two tenants'.
type tenantsDaemon struct {
	*daemon
	root, acme, bob string
}

func startTenants(t *testing.T) *tenantsDaemon {
	t.Helper()
	d := startDaemon(t, "--auth")
	b, err := os.ReadFile(filepath.Join(d.dataDir, "root.token"))
	if err != nil {
		t.Fatal(err)
	}
	td := &tenantsDaemon{daemon: d, root: strings.TrimSpace(string(b))}
	create := func(tenant string) string {
		t.Helper()
		out := strings.TrimSpace(td.mustAs(t, td.root, "token", "create", "--tenant", tenant).stdout)
		lines := strings.Split(out, "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	td.acme, td.bob = create("acme"), create("bob")
	return td
}

func (d *tenantsDaemon) as(t *testing.T, token string, args ...string) cliResult {
	t.Helper()
	return d.gust(t, append([]string{"--token", token}, args...)...)
}

func (d *tenantsDaemon) mustAs(t *testing.T, token string, args ...string) cliResult {
	t.Helper()
	r := d.as(t, token, args...)
	if r.code != 0 {
		t.Fatalf("gust %s: want exit 0, got\n%s", strings.Join(args, " "), r)
	}
	return r
}

// client is the Go SDK with token, for what the CLI does not offer (a
// PutFunction naming a digest, many calls quickly).
func (d *tenantsDaemon) client(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.New([]string{d.grpc}, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantRefused checks a CLI run failed with the named error and a message
// holding each of parts.
func wantRefused(t *testing.T, what string, r cliResult, name string, parts ...string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, name) {
		t.Errorf("%s: want %s, got\n%s", what, name, r)
		return
	}
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("%s: the message lacks %q:\n%s", what, p, r.stderr)
		}
	}
}

func TestAttackTenancy(t *testing.T) {
	testutil.RequireRoot(t)
	d := startTenants(t)
	d.mustAs(t, d.acme, "fn", "deploy", "evil", "--code", bin.probeZip)
	d.mustAs(t, d.bob, "fn", "deploy", "bobfn", "--code", bin.probeZip)
	t.Run("IdempotencyKeys", func(t *testing.T) { attackIdempotencyKeys(t, d) })
	t.Run("ScheduleTicks", func(t *testing.T) { attackScheduleTicks(t, d) })
	t.Run("CodeDigest", func(t *testing.T) { attackCodeDigest(t, d) })
	t.Run("Capacity", func(t *testing.T) { attackCapacity(t, d) })
}

// H5: the trial's `--idempotency-key order-42` from bob then acme gave
// acme bob's invocation id and acme's event never ran; a key acme used
// told bob so. Now each tenant's key is its own.
func attackIdempotencyKeys(t *testing.T, d *tenantsDaemon) {
	async := func(token, fn, key string) string {
		t.Helper()
		return strings.TrimSpace(d.mustAs(t, token, "invoke", fn, "--async", "--idempotency-key", key, "--payload", `{"action":"echo"}`).stdout)
	}
	bobs := async(d.bob, "bobfn", "order-42")
	acmes := async(d.acme, "evil", "order-42")
	if acmes == bobs {
		t.Fatalf("acme's --idempotency-key order-42 returned bob's invocation %s", bobs)
	}
	if again := async(d.bob, "bobfn", "order-42"); again != bobs {
		t.Errorf("bob's retry with order-42 got %s, want its first invocation %s", again, bobs)
	}
	if again := async(d.acme, "evil", "order-42"); again != acmes {
		t.Errorf("acme's retry with order-42 got %s, want its first invocation %s", again, acmes)
	}
	// acme's event runs, and reads back with the key acme sent.
	var inv struct{ Status, IdempotencyKey string }
	if !waitFor(20*time.Second, func() bool {
		r := d.as(t, d.acme, "-o", "json", "invocation", "get", acmes)
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &inv) == nil && inv.Status == "succeeded"
	}) {
		t.Errorf("acme's order-42 event did not succeed: %s", d.as(t, d.acme, "invocation", "get", acmes))
	}
	// Probing: bob sending the key acme used learns nothing of it.
	secret := async(d.acme, "evil", "acme-secret-7")
	if probe := async(d.bob, "bobfn", "acme-secret-7"); probe == secret {
		t.Errorf("bob probing acme-secret-7 got acme's invocation %s", secret)
	}
}

// H5: bob pre-claimed acme's schedule's tick keys,
// schedule/acme.cron1/<tick RFC3339>, and acme's function never ran on
// them. Now no caller's key can be a tick's: bob claims every tick of the
// next 30 s, acme's schedule then fires, and its function runs.
func attackScheduleTicks(t *testing.T, d *tenantsDaemon) {
	d.mustAs(t, d.acme, "fn", "deploy", "crontarget", "--code", bin.probeZip)
	bob := d.client(t, d.bob)
	ctx := context.Background()
	first := time.Now().Truncate(time.Second)
	for i := range 30 {
		tick := first.Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339Nano)
		if _, err := bob.InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: "bobfn", IdempotencyKey: "schedule/acme.cron1/" + tick}); err != nil {
			t.Fatalf("bob's claim of tick %s: %v", tick, err)
		}
	}
	d.mustAs(t, d.acme, "schedule", "add", "cron1", "--function", "crontarget", "--cron", "@every 1s", "--payload", `{"action":"echo"}`)
	defer d.as(t, d.acme, "schedule", "rm", "cron1")
	start := regexp.MustCompile(`START RequestId: `)
	ran := waitFor(15*time.Second, func() bool {
		r := d.as(t, d.acme, "logs", "crontarget")
		return r.code == 0 && len(start.FindAllString(r.stdout, -1)) >= 2
	})
	if !ran {
		t.Errorf("acme's schedule fired (%s) but crontarget did not run twice within 15 s: bob's keys took the ticks; logs:\n%s",
			strings.TrimSpace(d.as(t, d.acme, "schedule", "ls").stdout), d.as(t, d.acme, "logs", "crontarget").stdout)
	}
	if time.Since(first) > 25*time.Second {
		t.Log("the check ran past the ticks bob claimed; it proves less than it should")
	}
}

// M6: bob attached acme's code by its digest (PutFunction with a digest
// from acme's deploy output). Now a digest is usable only by a tenant that
// uploaded it; bob learns no more than for a digest nobody uploaded; bob
// uploading the same bytes may deploy them; root may name any code.
func attackCodeDigest(t *testing.T, d *tenantsDaemon) {
	probe, err := os.ReadFile(bin.probe)
	if err != nil {
		t.Fatal(err)
	}
	acmeZip := filepath.Join(t.TempDir(), "acme-only.zip")
	if err := writeZip(acmeZip, []zipEntry{{name: "bootstrap", mode: 0o755, data: probe}, {name: "secret.txt", mode: 0o644, data: []byte("acme's secret")}}); err != nil {
		t.Fatal(err)
	}
	out := d.mustAs(t, d.acme, "fn", "deploy", "private", "--code", acmeZip).stdout
	m := regexp.MustCompile(`sha256:([0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("deploy printed no digest:\n%s", out)
	}
	digest := m[1]

	ctx := context.Background()
	bob := d.client(t, d.bob)
	_, stolen := bob.PutFunction(ctx, &gustv1.FunctionConfig{Name: "stolen"}, digest)
	_, never := bob.PutFunction(ctx, &gustv1.FunctionConfig{Name: "stolen"}, strings.Repeat("0", 64))
	var e *client.Error
	if !errors.As(stolen, &e) || e.Name != client.InvalidParameterValue || !strings.Contains(e.Message, "not found: upload it first") {
		t.Fatalf("bob's PutFunction with acme's digest: %v, want InvalidParameterValueException: code … not found: upload it first", stolen)
	}
	if strings.ReplaceAll(stolen.Error(), digest, strings.Repeat("0", 64)) != never.Error() {
		t.Errorf("bob can tell acme's digest from none:\n%v\n%v", stolen, never)
	}
	if r := d.as(t, d.bob, "invoke", "stolen", "--payload", "{}"); r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
		t.Errorf("bob invoking stolen: want ResourceNotFoundException, got\n%s", r)
	}
	// Root, the operator, may name any code.
	if _, err := d.client(t, d.root).PutFunction(ctx, &gustv1.FunctionConfig{Name: "rootcopy"}, digest); err != nil {
		t.Errorf("root's PutFunction with acme's digest: %v", err)
	}
	// The same bytes uploaded by bob are bob's too.
	again := d.mustAs(t, d.bob, "fn", "deploy", "mine", "--code", acmeZip).stdout
	if !strings.Contains(again, digest) {
		t.Errorf("bob's upload of the same bytes got another digest:\n%s", again)
	}
	if _, err := bob.PutFunction(ctx, &gustv1.FunctionConfig{Name: "stolen"}, digest); err != nil {
		t.Errorf("bob's PutFunction with code it uploaded itself: %v", err)
	}
}

// M1: acme, with no pool of its own, asked for 40 provisioned sandboxes
// (all of a worker's memory) and reserved 895 of the account's 1,000. Now
// its caps refuse both and say which root command raises them; root
// raises them; and the README's example names --unreserved-min.
func attackCapacity(t *testing.T, d *tenantsDaemon) {
	wantRefused(t, "acme provisioning 40", d.as(t, d.acme, "fn", "concurrency", "evil", "--provisioned", "40"),
		"InvalidParameterValueException", "over its cap of 10", "gust quota set --tenant acme --max-provisioned N")
	wantRefused(t, "acme reserving 895", d.as(t, d.acme, "fn", "concurrency", "evil", "--reserved", "895"),
		"InvalidParameterValueException", "over its cap of 100", "gust quota set --tenant acme --max-reserved N")
	// The Lambda REST API's PutFunctionConcurrency is held to the same cap.
	status, _, body := httpPut(t, "http://"+d.http+"/2017-10-31/functions/evil/concurrency", d.acme, `{"ReservedConcurrentExecutions":895}`)
	if status != 400 || !strings.Contains(string(body), "--max-reserved") {
		t.Errorf("REST PutFunctionConcurrency 895 as acme: %d %s", status, body)
	}
	d.mustAs(t, d.acme, "fn", "concurrency", "evil", "--reserved", "60")
	d.mustAs(t, d.bob, "fn", "concurrency", "bobfn", "--reserved", "60") // bob's cap is bob's
	wantRefused(t, "acme raising its own cap", d.as(t, d.acme, "quota", "set", "--tenant", "acme", "--max-reserved", "1000"), "AccessDeniedException")

	d.mustAs(t, d.root, "quota", "set", "--tenant", "acme", "--max-reserved", "200", "--max-provisioned", "20")
	d.mustAs(t, d.acme, "fn", "concurrency", "evil", "--reserved", "200")
	var q struct {
		Caps struct {
			MaxReserved    int64 `json:"max_reserved"`
			Reserved       int64 `json:"reserved"`
			MaxProvisioned int64 `json:"max_provisioned"`
		} `json:"caps"`
	}
	r := d.mustAs(t, d.acme, "-o", "json", "quota", "get")
	if json.Unmarshal([]byte(r.stdout), &q) != nil || q.Caps.MaxReserved != 200 || q.Caps.Reserved != 200 || q.Caps.MaxProvisioned != 20 {
		t.Errorf("acme's quota get: %s", r.stdout)
	}
	d.mustAs(t, d.acme, "fn", "concurrency", "evil", "--reserved", "0")
	d.mustAs(t, d.bob, "fn", "concurrency", "bobfn", "--reserved", "0")

	// The README's own example: its refusal names the flag that changes it.
	d.mustAs(t, d.root, "fn", "deploy", "hello", "--code", bin.probeZip)
	d.mustAs(t, d.root, "quota", "set", "--concurrency", "100")
	wantRefused(t, "README example", d.as(t, d.root, "fn", "concurrency", "hello", "--reserved", "10"),
		"InvalidParameterValueException", "at least 100 must stay unreserved", "--unreserved-min")
	d.mustAs(t, d.root, "quota", "set", "--concurrency", "1000")
}

// httpPut sends body to url with token as the bearer.
func httpPut(t *testing.T, url, token, body string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}
