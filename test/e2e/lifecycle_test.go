// This file proves what happens to sandboxes when gustd stops: on SIGTERM
// it drains in-flight invocations, exits 0 and leaves no sandbox cgroup,
// process or mount behind; after SIGKILL the sandboxes live on until a
// gustd restarted on the same data dir reaps them, and the functions it
// acknowledged are still there (Raft state on disk) and answer.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/sandbox"
)

// sandboxProcs waits until the sandbox's cgroup holds a process running as
// the function's user, and returns its processes.
func sandboxProcs(t *testing.T, id string) []proc {
	t.Helper()
	var procs []proc
	testutil.Eventually(t, 5*time.Second, func() bool {
		procs = procsInCgroups(id)
		for _, p := range procs {
			if sandbox.IsSandboxUID(p.uid) {
				return true
			}
		}
		return false
	}, "no process of a sandbox uid in sandbox %s's cgroup", id)
	return procs
}

func TestShutdownSIGTERM(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	d := startDaemon(t)
	parent := "/gust/" + d.workerCgroupHex() + "/"
	d.deploy(t, "idle", bin.probeZip)
	d.deploy(t, "busy", bin.probeDir)

	// A warm sandbox that went idle and was frozen.
	idle := d.mustInvokeJSON(t, "idle", `{"action":"count"}`)
	testutil.Eventually(t, 10*time.Second, func() bool { return frozen(idle.Sandbox) },
		"idle sandbox %s was never frozen", idle.Sandbox)
	procs := sandboxProcs(t, idle.Sandbox)

	// An invocation in flight when SIGTERM comes must finish.
	type result struct {
		r   cliResult
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		r, err := runGust(d.grpc, "", "-o", "json", "invoke", "busy", "--payload", `{"action":"sleep","n":1500}`)
		inflight <- result{r, err}
	}()
	// In flight: the worker lists a busy sandbox of "busy". (Processes of
	// a sandbox uid alone do not say so: waiting stem cells have one too.)
	testutil.Eventually(t, 10*time.Second, func() bool {
		var list []struct{ Function, State string }
		r := d.gust(t, "-o", "json", "sandboxes")
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &list) == nil &&
			slices.ContainsFunc(list, func(sb struct{ Function, State string }) bool {
				return sb.Function == "busy:$LATEST" && sb.State == "busy"
			})
	}, "the invocation never reached a sandbox")
	var busyProcs []proc
	testutil.Eventually(t, 10*time.Second, func() bool {
		busyProcs = nil
		for _, p := range procsInCgroups(parent) {
			if sandbox.IsSandboxUID(p.uid) && !strings.Contains(p.cgroup, idle.Sandbox) {
				busyProcs = append(busyProcs, p)
			}
		}
		return len(busyProcs) > 0
	}, "the in-flight invocation's sandbox never started")
	procs = append(procs, busyProcs...)
	t.Logf("mounts naming the data dir while running: %d", len(mountsUnder(d.dataDir)))
	// gustd's main thread is still in the host's mount namespace: parked
	// in a sandbox's (sandbox's init locks it against that), it would pin
	// the sandbox's mounts, its /tmp disk among them, long after it ended.
	own, _ := os.Readlink("/proc/self/ns/mnt")
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", d.cmd.Process.Pid)); err != nil || got != own {
		t.Errorf("gustd's main thread is in mount namespace %s (%v), want the host's %s", got, err, own)
	}

	code, inTime := d.stop(syscall.SIGTERM, 20*time.Second)
	if !inTime {
		t.Fatalf("gustd did not exit within 20s of SIGTERM")
	}
	if code != 0 {
		t.Errorf("gustd exited %d after SIGTERM, want 0", code)
	}
	var res result
	select {
	case res = <-inflight:
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight invocation never returned")
	}
	if res.err != nil || res.r.code != 0 || !strings.Contains(res.r.stdout, `"slept_ms": 1500`) {
		t.Errorf("the invocation in flight at SIGTERM did not complete: %v\n%s", res.err, res.r)
	}
	busy := envelopeOf(res.r.stdout)

	ids := []string{idle.Sandbox}
	if busy.Sandbox != "" {
		ids = append(ids, busy.Sandbox)
	}
	if dirs := sandboxCgroups(ids...); len(dirs) > 0 {
		t.Errorf("sandbox cgroups remain after SIGTERM: %v", dirs)
	}
	if dirs := cgroupDirs(func(p string) bool { return strings.Contains(p+"/", parent+"sbx-") }); len(dirs) > 0 {
		t.Errorf("sandbox cgroups of this worker remain after SIGTERM: %v", dirs)
	}
	for _, p := range procs {
		if alive(p) {
			t.Errorf("sandbox process %d (%s, uid %d) still runs after SIGTERM", p.pid, p.cmdline, p.uid)
		}
	}
	if left := procsInCgroups(append(ids, parent)...); len(left) > 0 {
		for _, p := range left {
			t.Errorf("process %d (%s, uid %d) is still in a sandbox cgroup of this run:\n%s", p.pid, p.cmdline, p.uid, p.cgroup)
		}
	}
	if m := mountsUnder(d.dataDir); len(m) > 0 {
		t.Errorf("mounts under the data dir remain after SIGTERM:\n%s", strings.Join(m, "\n"))
	}

	// The worker's own parent cgroup (gust/<hex>) goes too: a clean exit
	// leaves nothing of this run in any hierarchy.
	t.Run("NoParentCgroup", func(t *testing.T) {
		hex := d.workerCgroupHex()
		if dirs := cgroupDirs(func(p string) bool { return strings.HasSuffix(p, "/gust/"+hex) }); len(dirs) > 0 {
			t.Errorf("the worker's parent cgroup remains after SIGTERM in %d hierarchies: %v", len(dirs), dirs)
		}
	})
}

