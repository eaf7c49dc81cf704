package cluster_test

// Quotas, checked from the function's side: a function reports when it
// ran, and the test counts how many ran at once. Requests go to the three
// coordinators' Lambda REST endpoints (--http), as Lambda clients send them.

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
)

// probeCode builds the e2e probe function (it has the "span" action) as a zip.
func probeCode(t *testing.T) string {
	t.Helper()
	bin := testutil.BuildStatic(t, "../e2e/testdata/probe", filepath.Join(t.TempDir(), "bootstrap"))
	dir := filepath.Dir(bin)
	return dir
}

// burst fires n invocations at once, spread over the coordinators.
func burst(t *testing.T, c *cluster, fn string, n, ms int) []proccluster.HTTPResult {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	results := make([]proccluster.HTTPResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := proccluster.InvokeSpan(hc, c.Coordinators[i%len(c.Coordinators)].HTTP, fn, ms)
			if err != nil {
				t.Errorf("invoke %d: %v", i, err)
			}
			results[i] = r
		}()
	}
	close(start)
	wg.Wait()
	return results
}

func spansOf(rs []proccluster.HTTPResult) []proccluster.Span {
	var out []proccluster.Span
	for _, r := range rs {
		if r.Status == 200 && r.Span.End > 0 {
			out = append(out, r.Span)
		}
	}
	return out
}

func count429(t *testing.T, rs []proccluster.HTTPResult) int {
	n := 0
	for _, r := range rs {
		if r.Status == 429 {
			if r.ErrorType != "TooManyRequestsException" {
				t.Errorf("429 with X-Amzn-ErrorType %q", r.ErrorType)
			}
			n++
		}
	}
	return n
}

func TestQuotas(t *testing.T) {
	c := startCluster(t)
	c.WaitHealthy(t, 45*time.Second, 5, 3)
	all := proccluster.Addrs(c.Coordinators...)
	code := probeCode(t)
	for _, fn := range []string{"span", "other"} {
		if out, stderr, exit := bins.Gust(t, all, "fn", "deploy", fn, "--code", code, "--timeout", "10s"); exit != 0 {
			t.Fatalf("deploy %s: %s %s", fn, out, stderr)
		}
	}
	setQuota := func(n int) {
		t.Helper()
		if out, stderr, exit := bins.Gust(t, all, "quota", "set", "--concurrency", fmt.Sprint(n)); exit != 0 {
			t.Fatalf("quota set: %s %s", out, stderr)
		}
	}

	t.Run("account limit 4 over three coordinators", func(t *testing.T) {
		setQuota(4)
		// Leases shrink within a few renewals (100 ms each); wait until a
		// lone invocation is admitted again on every coordinator.
		hc := &http.Client{Timeout: 10 * time.Second}
		for _, co := range c.Coordinators {
			testutil.Eventually(t, 10*time.Second, func() bool {
				r, err := proccluster.InvokeSpan(hc, co.HTTP, "span", 1)
				return err == nil && r.Status == 200
			}, "coordinator %s never admitted after the limit changed", co.Name)
		}
		rs := burst(t, c, "span", 24, 1500)
		spans := spansOf(rs)
		peak, throttled := proccluster.MaxOverlap(spans), count429(t, rs)
		t.Logf("24 simultaneous: %d ran, peak %d at once, %d got 429", len(spans), peak, throttled)
		if peak > 4 {
			t.Errorf("%d ran at once with an account limit of 4", peak)
		}
		if peak < 3 {
			t.Errorf("only %d ran at once; the limit of 4 should let at least 3 run", peak)
		}
		if throttled < 12 {
			t.Errorf("%d got 429; want at least 12", throttled)
		}
		var q struct{ Throttled int64 }
		testutil.Eventually(t, 5*time.Second, func() bool {
			return bins.GustJSON(t, all, &q, "quota", "get") && q.Throttled >= int64(throttled)
		}, "quota get never showed the throttles")
	})

	t.Run("reserved concurrency 2", func(t *testing.T) {
		setQuota(1000)
		if out, stderr, exit := bins.Gust(t, all, "fn", "concurrency", "span", "--reserved", "2"); exit != 0 {
			t.Fatalf("fn concurrency: %s %s", out, stderr)
		}
		hc := &http.Client{Timeout: 10 * time.Second}
		for _, co := range c.Coordinators {
			testutil.Eventually(t, 10*time.Second, func() bool {
				r, err := proccluster.InvokeSpan(hc, co.HTTP, "span", 1)
				return err == nil && r.Status == 200
			}, "coordinator %s never admitted the reserved function", co.Name)
		}
		var reserved, other []proccluster.HTTPResult
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); reserved = burst(t, c, "span", 6, 1500) }()
		go func() { defer wg.Done(); other = burst(t, c, "other", 10, 1500) }()
		wg.Wait()
		rp, op := proccluster.MaxOverlap(spansOf(reserved)), proccluster.MaxOverlap(spansOf(other))
		t.Logf("reserved function peak %d (429: %d); other function peak %d", rp, count429(t, reserved), op)
		if rp > 2 {
			t.Errorf("%d of a function with reserved concurrency 2 ran at once", rp)
		}
		if op < 8 {
			t.Errorf("only %d of 10 of another function ran at once; the reservation held it back", op)
		}
		out, _, _ := bins.Gust(t, all, "-o", "json", "fn", "get", "span")
		if !strings.Contains(out, `"reserved": 2`) {
			t.Errorf("fn get does not show the reservation:\n%s", out)
		}
	})
}

