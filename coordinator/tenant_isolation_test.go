package coordinator

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/coordinator/auth"
	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/coordinator/replica"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/codezip"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/protobuf/proto"
)

// tenantParts is a single-node coordinator's logic without its servers:
// a Raft store, a code store, and the functions, quotas and invoker over
// them, with auth on.
type tenantParts struct {
	store  *raftstore.Store
	fns    *functions
	quotas *quotas
	iv     *invoker
}

func newTenantParts(t *testing.T) *tenantParts {
	t.Helper()
	store, code := openLeadingStores(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := replica.NewWriter(context.Background(), "c1", store, nil, nil)
	q := &quotas{store: store, write: w, limits: DefaultLimits()}
	fns := &functions{log: slog.New(slog.NewTextHandler(io.Discard, nil)), store: store, quotas: q, write: w, code: code,
		limits: DefaultLimits(), now: time.Now, tenants: func() bool { return true }}
	iv := &invoker{fns: fns, limits: DefaultLimits(), wake: make(chan struct{}, 1)}
	iv.enqueue = newGroupCommit(ctx, 1, maxEventBatch, iv.commitEvents)
	return &tenantParts{store: store, fns: fns, quotas: q, iv: iv}
}

// as is a context carrying tenant's principal ("" is root).
func as(tenant string) context.Context {
	return auth.WithPrincipal(context.Background(), auth.Principal{Tenant: tenant, Root: tenant == ""})
}

// codeZip is a valid code zip whose bootstrap holds body.
func codeZip(t *testing.T, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(body))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (p *tenantParts) upload(t *testing.T, tenant, body string) string {
	t.Helper()
	info, err := p.fns.Upload(as(tenant), bytes.NewReader(codeZip(t, body)))
	if err != nil {
		t.Fatalf("upload as %q: %v", tenant, err)
	}
	return info.Digest
}

func (p *tenantParts) put(tenant, stored, digest string) error {
	_, err := p.fns.Put(as(tenant), &gustv1.FunctionConfig{Name: stored}, digest)
	return err
}

// wantAPIError checks err is the named API error and its message holds
// every one of parts.
func wantAPIError(t *testing.T, what string, err error, name string, parts ...string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Name != name {
		t.Errorf("%s: got %v, want %s", what, err, name)
		return
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			t.Errorf("%s: message %q lacks %q", what, e.Message, p)
		}
	}
}

// M6: a digest is not a capability. beta, knowing acme's digest, cannot
// attach acme's code, and is told exactly what it would be told for a
// digest nobody uploaded; once beta uploads the same bytes it may; root,
// the operator, may name any code.
func TestCodeBelongsToItsUploader(t *testing.T) {
	p := newTenantParts(t)
	acmeCode := p.upload(t, "acme", "acme's secret code")
	if err := p.put("acme", "acme.evil", acmeCode); err != nil {
		t.Fatalf("acme deploying its own upload: %v", err)
	}
	stolen := p.put("beta", "beta.stolen", acmeCode)
	wantAPIError(t, "beta naming acme's digest", stolen, apierr.InvalidParameterValue, "code "+acmeCode+" not found: upload it first")
	missing := strings.Repeat("0", 64)
	never := p.put("beta", "beta.stolen", missing)
	wantAPIError(t, "beta naming a digest nobody uploaded", never, apierr.InvalidParameterValue, "not found: upload it first")
	if e1, e2 := fmt.Sprint(stolen), fmt.Sprint(never); strings.ReplaceAll(e1, acmeCode, missing) != e2 {
		t.Errorf("beta can tell acme's code from none: %q vs %q", e1, e2)
	}
	if _, err := p.store.Function("beta.stolen"); err == nil {
		t.Fatal("beta.stolen was stored")
	}

	// acme redeploys with the digest its function runs; root may use any.
	if err := p.put("acme", "acme.evil", acmeCode); err != nil {
		t.Errorf("acme redeploying its code: %v", err)
	}
	if err := p.put("", "beta.borrowed", acmeCode); err != nil {
		t.Errorf("root naming acme's digest: %v", err)
	}
	// Uploading the same bytes makes them beta's too.
	if again := p.upload(t, "beta", "acme's secret code"); again != acmeCode {
		t.Fatalf("the same bytes got digest %s, then %s", acmeCode, again)
	}
	if err := p.put("beta", "beta.stolen", acmeCode); err != nil {
		t.Errorf("beta deploying bytes it uploaded itself: %v", err)
	}
}

