// Helpers of the end-to-end suite: building the binaries once, running
// `gustd dev` and the `gust` CLI as a user would, and inspecting the host
// (cgroups, processes, mounts) for what a gustd run leaves behind.
package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// bin holds what TestMain built, shared by every test.
var bin struct {
	dir      string // temp dir, removed after the run
	gustd    string
	gust     string
	probe    string // the static probe bootstrap
	probeZip string // a .zip holding it as bootstrap, mode 0755
	probeDir string // a folder holding it as bootstrap, mode 0755
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gust-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		return 1
	}
	return m.Run()
}

// buildAll builds gustd (cgo, seccomp), gust and the probe in parallel.
func buildAll(dir string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	bin.dir = dir
	bin.gustd = filepath.Join(dir, "gustd")
	bin.gust = filepath.Join(dir, "gust")
	bin.probe = filepath.Join(dir, "probe-bootstrap")
	builds := []struct {
		dir  string
		env  []string
		args []string
	}{
		{root, nil, []string{"build", "-o", bin.gust, "./cmd/gust"}},
		// As testutil.BuildStatic builds functions: static, lambda.norpc.
		{filepath.Join(root, "test/e2e/testdata/probe"), []string{"CGO_ENABLED=0", "GOOS=linux"},
			[]string{"build", "-tags", "lambda.norpc", "-trimpath", "-o", bin.probe, "."}},
	}
	errs := make([]error, len(builds)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[len(builds)] = testutil.BuildGustd(root, bin.gustd) }()
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", b.args...)
			cmd.Dir = b.dir
			cmd.Env = append(os.Environ(), b.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %v\n%s", strings.Join(b.args, " "), err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	code, err := os.ReadFile(bin.probe)
	if err != nil {
		return err
	}
	bin.probeDir = filepath.Join(dir, "probe-folder")
	if err := os.MkdirAll(bin.probeDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bin.probeDir, "bootstrap"), code, 0o755); err != nil {
		return err
	}
	bin.probeZip = filepath.Join(dir, "probe.zip")
	return writeZip(bin.probeZip, []zipEntry{{name: "bootstrap", mode: 0o755, data: code}})
}

// zipEntry is one file of a zip the tests write by hand.
type zipEntry struct {
	name string
	mode fs.FileMode
	data []byte
	// raw, when set, is written as the entry's already-deflated body with
	// the header's sizes as given (for lying headers).
	raw                  []byte
	crc32                uint32
	declaredUncompressed uint64
}

func writeZip(path string, entries []zipEntry) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		if e.raw != nil {
			h.CompressedSize64 = uint64(len(e.raw))
			h.UncompressedSize64 = e.declaredUncompressed
			h.CRC32 = e.crc32
			w, err := zw.CreateRaw(h)
			if err != nil {
				return err
			}
			if _, err := w.Write(e.raw); err != nil {
				return err
			}
			continue
		}
		if e.mode&fs.ModeSymlink != 0 {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(e.data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string { return testutil.FreeAddr(t) }

// lockedBuffer collects a process's output from its copying goroutine.
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

// daemon is one running `gustd dev`.
type daemon struct {
	t        *testing.T
	dataDir  string
	grpc     string
	http     string
	cmd      *exec.Cmd
	stderr   *lockedBuffer
	exited   chan struct{} // closed once the process was waited for
	waitErr  error
	stopOnce sync.Once
}

// startDaemon starts `gustd dev` on free loopback ports with a fresh data dir.
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return startDaemonAt(t, t.TempDir(), freeAddr(t), freeAddr(t), extra...)
}

// startDaemonAt starts `gustd dev` with the given data dir and addresses
// and waits until /readyz answers 200.
func startDaemonAt(t *testing.T, dataDir, grpcAddr, httpAddr string, extra ...string) *daemon {
	t.Helper()
	d := launchDaemon(t, dataDir, grpcAddr, httpAddr, extra...)
	d.waitReady(t, 20*time.Second)
	return d
}

// launchDaemon starts `gustd dev` without waiting for it. t.Cleanup stops
// it with SIGTERM unless the test already stopped it, shows its log if the
// test failed, and then removes what the run left in /sys/fs/cgroup (after
// the test has judged it), so one failing run does not litter the host.
func launchDaemon(t *testing.T, dataDir, grpcAddr, httpAddr string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dataDir: dataDir, grpc: grpcAddr, http: httpAddr, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	// A few stem cells, not the default stock for the host's memory: every
	// test starts a daemon, and filling 128 would load both CPUs for
	// seconds at each start. A test's own --stem-cells comes later and wins.
	args := append([]string{"dev", "--data-dir", dataDir, "--grpc", grpcAddr, "--http", httpAddr, "--stem-cells", "8"}, extra...)
	d.cmd = exec.Command(bin.gustd, args...)
	d.cmd.Env = cleanEnv()
	d.cmd.Stdout = d.stderr
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start gustd: %v", err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	hex := d.workerCgroupHex()
	t.Cleanup(func() { removeInstanceCgroups(hex) })
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM, 30*time.Second)
		if t.Failed() {
			t.Logf("gustd dev (data dir %s) log:\n%s", dataDir, d.stderr.String())
		}
	})
	return d
}

