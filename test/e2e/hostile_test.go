// This file proves that hostile functions are contained (issue 7, item 5):
// a fork bomb, a memory balloon, an infinite loop, filling /tmp, mount,
// ptrace, kernel modules, raw sockets, and reaching the host's or another
// sandbox's services, files and processes. Each case checks what the user
// sees (the -o json envelope) and that the host is unharmed: it can still
// fork, gustd still serves a bystander function, and no process of the
// sandbox user lives outside a sandbox cgroup.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/sandbox"
)

// hostileMarkerEnv is put in gustd's environment; no sandbox may see it.
const hostileMarkerEnv = "HOSTILE_E2E_MARKER"

// TestHostileFunctions runs each hostile function against one gustd dev,
// one case at a time, so that the host checks after each see only its doing.
func TestHostileFunctions(t *testing.T) {
	testutil.RequireRoot(t)
	marker := fmt.Sprintf("gust-hostile-%08x", rand.Uint32())
	t.Setenv(hostileMarkerEnv, marker) // gustd inherits it
	d := startDaemon(t, "--stem-cells", "2")
	d.deploy(t, "hostile-bystander", bin.probeZip)
	d.mustInvokeJSON(t, "hostile-bystander", `{"action":"count"}`)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *daemon, string)
	}{
		{"ForkBomb", testForkBomb},
		{"ForkBombTimeout", testForkBombTimeout},
		{"ForkBombsTogether", testForkBombsTogether},
		{"MemoryBalloon", testMemoryBalloon},
		{"InfiniteLoop", testInfiniteLoop},
		{"FillTmp", testFillTmp},
		{"Mount", testMount},
		{"Ptrace", testPtrace},
		{"KernelModules", testKernelModules},
		{"RawSockets", testRawSockets},
		{"ReachHost", testReachHost},
		{"HostFiles", testHostFiles},
		{"OtherSandbox", testOtherSandbox},
		{"PerUserLimits", testPerUserLimits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, d, marker)
			hostUnharmed(t, d)
		})
	}
}

// hostUnharmed checks what every hostile case must leave intact: the host
// forks, gustd answers another function, and every process of the sandbox
// user is inside some worker's sandbox cgroup.
func hostUnharmed(t *testing.T, d *daemon) {
	t.Helper()
	if out, err := exec.Command("/bin/sh", "-c", "echo forked").CombinedOutput(); err != nil || string(out) != "forked\n" {
		t.Errorf("host: cannot fork a shell: %v %q", err, out)
	}
	if e, r := d.invokeJSON(t, "hostile-bystander", `{"action":"count"}`); r.code != 0 || e.FunctionError != "" {
		t.Errorf("host: gustd no longer serves another function:\n%s", r)
	}
	if stray := strayUserProcs(); len(stray) > 0 {
		t.Errorf("host: processes of sandbox uids outside any sandbox cgroup: %+v", stray)
	}
}

// strayUserProcs lists live processes of the sandbox user that are not in
// a gust sandbox cgroup: a sandbox escape, or a process it leaked.
func strayUserProcs() []proc {
	var out []proc
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok && sandbox.IsSandboxUID(p.uid) && p.state != "Z" && !strings.Contains(p.cgroup, "/gust/") {
			out = append(out, p)
		}
	}
	return out
}

// lambdaError is a function error payload.
type lambdaError struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

// wantFunctionError checks an invoke that failed: exit 2, function_error
// funcErr, the payload's errorType typ (unless "") and a message matching msg.
func wantFunctionError(t *testing.T, what string, e envelope, r cliResult, funcErr, typ string, msg *regexp.Regexp) lambdaError {
	t.Helper()
	var le lambdaError
	_ = json.Unmarshal(e.Payload, &le)
	if r.code != 2 || e.FunctionError != funcErr || (typ != "" && le.ErrorType != typ) || !msg.MatchString(le.ErrorMessage) {
		t.Errorf("%s: want exit 2, function_error %q, errorType %q, errorMessage matching %q; got function_error %q payload %s\n%s",
			what, funcErr, typ, msg, e.FunctionError, e.Payload, r)
	}
	return le
}