// H5: idempotency keys are scoped by tenant. The same key from two tenants
// makes two events, each tenant getting its own id back on a retry; a
// tenant reads its key as it sent it; and a key spelled like a schedule's
// tick does not claim the tick: the schedule still fires its event.
func TestIdempotencyKeysPerTenant(t *testing.T) {
	p := newTenantParts(t)
	ctx := context.Background()
	for _, fn := range []string{"acme.evil", "acme.other", "beta.bobfn"} {
		if err := p.put("", fn, p.upload(t, "", "code")); err != nil {
			t.Fatal(err)
		}
	}
	send := func(fn, key string) string {
		t.Helper()
		id, err := p.iv.InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: fn, IdempotencyKey: key})
		if err != nil {
			t.Fatalf("invoke %s with key %s: %v", fn, key, err)
		}
		return id
	}
	beta := send("beta.bobfn", "order-42")
	acme := send("acme.evil", "order-42")
	if acme == beta {
		t.Errorf("acme's key order-42 returned beta's event %s", beta)
	}
	if again := send("beta.bobfn", "order-42"); again != beta {
		t.Errorf("beta's retry got %s, want its first event %s", again, beta)
	}
	// Within a tenant, a key stays one event whichever function it names.
	if again := send("acme.other", "order-42"); again != acme {
		t.Errorf("acme's retry on another of its functions got %s, want %s", again, acme)
	}
	inv, err := p.iv.GetInvocation(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if inv.GetIdempotencyKey() != "order-42" || inv.GetFunction() != "acme.evil" {
		t.Errorf("acme's event reads key %q, function %q", inv.GetIdempotencyKey(), inv.GetFunction())
	}
	_, err = p.iv.InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: "acme.evil", IdempotencyKey: strings.Repeat("k", maxIdempotencyKey+1)})
	wantAPIError(t, "a key over the limit", err, apierr.InvalidParameterValue, "idempotency key")

	// beta pre-claims acme's schedule's next ticks by their keys.
	if _, err := p.iv.AddSchedule(ctx, &gustv1.ScheduleInfo{Name: "acme.cron1", Function: "acme.evil", Cron: "@every 1s"}); err != nil {
		t.Fatal(err)
	}
	sc := p.store.Schedules()[0]
	sched, _ := cronParser.Parse(sc.GetCron())
	tick := time.Unix(0, sc.GetCreatedUnixNano())
	for range 5 {
		tick = sched.Next(tick)
		send("beta.bobfn", "schedule/acme.cron1/"+tick.UTC().Format(time.RFC3339Nano))
	}
	before := p.store.PendingCount()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.iv.scheduleLoop(sctx)
	deadline := time.Now().Add(5 * time.Second)
	for p.store.PendingCount() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.store.PendingCount() == before {
		t.Fatalf("acme's schedule fired %d times, but no event of it was queued: beta's keys took its ticks", p.store.Schedules()[0].GetFired())
	}
}