// removeInstanceCgroups kills and removes, deepest first, every cgroup of
// one worker instance (gust/<hex> and below) in every hierarchy.
func removeInstanceCgroups(hex string) {
	mark := "/gust/" + hex
	dirs := cgroupDirs(func(p string) bool { return strings.HasSuffix(p, mark) || strings.Contains(p, mark+"/") })
	for _, dir := range dirs {
		_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
		_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		b, _ := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		waitFor(2*time.Second, func() bool {
			err := syscall.Rmdir(dirs[i])
			return err == nil || err == syscall.ENOENT
		})
	}
}

// waitReady polls GET /readyz until it answers 200 or the deadline passes.
func (d *daemon) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-d.exited:
			t.Fatalf("gustd exited before it was ready (%v):\n%s", d.waitErr, d.stderr.String())
		default:
		}
		resp, err := client.Get("http://" + d.http + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gustd not ready within %s (last error %v):\n%s", within, err, d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and waits up to within for the process to exit; after
// that it kills it. It returns the exit code (-1 if killed by a signal)
// and whether the process exited by itself in time.
func (d *daemon) stop(sig syscall.Signal, within time.Duration) (code int, inTime bool) {
	d.stopOnce.Do(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Signal(sig)
		}
	})
	select {
	case <-d.exited:
		inTime = true
	case <-time.After(within):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	return d.cmd.ProcessState.ExitCode(), inTime
}

// workerCgroupHex is the 12 hex chars naming this instance's cgroup parent
// (gust/<hex>): the first 6 bytes of sha256 of the worker's data dir.
func (d *daemon) workerCgroupHex() string {
	abs, err := filepath.Abs(filepath.Join(d.dataDir, "worker"))
	if err != nil {
		d.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
}

// cliResult is what one run of the gust CLI produced.
type cliResult struct {
	stdout, stderr string
	code           int
	wall           time.Duration
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %s\nstderr: %s", r.code, r.wall.Round(time.Millisecond), r.stdout, r.stderr)
}

// gust runs the CLI against d with the given arguments.
func (d *daemon) gust(t *testing.T, args ...string) cliResult {
	t.Helper()
	return d.gustStdin(t, "", args...)
}

// gustStdin runs the CLI with stdin.
func (d *daemon) gustStdin(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	r, err := runGust(d.grpc, stdin, args...)
	if err != nil {
		t.Fatalf("gust %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// cleanEnv is the test's environment without GUST_* variables, which
// gust and gustd would read as flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GUST_") {
			env = append(env, kv)
		}
	}
	return env
}

// runGust runs the CLI against grpcAddr; it is safe to call from any
// goroutine. The error reports only a failure to run the CLI or its hang,
// not an exit code.
func runGust(grpcAddr, stdin string, args ...string) (cliResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.gust, append([]string{"--addr", grpcAddr}, args...)...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader(stdin)
	start := time.Now()
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String(), wall: time.Since(start)}
	if ctx.Err() != nil {
		return r, fmt.Errorf("still running after 60s")
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			return r, err
		}
		r.code = ee.ExitCode()
	}
	return r, nil
}

// mustGust runs the CLI and fails the test unless it exits 0.
func (d *daemon) mustGust(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := d.gust(t, args...)
	if r.code != 0 {
		t.Fatalf("gust %s: want exit 0, got\n%s", strings.Join(args, " "), r)
	}
	return r
}

// deploy deploys code (a .zip or a folder) as name.
func (d *daemon) deploy(t *testing.T, name, code string, flags ...string) cliResult {
	t.Helper()
	return d.mustGust(t, append([]string{"fn", "deploy", name, "--code", code}, flags...)...)
}

// envelopeKeys are the fields of `gust invoke -o json`, as DESIGN.md sets them.
var envelopeKeys = []string{"request_id", "executed_version", "cold_start", "worker", "sandbox", "duration_ms",
	"init_duration_ms", "billed_duration_ms", "max_memory_used_mb", "function_error", "payload", "log_tail"}

