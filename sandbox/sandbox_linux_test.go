package sandbox_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

// syncBuffer is an io.Writer safe to read while a sandbox writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newManager(t *testing.T) *sandbox.Manager {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	m, err := sandbox.NewManager(sandbox.Config{
		StateDir:     filepath.Join(dir, "state"),
		RootFS:       filepath.Join(dir, "rootfs"),
		CgroupParent: "/gust-test/" + filepath.Base(dir),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := m.LeftoverCgroups(); len(left) > 0 {
			t.Errorf("cgroups left behind: %v", left)
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func probeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testutil.BuildStatic(t, "testdata/probe", filepath.Join(dir, "bootstrap"))
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSandboxIsolation checks the function's world, both for a sandbox
// made for its function and for a stem cell assigned to it, with its init
// re-executing the test binary or running from gustd-init (as in gustd).
func TestSandboxIsolation(t *testing.T) {
	env := []string{"PROBE_ENV=yes", "AWS_LAMBDA_RUNTIME_API=" + sandbox.RuntimeAPIAddr}
	for _, kind := range []string{"create", "stem", "stem-small-init"} {
		t.Run(kind, func(t *testing.T) {
			m := newManager(t)
			code := probeDir(t)
			var stdout, stderr syncBuffer
			var s *sandbox.Sandbox
			var err error
			flushed := func() {}
			if kind != "create" {
				requireStems(t)
				if kind == "stem-small-init" {
					useSmallInit(t)
				}
				s, err = m.CreateStem(context.Background(), "iso-"+kind)
				if err == nil {
					checkInitExe(t, s, kind == "stem-small-init")
					checkCPUWeight(t, s, "2", "1") // made ahead: the least weight
					err = s.Assign(sandbox.Assignment{CodeDir: code, Env: env, MemoryMB: 128})
					checkCPUWeight(t, s, "74", "3") // 128 MB's: 1,024 per 1,769 MB
					done := copyOutput(s, &stdout)
					flushed = func() { <-done }
				}
			} else {
				s, err = m.Create(context.Background(), sandbox.Spec{
					ID: "iso", CodeDir: code, MemoryMB: 128, Env: env, Stdout: &stdout, Stderr: &stderr,
				})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			checkIsolation(t, s, &stdout, &stderr, flushed)
		})
	}
}

func checkIsolation(t *testing.T, s *sandbox.Sandbox, stdout, stderr *syncBuffer, flushed func()) {
	t.Helper()
	tmpWant := "0xef53 dtrwxrwxrwx []"
	if _, err := os.Stat("/dev/loop-control"); err != nil && os.Getenv("CI") != "true" {
		tmpWant = "0x1021994 dtrwxrwxrwx []"
	}
	got := make(chan string, 1)
	go func() {
		c, err := s.Listener().Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		got <- line
	}()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-got:
		if line != "hello\n" {
			t.Fatalf("runtime API listener got %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("sandbox never reached its listener; stderr: %s", stderr.String())
	}
	<-s.Exited()
	flushed()
	if e := s.Exit(); e.Code != 0 {
		t.Fatalf("exit %+v, stderr %s", e, stderr.String())
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("probe output %q: %v", stdout.String(), err)
	}
	checks := []struct {
		key  string
		want func(any) bool
	}{
		{"uid", func(v any) bool { return int(v.(float64)) == s.UID() && sandbox.IsSandboxUID(s.UID()) }},
		{"user", func(v any) bool { return v.(string) == "sbx_user1051" }},
		{"pid", func(v any) bool { return v.(float64) == 1 }},
		{"shadow_err", func(v any) bool { return strings.Contains(v.(string), "no such file") }},
		{"pid1", func(v any) bool { return strings.Contains(v.(string), "bootstrap") }},
		{"task_write_err", func(v any) bool { return strings.Contains(v.(string), "read-only") }},
		{"root_write_err", func(v any) bool { return v.(string) != "" }},
		// Disk-backed (ext4, not memory), writable by all, sticky, empty;
		// a tmpfs where the host has no loop devices.
		{"tmp", func(v any) bool { return v.(string) == tmpWant }},
		{"tmp_write_err", func(v any) bool { return v.(string) == "" }},
		{"env", func(v any) bool { return v.(string) == "yes" }},
		{"CapEff", func(v any) bool { return v.(string) == "0000000000000000" }},
		{"NoNewPrivs", func(v any) bool { return v.(string) == "1" }},
		{"Seccomp", func(v any) bool { return v.(string) == "2" }},
		{"ifaces", func(v any) bool { l := v.([]any); return len(l) == 1 && l[0] == "lo" }},
		{"extra_fds", func(v any) bool { return len(v.([]any)) == 0 }},
	}
	for _, c := range checks {
		if v, ok := r[c.key]; !ok || !c.want(v) {
			t.Errorf("%s = %v", c.key, r[c.key])
		}
	}
	// The seccomp filter and the masked /proc files (issue 14).
	filtered, _ := r["filtered"].(map[string]any)
	for key, want := range map[string]string{
		"socket_vsock": "EPERM", "socket_vsock_high_bits": "EPERM", "socket_netlink_audit": "EPERM",
		"socket_netlink_route":          "",
		"io_uring_setup":                "ENOSYS",
		"personality_read_implies_exec": "EPERM", "personality_uname26": "", "personality_linux": "",
		"pidfd_getfd":     "EPERM",
		"/proc/diskstats": "0 bytes ", "/proc/partitions": "0 bytes ",
	} {
		if got, ok := filtered[key]; !ok || got != want {
			t.Errorf("%s = %v, want %q", key, got, want)
		}
	}
}

func TestSandboxOOM(t *testing.T) {
	m := newManager(t)
	code := probeDir(t)
	var out syncBuffer
	s, err := m.Create(context.Background(), sandbox.Spec{
		ID: "oom", CodeDir: code, MemoryMB: 128, Args: []string{"/var/task/bootstrap", "alloc"},
		Stdout: &out, Stderr: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("allocating 1 GB in 128 MB did not end")
	}
	if e := s.Exit(); !e.OOM || e.Signal == "" {
		t.Fatalf("exit %+v, want OOM kill; output %s", e, out.String())
	}
}

func TestSandboxPauseResumeDestroy(t *testing.T) {
	m := newManager(t)
	code := probeDir(t)
	s, err := m.Create(context.Background(), sandbox.Spec{ID: "pause", CodeDir: code, MemoryMB: 128,
		Env: []string{"AWS_LAMBDA_RUNTIME_API=" + sandbox.RuntimeAPIAddr}})
	if err != nil {
		t.Fatal(err)
	}
	// The probe blocks dialing nothing: it connects and exits, so pause before start.
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
}

func TestReap(t *testing.T) {
	m := newManager(t)
	code := probeDir(t)
	s, err := m.Create(context.Background(), sandbox.Spec{ID: "left", CodeDir: code, MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	_ = s // abandoned, as after a crash
	if len(m.LeftoverCgroups()) == 0 {
		t.Fatal("expected the abandoned sandbox's cgroups")
	}
	n, err := m.Reap()
	if err != nil || n != 1 {
		t.Fatalf("reap = %d, %v", n, err)
	}
	if left := m.LeftoverCgroups(); len(left) != 0 {
		t.Fatalf("left after reap: %v", left)
	}
}

// TestStemCellAssignment: a stem cell takes the function's memory limit,
// refuses to start unassigned, and leaves no directory behind.
func TestStemCellAssignment(t *testing.T) {
	requireStems(t)
	m := newManager(t)
	code := probeDir(t)
	idle, err := m.CreateStem(context.Background(), "stem-idle")
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Start(); err == nil {
		t.Fatal("an unassigned stem cell started")
	}
	if err := idle.Destroy(); err != nil {
		t.Fatal(err)
	}

	s, err := m.CreateStem(context.Background(), "stem-oom")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	var out syncBuffer
	if err := s.Assign(sandbox.Assignment{CodeDir: code, Env: []string{"PROBE_MODE=alloc"}, MemoryMB: 256}); err != nil {
		t.Fatal(err)
	}
	copyOutput(s, &out)
	if err := s.Assign(sandbox.Assignment{CodeDir: code, MemoryMB: 128}); err == nil {
		t.Fatal("a stem cell was assigned twice")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("allocating 1 GB in 256 MB did not end")
	}
	if e := s.Exit(); !e.OOM {
		t.Fatalf("exit %+v, want OOM kill; output %s", e, out.String())
	}
	// The stem was made with 128 MB: a peak above that proves the
	// function's 256 MB limit replaced it.
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if peak := st.MemoryPeakBytes >> 20; peak <= 160 || peak > 260 {
		t.Fatalf("peak memory %d MB, want about 256", peak)
	}
}

func TestStemCellReap(t *testing.T) {
	requireStems(t)
	m := newManager(t)
	if _, err := m.CreateStem(context.Background(), "stem-left"); err != nil {
		t.Fatal(err)
	}
	n, err := m.Reap()
	if err != nil || n != 1 {
		t.Fatalf("reap = %d, %v", n, err)
	}
	if left := m.LeftoverCgroups(); len(left) != 0 {
		t.Fatalf("left after reap: %v", left)
	}
}

// requireStems skips (fails under CI=true) when the test binary is linked
// dynamically: `make test` links it statically, as gustd is.
func requireStems(t *testing.T) {
	t.Helper()
	if sandbox.StemsSupported() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("stem cells need a statically linked test binary: run through make test")
	}
	t.Skip("stem cells need a statically linked test binary: run through make test")
}

// copyOutput drains a stem cell's output pipe into buf; the channel
// closes at EOF (every process in the sandbox is gone).
func copyOutput(s *sandbox.Sandbox, buf *syncBuffer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.Output().Close()
		io.Copy(buf, s.Output())
	}()
	return done
}

// useSmallInit builds cmd/gustd-init as make build does and hands it to
// sandbox.UseInit until the test ends.
func useSmallInit(t *testing.T) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gustd-init")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.BuildGustdInit(root, out); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := sandbox.UseInit(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sandbox.ResetInit)
}

// checkInitExe checks what a waiting stem cell's init runs from: the sealed
// memfd of gustd-init, or (without it) libcontainer's sealed copy of this
// binary.
func checkInitExe(t *testing.T, s *sandbox.Sandbox, small bool) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", sandbox.InitPid(s)))
	if err != nil {
		s.Destroy()
		t.Fatal(err)
	}
	if got := strings.HasPrefix(exe, "/memfd:") && strings.Contains(exe, "gustd-init"); got != small {
		s.Destroy()
		t.Fatalf("stem cell's init runs %q; want gustd-init: %v", exe, small)
	}
}

// checkCPUWeight checks the sandbox's cpu.shares (cgroup v1) or cpu.weight
// (v2).
func checkCPUWeight(t *testing.T, s *sandbox.Sandbox, v1, v2 string) {
	t.Helper()
	got, err := sandbox.CPUWeight(s)
	if err != nil {
		s.Destroy()
		t.Fatal(err)
	}
	if got != v1 && got != v2 {
		s.Destroy()
		t.Fatalf("cpu weight %s, want %s (v1 shares) or %s (v2 weight)", got, v1, v2)
	}
}

// TestSandboxTmpDisk: a sandbox's /tmp is a loop device of its own, of
// the size asked for, attached while the sandbox lives (its image already
// unlinked) and detached once it is destroyed, leaving no file behind.
func TestSandboxTmpDisk(t *testing.T) {
	m := newManager(t)
	testutil.RequireLoopDevices(t)
	var out syncBuffer
	s, err := m.Create(context.Background(), sandbox.Spec{ID: "tmpdisk", CodeDir: probeDir(t), MemoryMB: 128, TmpMB: 96, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	loops := testutil.LoopDevices("/tmpdisk.img")
	if len(loops) != 1 {
		t.Fatalf("loop devices backed by the sandbox's image: %v, want one", loops)
	}
	if b, _ := os.ReadFile(filepath.Join("/sys/block", loops[0], "loop/backing_file")); !strings.HasSuffix(strings.TrimSpace(string(b)), "(deleted)") {
		t.Errorf("%s's image %q is still linked: a killed gustd would leave it", loops[0], b)
	}
	b, _ := os.ReadFile(filepath.Join("/sys/block", loops[0], "size")) // in 512-byte sectors
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(96<<11) {
		t.Errorf("%s is %s sectors, want %d (96 MB)", loops[0], got, 96<<11)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return len(testutil.LoopDevices("/tmpdisk.img")) == 0 },
		"loop device %v still attached after Destroy", testutil.LoopDevices("/tmpdisk.img"))
}