// envelopeOf parses an envelope, or returns the zero one.
func envelopeOf(stdout string) envelope {
	var e envelope
	_ = json.Unmarshal([]byte(stdout), &e)
	return e
}

func TestCrashSIGKILLReap(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	d := startDaemon(t)
	d.deploy(t, "survivor", bin.probeZip)
	first := d.mustInvokeJSON(t, "survivor", `{"action":"count"}`)
	if second := d.mustInvokeJSON(t, "survivor", `{"action":"count"}`); second.Sandbox != first.Sandbox || second.ColdStart {
		t.Fatalf("no warm sandbox: second invoke on %q (cold %v), first on %q", second.Sandbox, second.ColdStart, first.Sandbox)
	}
	// Acknowledged just before the crash: must survive it.
	d.deploy(t, "acked", bin.probeDir, "--env", "ACK=yes", "--memory-mb", "192")

	// Kill gustd while the warm sandbox idles (frozen).
	testutil.Eventually(t, 10*time.Second, func() bool { return frozen(first.Sandbox) },
		"warm sandbox %s was never frozen", first.Sandbox)
	procs := sandboxProcs(t, first.Sandbox)
	t.Cleanup(func() {
		// If the reap failed, do not leave the sandbox to the next run.
		for _, p := range procs {
			if alive(p) {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
	})
	if _, inTime := d.stop(syscall.SIGKILL, 10*time.Second); !inTime {
		t.Fatal("gustd did not die of SIGKILL")
	}

	// The sandbox outlives gustd.
	for _, p := range procs {
		if !alive(p) {
			t.Errorf("sandbox process %d (%s) died with gustd; want it alive until a restart reaps it", p.pid, p.cmdline)
		}
	}
	if len(sandboxCgroups(first.Sandbox)) == 0 {
		t.Errorf("sandbox %s's cgroups vanished with gustd", first.Sandbox)
	}

	// A restart on the same data dir reaps it.
	d2 := startDaemonAt(t, d.dataDir, d.grpc, d.http)
	if !waitFor(15*time.Second, func() bool {
		for _, p := range procs {
			if alive(p) {
				return false
			}
		}
		return len(sandboxCgroups(first.Sandbox)) == 0
	}) {
		for _, p := range procs {
			if alive(p) {
				t.Errorf("after the restart, sandbox process %d (%s) of the killed run still runs", p.pid, p.cmdline)
			}
		}
		if dirs := sandboxCgroups(first.Sandbox); len(dirs) > 0 {
			t.Errorf("after the restart, the killed run's sandbox cgroups remain: %v", dirs)
		}
	}

	// Functions survive on disk and answer.
	var got functionView
	decode(t, []byte(d2.mustGust(t, "-o", "json", "fn", "get", "acked").stdout), &got)
	if got.Environment["ACK"] != "yes" || got.MemoryMB != 192 {
		t.Errorf("acked function after the crash: %+v", got)
	}
	again := d2.mustInvokeJSON(t, "survivor", `{"action":"count"}`)
	var c struct{ Count int }
	decode(t, again.Payload, &c)
	if !again.ColdStart || again.Sandbox == first.Sandbox || c.Count != 1 {
		t.Errorf("after the restart: cold_start %v sandbox %q count %d; want a fresh sandbox (cold, not %q, count 1)",
			again.ColdStart, again.Sandbox, c.Count, first.Sandbox)
	}
	var env map[string]string
	decode(t, d2.mustInvokeJSON(t, "acked", `{"action":"env","key":"ACK"}`).Payload, &env)
	if env["value"] != "yes" || env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "192" {
		t.Errorf("acked function after the crash sees %v", env)
	}
}

// TestCrashReapLostState kills gustd and then removes the sandbox's
// libcontainer state, as a crash between creating a sandbox's cgroups and
// saving its state would leave it (the state's place, <data-dir>/worker/
// sandboxes/<id>, is the one layout detail this test relies on). The
// restarted gustd must still kill the process and remove every cgroup of
// the sandbox, and start promptly.
func TestCrashReapLostState(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	d := startDaemon(t)
	d.deploy(t, "lost", bin.probeZip)
	first := d.mustInvokeJSON(t, "lost", `{"action":"count"}`)
	testutil.Eventually(t, 10*time.Second, func() bool { return frozen(first.Sandbox) },
		"warm sandbox %s was never frozen", first.Sandbox)
	procs := sandboxProcs(t, first.Sandbox)
	t.Cleanup(func() {
		for _, p := range procs {
			if alive(p) {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
	})
	if _, inTime := d.stop(syscall.SIGKILL, 10*time.Second); !inTime {
		t.Fatal("gustd did not die of SIGKILL")
	}
	state := filepath.Join(d.dataDir, "worker", "sandboxes", first.Sandbox)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("sandbox state not where this test expects it (update the test): %v", err)
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	d2 := launchDaemon(t, d.dataDir, d.grpc, d.http)
	d2.waitReady(t, 90*time.Second)
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the restarted gustd took %s to become ready, want under 10s", took.Round(time.Millisecond))
	}
	if !waitFor(15*time.Second, func() bool {
		for _, p := range procs {
			if alive(p) {
				return false
			}
		}
		return len(sandboxCgroups(first.Sandbox)) == 0
	}) {
		for _, p := range procs {
			if alive(p) {
				t.Errorf("after the restart, sandbox process %d (%s) of the killed run still runs", p.pid, p.cmdline)
			}
		}
		if dirs := sandboxCgroups(first.Sandbox); len(dirs) > 0 {
			t.Errorf("after the restart, %d cgroups of the killed run's sandbox remain:\n%s", len(dirs), strings.Join(dirs, "\n"))
		}
	}
	again := d2.mustInvokeJSON(t, "lost", `{"action":"count"}`)
	if !again.ColdStart || again.Sandbox == first.Sandbox {
		t.Errorf("after the restart: cold_start %v on %q, want a cold start on a new sandbox", again.ColdStart, again.Sandbox)
	}
}