// envelope is the -o json output of gust invoke.
type envelope struct {
	RequestID        string          `json:"request_id"`
	ExecutedVersion  string          `json:"executed_version"`
	ColdStart        bool            `json:"cold_start"`
	Worker           string          `json:"worker"`
	Sandbox          string          `json:"sandbox"`
	DurationMs       float64         `json:"duration_ms"`
	InitDurationMs   float64         `json:"init_duration_ms"`
	BilledDurationMs float64         `json:"billed_duration_ms"`
	MaxMemoryUsedMb  float64         `json:"max_memory_used_mb"`
	FunctionError    string          `json:"function_error"`
	Payload          json.RawMessage `json:"payload"`
	LogTail          string          `json:"log_tail"`
}

// invokeJSON runs `gust -o json invoke name --payload payload [extra…]`,
// checks that stdout is one envelope with every contract field, and
// returns it with the raw result. It does not judge the exit code.
func (d *daemon) invokeJSON(t *testing.T, name, payload string, extra ...string) (envelope, cliResult) {
	t.Helper()
	r := d.gust(t, append([]string{"-o", "json", "invoke", name, "--payload", payload}, extra...)...)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("invoke %s -o json: stdout is not one JSON object: %v\n%s", name, err, r)
	}
	for _, k := range envelopeKeys {
		if _, ok := raw[k]; !ok {
			t.Errorf("invoke %s -o json: envelope lacks %q\n%s", name, k, r.stdout)
		}
	}
	var env envelope
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
		t.Fatalf("invoke %s -o json: %v\n%s", name, err, r)
	}
	return env, r
}

// mustInvokeJSON is invokeJSON that requires exit 0 and no function error.
func (d *daemon) mustInvokeJSON(t *testing.T, name, payload string, extra ...string) envelope {
	t.Helper()
	env, r := d.invokeJSON(t, name, payload, extra...)
	if r.code != 0 || env.FunctionError != "" {
		t.Fatalf("invoke %s %s: want success, got\n%s", name, payload, r)
	}
	return env
}

// decode unmarshals a payload into v, failing the test if it cannot.
func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("payload %s: %v", data, err)
	}
}

// ---- host inspection ----

// proc is a process as /proc shows it.
type proc struct {
	pid     int
	uid     int
	state   string // R, S, D, T, Z, …
	start   uint64 // start time in clock ticks since boot; tells pid reuse apart
	cgroup  string // /proc/PID/cgroup, whole
	cmdline string
}

func readProc(pid int) (proc, bool) {
	p := proc{pid: pid, uid: -1}
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return p, false
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "Uid":
			if f := strings.Fields(v); len(f) > 0 {
				p.uid, _ = strconv.Atoi(f[0])
			}
		case "State":
			if f := strings.Fields(v); len(f) > 0 {
				p.state = f[0]
			}
		}
	}
	if stat, err := os.ReadFile(dir + "/stat"); err == nil {
		// Fields after the command name, which may hold spaces: state is
		// field 3, starttime field 22.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 {
			f := strings.Fields(string(stat[i+1:]))
			if len(f) > 19 {
				p.start, _ = strconv.ParseUint(f[19], 10, 64)
			}
		}
	}
	cg, _ := os.ReadFile(dir + "/cgroup")
	p.cgroup = string(cg)
	cmd, _ := os.ReadFile(dir + "/cmdline")
	p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	return p, true
}

// alive reports whether p still runs: the same process (same start time)
// exists and is not a zombie waiting for a parent outside this test.
func alive(p proc) bool {
	now, ok := readProc(p.pid)
	return ok && now.start == p.start && now.state != "Z" && now.state != "X"
}

// procsInCgroups lists live processes whose cgroup path contains any of marks.
func procsInCgroups(marks ...string) []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok || p.state == "Z" || p.state == "X" {
			continue
		}
		for _, m := range marks {
			if m != "" && strings.Contains(p.cgroup, m) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// cgroupDirs lists every directory under /sys/fs/cgroup (any hierarchy, at
// any depth: libcontainer nests v1 cgroups under gustd's own cgroup) whose
// path matches.
func cgroupDirs(match func(path string) bool) []string {
	var out []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() && match(path) {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// sandboxCgroups lists cgroup dirs named after any of the sandbox ids.
func sandboxCgroups(ids ...string) []string {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return cgroupDirs(func(p string) bool { return set[filepath.Base(p)] })
}

// mountsUnder lists the lines of /proc/self/mountinfo that name dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), dir) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// frozen reports whether the sandbox's freezer cgroup says it is frozen.
func frozen(id string) bool {
	for _, dir := range sandboxCgroups(id) {
		if b, err := os.ReadFile(filepath.Join(dir, "freezer.state")); err == nil && strings.TrimSpace(string(b)) == "FROZEN" {
			return true
		}
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.events")); err == nil && strings.Contains(string(b), "frozen 1") {
			return true
		}
	}
	return false
}

// waitFor polls cond every 20 ms until it holds or within passes.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