// The limit holds while the leader and another coordinator are killed
// under saturating load and later restarted: counted from every span the
// function logged, including those whose callers lost their coordinator.
func TestQuotaHoldsWhileCoordinatorsDie(t *testing.T) {
	c := startCluster(t)
	peers := c.WaitHealthy(t, 45*time.Second, 5, 3)
	all := proccluster.Addrs(c.Coordinators...)
	if out, stderr, exit := bins.Gust(t, all, "fn", "deploy", "span", "--code", probeCode(t), "--timeout", "5s"); exit != 0 {
		t.Fatalf("deploy: %s %s", out, stderr)
	}
	if out, stderr, exit := bins.Gust(t, all, "quota", "set", "--concurrency", "4"); exit != 0 {
		t.Fatalf("quota set: %s %s", out, stderr)
	}
	var leader, other *node
	for _, p := range peers {
		if p.State == "leader" {
			leader = c.ByName(p.Name)
		}
	}
	for _, co := range c.Coordinators {
		if co != leader {
			other = co
			break
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok200, got429 := 0, 0
	hc := &http.Client{Timeout: 15 * time.Second}
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := proccluster.InvokeSpan(hc, c.Coordinators[i%3].HTTP, "span", 300)
				if err != nil {
					time.Sleep(20 * time.Millisecond) // a dead coordinator: try the next
					continue
				}
				mu.Lock()
				switch r.Status {
				case 200:
					ok200++
				case 429:
					got429++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second) // load runs; the faults come in the middle of it
	leader.Kill9()
	other.Kill9()
	time.Sleep(3 * time.Second)
	leader.Start(t)
	other.Start(t)
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	// Every admitted invocation ends within its 5 s timeout.
	spans := c.SettledSpans(t, "span")
	peak := proccluster.MaxOverlap(spans)
	t.Logf("%d spans logged (%d answered 200, %d got 429); peak %d at once", len(spans), ok200, got429, peak)
	if peak > 4 {
		t.Fatalf("%d ran at once with an account limit of 4 while coordinators died", peak)
	}
	if len(spans) < 20 || got429 == 0 {
		t.Fatalf("the cluster was not saturated: %d spans, %d throttled", len(spans), got429)
	}
}