// M1: a tenant without a pool of its own may reserve 10% of the account
// limit and provision 10 sandboxes; the refusals name the root command that
// raises each cap; root raises them; lowering is always allowed; a tenant
// with its own pool reserves from it. The unreserved floor's refusal names
// --unreserved-min.
func TestTenantCapsOnConcurrency(t *testing.T) {
	p := newTenantParts(t)
	ctx := context.Background()
	digest := p.upload(t, "", "code")
	for _, fn := range []string{"acme.evil", "acme.more", "beta.fn", "rootfn"} {
		if err := p.put("", fn, digest); err != nil {
			t.Fatal(err)
		}
	}
	set := func(fn string, reserved, provisioned int64) error {
		_, err := p.quotas.setConcurrency(ctx, p.fns, fn, reserved, provisioned)
		return err
	}
	wantAPIError(t, "acme provisioning 40", set("acme.evil", 0, 40), apierr.InvalidParameterValue,
		"over its cap of 10", "gust quota set --tenant acme --max-provisioned N")
	wantAPIError(t, "acme reserving 895", set("acme.evil", 895, 0), apierr.InvalidParameterValue,
		"over its cap of 100", "gust quota set --tenant acme --max-reserved N")
	if err := set("acme.evil", 60, 6); err != nil {
		t.Fatalf("acme within its caps: %v", err)
	}
	wantAPIError(t, "acme's second function over the sum", set("acme.more", 41, 0), apierr.InvalidParameterValue, "to 101, over its cap of 100")
	wantAPIError(t, "acme's provisioned sum", set("acme.more", 0, 5), apierr.InvalidParameterValue, "to 11, over its cap of 10")
	if err := set("rootfn", 300, 40); err != nil {
		t.Errorf("root's own function has no tenant caps: %v", err)
	}

	// Root raises acme's caps; then lowers them below what acme uses:
	// acme keeps its settings and may lower them, not raise them.
	if _, err := p.quotas.SetCaps(ctx, "acme", proto.Int64(200), proto.Int64(40)); err != nil {
		t.Fatal(err)
	}
	if err := set("acme.more", 140, 34); err != nil {
		t.Errorf("acme within its raised caps: %v", err)
	}
	q, err := p.quotas.SetCaps(ctx, "acme", proto.Int64(50), nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.GetMaxReserved() != 50 || q.GetMaxProvisioned() != 40 || q.GetTenantReserved() != 200 || q.GetTenantProvisioned() != 40 {
		t.Errorf("acme's quota after lowering: %v", q)
	}
	if err := set("acme.more", 141, 34); err == nil {
		t.Error("acme raised a reservation over its lowered cap")
	}
	if err := set("acme.more", 100, 34); err != nil {
		t.Errorf("acme lowering under its lowered cap: %v", err)
	}
	// A negative cap returns to the default.
	if q, err := p.quotas.SetCaps(ctx, "acme", nil, proto.Int64(-1)); err != nil || q.GetMaxProvisioned() != defaultMaxProvisioned {
		t.Errorf("provisioned cap back to the default: %v %v", q, err)
	}
	wantAPIError(t, "caps without a tenant", func() error { _, err := p.quotas.SetCaps(ctx, "", proto.Int64(1), nil); return err }(),
		apierr.InvalidParameterValue, "--tenant")

	// beta, with a pool of its own, reserves from it, all of it if it likes.
	if _, err := p.quotas.Set(ctx, "beta", 300); err != nil {
		t.Fatal(err)
	}
	if err := set("beta.fn", 300, 0); err != nil {
		t.Errorf("beta reserving its whole pool: %v", err)
	}
	if err := set("beta.fn", 301, 0); err == nil {
		t.Error("beta reserved more than its pool")
	}

	// The account's floor names the flag that moves it: the README's
	// example, an account limit of 100 then a reservation of 10, is refused
	// with the way out.
	if _, err := p.quotas.Set(ctx, "", 100); err == nil {
		t.Fatal("an account limit under what is reserved was accepted")
	} else {
		wantAPIError(t, "limit under the floor", err, apierr.InvalidParameterValue, "--unreserved-min")
	}
	fresh := newTenantParts(t)
	if err := fresh.put("", "hello", fresh.upload(t, "", "code")); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.quotas.Set(ctx, "", 100); err != nil {
		t.Fatal(err)
	}
	_, err = fresh.quotas.setConcurrency(ctx, fresh.fns, "hello", 10, 0)
	wantAPIError(t, "reserving 10 of 100", err, apierr.InvalidParameterValue, "at least 100 must stay unreserved", "--unreserved-min")
}

// openLeadingStores opens a single-node Raft store that leads, and a code
// store, each in a temporary directory.
func openLeadingStores(t *testing.T) (*raftstore.Store, *codestore.Store) {
	t.Helper()
	store, err := raftstore.Open(raftstore.Config{NodeID: "c1", DataDir: t.TempDir(), Bootstrap: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	code, err := codestore.Open(t.TempDir(), codezip.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return store, code
}