// wantErrnos checks that each named attempt in payload (a JSON object of
// attempt → errno name) failed with one of allowed.
func wantErrnos(t *testing.T, payload []byte, names []string, allowed ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	decode(t, payload, &got)
	for _, n := range names {
		v, ok := got[n]
		if !ok {
			t.Errorf("%s: not attempted (payload %s)", n, payload)
			continue
		}
		if !contains(allowed, v) {
			if v == "" {
				v = "it succeeded"
			}
			t.Errorf("%s: %s, want %s", n, v, strings.Join(allowed, " or "))
		}
	}
	return got
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// gone waits until the sandbox has no process and no cgroup left.
func gone(t *testing.T, id string, procs ...proc) {
	t.Helper()
	ok := waitFor(5*time.Second, func() bool {
		for _, p := range procs {
			if alive(p) {
				return false
			}
		}
		return len(procsInCgroups(id)) == 0 && len(sandboxCgroups(id)) == 0 && len(tmpLoops(id)) == 0
	})
	if !ok {
		t.Errorf("sandbox %s still has processes %+v, cgroups %v or /tmp loop devices %v",
			id, procsInCgroups(id), sandboxCgroups(id), tmpLoops(id))
	}
}

// pidsFile reads a file of the sandbox's (or any cgroup path's) pids cgroup.
func pidsFile(match func(string) bool, name string) (string, bool) {
	for _, dir := range cgroupDirs(match) {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			return strings.TrimSpace(string(b)), true
		}
	}
	return "", false
}

func sandboxPids(id, name string) (string, bool) {
	return pidsFile(func(p string) bool { return filepath.Base(p) == id }, name)
}

