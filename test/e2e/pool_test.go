// This file proves the warm pool's user-visible behaviour: an idle
// sandbox is destroyed after --keep-alive (scale to zero) and the next
// invoke is a cold start; when the worker is full, an idle sandbox is
// evicted to make room, and with no room at all an invoke fails with the
// no-capacity platform error.
package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/sandbox"
)

func TestKeepAlive(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	d := startDaemon(t, "--keep-alive", "1s")
	d.deploy(t, "keep-alive", bin.probeZip)
	first := d.mustInvokeJSON(t, "keep-alive", `{"action":"count"}`)
	procs := sandboxProcs(t, first.Sandbox)
	testutil.Eventually(t, 15*time.Second, func() bool { return len(sandboxCgroups(first.Sandbox)) == 0 },
		"idle sandbox %s still has cgroups long after a 1s keep-alive: %v", first.Sandbox, sandboxCgroups(first.Sandbox))
	for _, p := range procs {
		if alive(p) {
			t.Errorf("process %d of the expired sandbox still runs", p.pid)
		}
	}
	next := d.mustInvokeJSON(t, "keep-alive", `{"action":"count"}`)
	if !next.ColdStart || next.Sandbox == first.Sandbox {
		t.Errorf("after keep-alive: cold_start %v on %q, want a cold start on a new sandbox", next.ColdStart, next.Sandbox)
	}
}

func TestCapacity(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	d := startDaemon(t, "--max-sandboxes", "1")
	parent := "/gust/" + d.workerCgroupHex() + "/"
	for _, fn := range []string{"cap-a", "cap-b", "cap-c"} {
		d.deploy(t, fn, bin.probeZip)
	}
	a := d.mustInvokeJSON(t, "cap-a", `{"action":"count"}`)
	// The worker is full: b's cold start evicts a's idle sandbox.
	b := d.mustInvokeJSON(t, "cap-b", `{"action":"count"}`)
	if !b.ColdStart {
		t.Errorf("cap-b's first invoke was not a cold start")
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(sandboxCgroups(a.Sandbox)) == 0 },
		"cap-a's idle sandbox %s was not evicted for cap-b", a.Sandbox)

	// While c runs, the only slot is busy: a cannot start.
	type result struct {
		r   cliResult
		err error
	}
	busy := make(chan result, 1)
	go func() {
		r, err := runGust(d.grpc, "", "invoke", "cap-c", "--payload", `{"action":"sleep","n":2000}`)
		busy <- result{r, err}
	}()
	testutil.Eventually(t, 10*time.Second, func() bool {
		for _, p := range procsInCgroups(parent) {
			if sandbox.IsSandboxUID(p.uid) && !strings.Contains(p.cgroup, b.Sandbox) {
				return true
			}
		}
		return false
	}, "cap-c's sandbox never started")
	r := d.gust(t, "invoke", "cap-a", "--payload", `{"action":"count"}`)
	if r.code != 1 || !(strings.HasPrefix(r.stderr, "ServiceException: ") || strings.HasPrefix(r.stderr, "ResourceNotReadyException: ")) {
		t.Errorf("invoke with no capacity: want exit 1 and ServiceException or ResourceNotReadyException, got\n%s", r)
	}
	if res := <-busy; res.err != nil || res.r.code != 0 {
		t.Errorf("the invocation holding the slot: %v\n%s", res.err, res.r)
	}
	// The slot is free again.
	d.mustInvokeJSON(t, "cap-a", `{"action":"count"}`)
}