// cgroupProcs lists the processes in the sandbox's pids cgroup, from its
// cgroup.procs (faster than a walk of /proc with a thousand forking).
func cgroupProcs(id string) []proc {
	list, _ := sandboxPids(id, "cgroup.procs")
	var out []proc
	for _, f := range strings.Fields(list) {
		if pid, err := strconv.Atoi(f); err == nil {
			if p, ok := readProc(pid); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// testForkBomb: a fork bomb that watches itself. The pids limit stops it,
// the function gets EAGAIN from fork and reports it, cleans up, and its
// sandbox serves the next invoke.
func testForkBomb(t *testing.T, d *daemon, _ string) {
	fn := "hostile-forkbomb"
	d.deploy(t, fn, bin.probeZip, "--memory-mb", "512", "--timeout", "10s")
	e, r := d.invokeJSON(t, fn, `{"action":"forkbomb"}`, "--log")
	t.Logf("fork bomb: %s(%s wall)", e.LogTail, r.wall.Round(time.Millisecond))
	le := wantFunctionError(t, "fork bomb", e, r, "Handled", "",
		regexp.MustCompile(`^fork bomb stopped at \d+ processes, 0 left after cleanup: fork/exec /var/task/bootstrap: resource temporarily unavailable$`))
	var peak int
	fmt.Sscanf(le.ErrorMessage, "fork bomb stopped at %d", &peak)
	if peak < 100 || peak > 1024 {
		t.Errorf("fork bomb peaked at %d processes, want the pids limit (up to 1024)", peak)
	}
	if r.wall > 8*time.Second {
		t.Errorf("fork bomb took %s to stop", r.wall)
	}
	// From the host: the limit is what refused the forks.
	if lim, ok := sandboxPids(e.Sandbox, "pids.max"); !ok || lim != "1024" {
		t.Errorf("sandbox %s: pids.max %q (found %v), want 1024", e.Sandbox, lim, ok)
	}
	if ev, ok := sandboxPids(e.Sandbox, "pids.events"); !ok || !regexp.MustCompile(`max [1-9]`).MatchString(ev) {
		t.Errorf("sandbox %s: pids.events %q, want forks refused at the limit", e.Sandbox, ev)
	}
	// Its sandbox recovered: the same process answers.
	after := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
	if after.ColdStart || after.Sandbox != e.Sandbox {
		t.Errorf("after the contained fork bomb: sandbox %s cold %v, want the same warm %s", after.Sandbox, after.ColdStart, e.Sandbox)
	}
}

// testForkBombTimeout: a fork bomb that never stops. While it holds the
// sandbox at its pids limit the host forks and gustd serves others; the
// timeout ends it with Sandbox.Timedout and every bomb process dies.
func testForkBombTimeout(t *testing.T, d *daemon, _ string) {
	fn := "hostile-forkbomb-hold"
	d.deploy(t, fn, bin.probeZip, "--memory-mb", "512", "--timeout", "2s")
	warm := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
	type result struct {
		r   cliResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := runGust(d.grpc, "", "-o", "json", "invoke", fn, "--payload", `{"action":"forkbomb-hold"}`)
		done <- result{r, err}
	}()
	full := waitFor(3*time.Second, func() bool {
		cur, _ := sandboxPids(warm.Sandbox, "pids.current")
		n, _ := strconv.Atoi(cur)
		return n >= 1000
	})
	var bomb []proc
	if !full {
		t.Errorf("the bomb never filled sandbox %s's pids limit", warm.Sandbox)
	} else {
		bomb = cgroupProcs(warm.Sandbox)
		for _, p := range bomb {
			if p.uid != bomb[0].uid || !sandbox.IsSandboxUID(p.uid) {
				t.Errorf("bomb process %d runs as uid %d, want its sandbox's %d", p.pid, p.uid, bomb[0].uid)
				break
			}
		}
		// During the bomb, not only after it.
		hostUnharmed(t, d)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("invoke: %v\n%s", res.err, res.r)
	}
	var e envelope
	if err := json.Unmarshal([]byte(res.r.stdout), &e); err != nil {
		t.Fatalf("invoke -o json: %v\n%s", err, res.r)
	}
	wantFunctionError(t, "fork bomb", e, res.r, "Unhandled", "Sandbox.Timedout", regexp.MustCompile(`^Task timed out after 2\.00 seconds$`))
	if e.Sandbox != warm.Sandbox || res.r.wall > 4*time.Second {
		t.Errorf("fork bomb: ran on %s in %s, want the warm %s, about 2s", e.Sandbox, res.r.wall, warm.Sandbox)
	}
	gone(t, warm.Sandbox, bomb...)
	t.Logf("%d bomb processes at the limit, all gone after the timeout", len(bomb))
}

// testForkBombsTogether: each sandbox's pids limit is 1,024, and a worker
// runs many sandboxes; the worker's parent cgroup must bound them together
// below the host's pid_max, or a few concurrent fork bombs exhaust the
// host's pids. Checked from the host only (running enough bombs would
// harm a shared machine).
func testForkBombsTogether(t *testing.T, d *daemon, _ string) {
	parent := "/gust/" + d.workerCgroupHex()
	lim, ok := pidsFile(func(p string) bool { return strings.HasSuffix(p, parent) }, "pids.max")
	if !ok {
		t.Fatalf("no pids cgroup for the worker's parent %s", parent)
	}
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n, err := strconv.Atoi(lim)
	if err != nil || n >= pidMax {
		t.Errorf("worker cgroup %s: pids.max %q; want a bound below the host's pid_max %d, so the sandboxes' fork bombs together leave the host room to fork", parent, lim, pidMax)
	}
}

// testMemoryBalloon: allocating without end meets the OOM killer inside
// the limit: Runtime.OutOfMemory, and the next invoke gets a fresh sandbox.
func testMemoryBalloon(t *testing.T, d *daemon, _ string) {
	fn := "hostile-balloon"
	d.deploy(t, fn, bin.probeZip, "--memory-mb", "128", "--timeout", "10s")
	warm := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
	procs := sandboxProcs(t, warm.Sandbox)
	e, r := d.invokeJSON(t, fn, `{"action":"alloc","n":100000}`)
	wantFunctionError(t, "balloon", e, r, "Unhandled", "Runtime.OutOfMemory", regexp.MustCompile(`^Runtime exited with error: signal: killed$`))
	// The peak is rounded up to whole MB and may pass the limit by a page.
	if e.Sandbox != warm.Sandbox || e.MaxMemoryUsedMb > 129 || r.wall > 8*time.Second {
		t.Errorf("balloon: sandbox %s (want %s), max_memory_used_mb %v (want about 128), after %s", e.Sandbox, warm.Sandbox, e.MaxMemoryUsedMb, r.wall)
	}
	gone(t, warm.Sandbox, procs...)
	next := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
	var c struct{ Count int }
	decode(t, next.Payload, &c)
	if !next.ColdStart || next.Sandbox == warm.Sandbox || c.Count != 1 {
		t.Errorf("after the balloon: sandbox %s cold %v count %d, want a fresh sandbox", next.Sandbox, next.ColdStart, c.Count)
	}
}

// testInfiniteLoop: a loop on every CPU ends at the timeout with
// Sandbox.Timedout, and its processes die (the CPU is free again).
func testInfiniteLoop(t *testing.T, d *daemon, _ string) {
	fn := "hostile-spin"
	d.deploy(t, fn, bin.probeZip, "--timeout", "1s")
	warm := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
	procs := sandboxProcs(t, warm.Sandbox)
	e, r := d.invokeJSON(t, fn, `{"action":"spin"}`)
	wantFunctionError(t, "spin", e, r, "Unhandled", "Sandbox.Timedout", regexp.MustCompile(`^Task timed out after 1\.00 seconds$`))
	if e.DurationMs < 1000 || e.DurationMs > 1200 || r.wall < time.Second || r.wall > 2500*time.Millisecond {
		t.Errorf("spin with a 1s timeout: duration_ms %v, wall %s; want 1000 ms, within 1.5s of wall clock margin", e.DurationMs, r.wall)
	}
	gone(t, warm.Sandbox, procs...)
}

// testFillTmp: a function of the default 128 MB writes its 512 MB /tmp
// full. /tmp is a disk of the sandbox's own, as on Lambda, not memory: the
// write ends with ENOSPC at /tmp's size rather than an OOM kill, the
// sandbox serves on, and once it is gone nothing of its /tmp (its loop
// device and image) is left on the host.
func testFillTmp(t *testing.T, d *daemon, _ string) {
	testutil.RequireLoopDevices(t)
	fn := "hostile-filltmp"
	d.deploy(t, fn, bin.probeZip, "--memory-mb", "128", "--timeout", "20s")
	e := d.mustInvokeJSON(t, fn, `{"action":"filltmp"}`)
	var got struct {
		Err       string `json:"err"`
		WrittenMB int64  `json:"written_mb"`
		SizeMB    int64  `json:"size_mb"`
		FsType    string `json:"fs_type"`
	}
	decode(t, e.Payload, &got)
	t.Logf("filltmp: %s", e.Payload)
	if got.Err != "ENOSPC" || got.FsType != "0xef53" || got.SizeMB < 480 || got.SizeMB > 512 || got.WrittenMB < 450 || got.WrittenMB > 512 {
		t.Errorf("filltmp at 128 MB: %s; want ENOSPC after about 500 MB on a 512 MB ext4 (0xef53)", e.Payload)
	}
	if e.MaxMemoryUsedMb > 128 {
		t.Errorf("filltmp: max memory used %v MB over the 128 MB limit", e.MaxMemoryUsedMb)
	}
	if loops := tmpLoops(e.Sandbox); len(loops) != 1 {
		t.Errorf("sandbox %s's /tmp: loop devices %v, want one", e.Sandbox, loops)
	}
	after := d.mustInvokeJSON(t, fn, `{"action":"count"}`)
	if after.Sandbox != e.Sandbox {
		t.Errorf("after filling /tmp: sandbox %s, want the same %s still serving", after.Sandbox, e.Sandbox)
	}
	// The sandbox ends (its process exits); gone checks its /tmp went too.
	procs := sandboxProcs(t, after.Sandbox)
	d.invokeJSON(t, fn, `{"action":"exit","n":3}`)
	gone(t, after.Sandbox, procs...)
}

// tmpLoops lists the loop devices still backed by sandbox id's /tmp image.
func tmpLoops(id string) []string { return testutil.LoopDevices("/" + id + ".img") }

// testPerUserLimits: the kernel's per-user limits are each sandbox's own,
// since each runs as a uid of its own. One function takes every inotify
// instance its user may have; another function, in another sandbox, still
// gets one.
func testPerUserLimits(t *testing.T, d *daemon, _ string) {
	b, _ := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	limit, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if limit <= 0 || limit >= 1000 {
		t.Fatalf("fs.inotify.max_user_instances is %d; the test needs it under the sandbox's 1,024 open files", limit)
	}
	hog, other := "hostile-inotify-hog", "hostile-inotify-other"
	d.deploy(t, hog, bin.probeZip)
	d.deploy(t, other, bin.probeZip)
	var res struct {
		Held int
		Err  string
	}
	e := d.mustInvokeJSON(t, hog, `{"action":"inotify-hold"}`)
	decode(t, e.Payload, &res)
	if res.Err != "EMFILE" || res.Held != limit {
		t.Errorf("inotify-hold: %s; want all %d of its user's instances, then EMFILE", e.Payload, limit)
	}
	// The hog, holding them still, is refused one more...
	if again := d.mustInvokeJSON(t, hog, `{"action":"inotify-one"}`); again.Sandbox != e.Sandbox || !strings.Contains(string(again.Payload), "EMFILE") {
		t.Errorf("the hog's next inotify_init (sandbox %s, was %s): %s; want EMFILE", again.Sandbox, e.Sandbox, again.Payload)
	}
	// ...while another function, in a sandbox of its own, gets one.
	o := d.mustInvokeJSON(t, other, `{"action":"inotify-one"}`)
	res.Err = "unset"
	decode(t, o.Payload, &res)
	if o.Sandbox == e.Sandbox || res.Err != "" {
		t.Errorf("another function's inotify_init while the hog holds its user's all (sandbox %s): %s; want success", o.Sandbox, o.Payload)
	}
	d.mustInvokeJSON(t, hog, `{"action":"inotify-release"}`)
}

// testMount: every way to mount, unmount or get a mount namespace of its
// own fails with EPERM, and no mount appears on the host.
func testMount(t *testing.T, d *daemon, marker string) {
	fn := "hostile-mount"
	d.deploy(t, fn, bin.probeZip)
	before := len(mountsUnder(d.dataDir))
	e := d.mustInvokeJSON(t, fn, `{"action":"mount","marker":"`+marker+`"}`)
	wantErrnos(t, e.Payload, []string{
		"mount_tmpfs", "mount_bind", "mount_proc", "remount_root", "umount_proc", "umount_task",
		"unshare_user", "clone_newuser", "chroot", "pivot_root", "fsopen", "open_tree",
	}, "EPERM")
	for _, f := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(marker)) {
			t.Errorf("host %s shows the function's mount %s", f, marker)
		}
	}
	if after := len(mountsUnder(d.dataDir)); after != before {
		t.Errorf("host mounts under the data dir: %d before, %d after", before, after)
	}
}

// testPtrace: tracing itself, its own child or init fails with EPERM.
func testPtrace(t *testing.T, d *daemon, _ string) {
	fn := "hostile-ptrace"
	d.deploy(t, fn, bin.probeZip)
	e := d.mustInvokeJSON(t, fn, `{"action":"ptrace"}`)
	wantErrnos(t, e.Payload, []string{"traceme", "attach_child", "seize_child", "attach_init", "process_vm_readv"}, "EPERM")
}

// testKernelModules: loading and unloading modules fails with the
// filter's EPERM (a kernel built without modules says ENOSYS to root too,
// so only EPERM shows the sandbox's doing).
func testKernelModules(t *testing.T, d *daemon, _ string) {
	fn := "hostile-modules"
	d.deploy(t, fn, bin.probeZip)
	before, _ := os.ReadFile("/proc/modules")
	e := d.mustInvokeJSON(t, fn, `{"action":"modules"}`)
	wantErrnos(t, e.Payload, []string{"init_module", "finit_module", "delete_module"}, "EPERM")
	if after, _ := os.ReadFile("/proc/modules"); !bytes.Equal(before, after) {
		t.Errorf("the host's module list changed:\nbefore %s\nafter %s", before, after)
	}
}

// testRawSockets: raw IP and packet sockets are refused; so is an ICMP
// "ping" socket, in a network namespace with the default ping_group_range.
func testRawSockets(t *testing.T, d *daemon, _ string) {
	fn := "hostile-rawsock"
	d.deploy(t, fn, bin.probeZip)
	e := d.mustInvokeJSON(t, fn, `{"action":"rawsock"}`)
	got := wantErrnos(t, e.Payload, []string{"inet_raw_icmp", "inet_raw_raw", "inet6_raw_icmp", "packet_raw", "packet_dgram"}, "EPERM")
	if got["inet_ping_dgram"] == "" {
		t.Errorf("an ICMP ping socket opened (payload %s)", e.Payload)
	}
}

// testReachHost: listeners the test opens on the host — loopback, every
// other address of this machine, an abstract unix socket — and gustd's own
// ports are out of the function's reach; none of them sees a connection.
func testReachHost(t *testing.T, d *daemon, marker string) {
	fn := "hostile-connect"
	d.deploy(t, fn, bin.probeZip)
	var accepted atomic.Int32
	listen := func(network, addr string) (string, bool) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("cannot listen on %s %s here: %v", network, addr, err)
			return "", false
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		return ln.Addr().String(), true
	}
	unreachable := map[string][]string{} // dial → the errors that show it failed for the right reason
	refused := []string{"connection refused"}
	if a, ok := listen("tcp", freeAddr(t)); ok {
		unreachable["tcp:"+a] = refused // the sandbox's own loopback has no such listener
	}
	if a, ok := listen("tcp", "[::1]:0"); ok {
		unreachable["tcp:"+a] = append(refused, "network is unreachable", "cannot assign requested address")
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if a, ok := listen("tcp", net.JoinHostPort(ipn.IP.String(), "0")); ok {
			unreachable["tcp:"+a] = []string{"network is unreachable"}
		}
	}
	abstract := "@" + marker
	if _, ok := listen("unix", abstract); ok {
		unreachable["unix:"+abstract] = refused
	}
	unreachable["tcp:"+d.grpc] = refused
	unreachable["tcp:"+d.http] = refused
	udp, err := net.ListenPacket("udp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	dials := []string{"udp:" + udp.LocalAddr().String()}
	for a := range unreachable {
		dials = append(dials, a)
	}
	event, _ := json.Marshal(map[string]any{"action": "connect", "addrs": dials})
	e := d.mustInvokeJSON(t, fn, string(event))
	got := map[string]string{}
	decode(t, e.Payload, &got)
	t.Logf("from the sandbox: %s", e.Payload)
	for a, want := range unreachable {
		if !contains(want, got[a]) {
			t.Errorf("dial %s from the sandbox: %q, want %s", a, got[a], strings.Join(want, " or "))
		}
	}
	if n := accepted.Load(); n > 0 {
		t.Errorf("host listeners accepted %d connections from the sandbox", n)
	}
	udp.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, from, err := udp.ReadFrom(make([]byte, 64)); err == nil {
		t.Errorf("the host's UDP socket received %d bytes from %s", n, from)
	}
}

// testHostFiles: the function sees the runtime's files, not the host's:
// no /etc/shadow, its own /etc/passwd, no data dir, binaries, devices or
// cgroups of the host, control files it cannot open for writing, only its
// own processes, and none of gustd's environment.
func testHostFiles(t *testing.T, d *daemon, marker string) {
	fn := "hostile-files"
	d.deploy(t, fn, bin.probeZip)
	gustdPid := d.cmd.Process.Pid
	secret := []string{
		"/etc/shadow", d.dataDir, filepath.Join(d.dataDir, "worker", "code"), bin.gustd, bin.dir,
		fmt.Sprintf("/proc/%d/environ", gustdPid), "/sys/fs/cgroup", "/root",
		"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem", "/dev/kmsg", "/dev/port", "/proc/kcore",
	}
	event, _ := json.Marshal(map[string]any{"action": "files", "marker": marker, "paths": append(secret, "/etc/passwd")})
	e := d.mustInvokeJSON(t, fn, string(event))
	var got struct {
		Read      map[string]string `json:"read"`
		OpenWrite map[string]string `json:"open_write"`
		Procs     map[string]string `json:"procs"`
		MarkerIn  []string          `json:"marker_in"`
		Init      []string          `json:"init_environ"`
	}
	decode(t, e.Payload, &got)
	for _, p := range secret {
		if v := got.Read[p]; v != "" && !strings.HasPrefix(v, "error: ") {
			t.Errorf("the function read host path %s: %q", p, v)
		}
	}
	hostPasswd, _ := readFileHead("/etc/passwd", 512)
	if pw := got.Read["/etc/passwd"]; !strings.Contains(pw, "sbx_user1051") || pw == hostPasswd {
		t.Errorf("/etc/passwd in the sandbox is not the runtime's own: %q", pw)
	}
	for p, errno := range got.OpenWrite {
		if errno == "" {
			t.Errorf("the function opened %s for writing", p)
		}
	}
	for pid, cmd := range got.Procs {
		if !strings.HasPrefix(cmd, "/var/task/bootstrap") {
			t.Errorf("the function sees process %s (%q), not its own", pid, cmd)
		}
	}
	if _, ok := got.Procs["1"]; !ok || len(got.Procs) > 2 {
		t.Errorf("the function's /proc lists %v, want its own init (and no more than a child)", got.Procs)
	}
	if len(got.MarkerIn) > 0 {
		t.Errorf("gustd's environment (%s) is visible in %v", hostileMarkerEnv, got.MarkerIn)
	}
	if !contains(got.Init, "AWS_LAMBDA_FUNCTION_NAME="+fn) {
		t.Errorf("/proc/1/environ is not the function's own: %v", got.Init)
	}
}

func readFileHead(path string, n int) (string, error) {
	b, err := os.ReadFile(path)
	if len(b) > n {
		b = b[:n]
	}
	return string(b), err
}

// testOtherSandbox: one function leaves a file in /tmp, a process and a
// loopback listener; another, in its own sandbox, finds none of them,
// cannot signal its processes or gustd, and its kill(-1) reaches only
// itself. The first function's traces are still there afterwards.
func testOtherSandbox(t *testing.T, d *daemon, marker string) {
	d.deploy(t, "hostile-plant", bin.probeZip)
	d.deploy(t, "hostile-look", bin.probeZip)
	port, _ := strconv.Atoi(strings.TrimPrefix(freeAddr(t), "127.0.0.1:"))
	plant := d.mustInvokeJSON(t, "hostile-plant", fmt.Sprintf(`{"action":"plant","marker":%q,"n":%d}`, marker, port))
	var planted []proc
	testutil.Eventually(t, 5*time.Second, func() bool {
		planted = procsInCgroups(plant.Sandbox)
		for _, p := range planted {
			if strings.Contains(p.cmdline, marker) {
				return true
			}
		}
		return false
	}, "the planted process does not show in sandbox %s", plant.Sandbox)
	pids := []int{d.cmd.Process.Pid}
	for _, p := range planted {
		pids = append(pids, p.pid)
	}
	event, _ := json.Marshal(map[string]any{"action": "look", "marker": marker, "n": port, "pids": pids})
	look := d.mustInvokeJSON(t, "hostile-look", string(event))
	var got struct {
		TmpMarker string            `json:"tmp_marker"`
		Dial      string            `json:"dial"`
		Procs     map[string]string `json:"procs"`
		MarkerIn  []string          `json:"marker_in"`
		Signal0   map[string]string `json:"signal0"`
		KillAll   string            `json:"kill_all"`
	}
	decode(t, look.Payload, &got)
	if look.Sandbox == plant.Sandbox {
		t.Fatalf("both functions ran in sandbox %s", look.Sandbox)
	}
	if got.TmpMarker != "ENOENT" {
		t.Errorf("the other function's /tmp/%s: %q, want ENOENT", marker, got.TmpMarker)
	}
	if got.Dial != "connection refused" {
		t.Errorf("dial the other sandbox's loopback listener: %q, want connection refused", got.Dial)
	}
	if len(got.MarkerIn) > 0 || len(got.Procs) != 1 || got.Procs["1"] == "" {
		t.Errorf("the looking function sees processes %v (marker in %v), want only its own init", got.Procs, got.MarkerIn)
	}
	for pid, errno := range got.Signal0 {
		if errno != "ESRCH" {
			t.Errorf("signal 0 to host pid %s from the sandbox: %q, want ESRCH", pid, errno)
		}
	}
	if got.KillAll != "ESRCH" {
		t.Errorf("kill(-1, SIGKILL) from the sandbox's init: %q, want ESRCH (nothing else to kill)", got.KillAll)
	}
	for _, p := range planted {
		if !alive(p) {
			t.Errorf("process %d (%s) of the other sandbox died after kill(-1) in this one", p.pid, p.cmdline)
		}
	}
	// The traces were there to find: the planting function still sees them.
	check, _ := json.Marshal(map[string]any{"action": "files", "paths": []string{"/tmp/" + marker}})
	again := d.mustInvokeJSON(t, "hostile-plant", string(check))
	var own struct{ Read map[string]string }
	decode(t, again.Payload, &own)
	if again.Sandbox != plant.Sandbox || own.Read["/tmp/"+marker] != marker {
		t.Errorf("the planting function (sandbox %s, was %s) lost its own /tmp file: %s", again.Sandbox, plant.Sandbox, again.Payload)
	}
}
