package chaos_test

// A small copy of test/cluster's helpers (Go test packages cannot import
// each other's _test files): build the binaries, run gustd processes on
// loopback, drive the gust CLI.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

var binDir string

// cliTimeouts counts CLI calls that got no answer within 30 s.
var cliTimeouts atomic.Int64

func TestMain(m *testing.M) {
	if (mode() == "" && os.Getenv("GUST_SOAK") == "") || os.Geteuid() != 0 {
		os.Exit(m.Run()) // TestChaos skips (or fails under CI=true); nothing to build
	}
	dir, err := os.MkdirTemp("", "gust-chaos-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		if err := build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// build makes gustd (as make build does), the CLI, and the e2e probe
// function.
func build(dir string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	if err := testutil.BuildGustd(root, filepath.Join(dir, "gustd")); err != nil {
		return err
	}
	for _, b := range []struct{ out, pkg, tags, ldflags, cgo string }{
		{"gust", "./cmd/gust", "", "", "0"},
		{"probe/bootstrap", "./test/e2e/testdata/probe", "lambda.norpc", "", "0"},
	} {
		cmd := exec.Command("go", "build", "-tags", b.tags, "-ldflags", b.ldflags, "-trimpath", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// node is one gustd process.
type node struct {
	name, role               string
	grpc, http, raft, gossip string
	dataDir                  string
	args                     []string
	uid                      int // run as this uid when non-zero (the partition scenario matches on it)
	cmd                      *exec.Cmd
	log                      *syncBuffer
	exited                   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (n *node) start(t *testing.T) {
	t.Helper()
	if n.log == nil {
		n.log = &syncBuffer{}
	}
	fmt.Fprintf(n.log, "==== start %s ====\n", time.Now().Format(time.RFC3339Nano))
	n.cmd = exec.Command(filepath.Join(binDir, "gustd"), n.args...)
	n.cmd.Stderr = n.log
	n.cmd.Stdout = n.log
	if n.uid != 0 {
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(n.uid), Gid: uint32(n.uid)}}
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.exited) }()
}

func (n *node) running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func (n *node) kill9() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

func (n *node) signal(s syscall.Signal) { n.cmd.Process.Signal(s) }

// stop sends SIGTERM and reports whether the node exited cleanly in time.
func (n *node) stop(t *testing.T) bool {
	if !n.running() {
		return true
	}
	n.cmd.Process.Signal(syscall.SIGCONT) // a stopped node cannot drain
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return true
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop on SIGTERM; killing", n.name)
		n.kill9()
		return false
	}
}

type cluster struct {
	t      *testing.T
	coords []*node
	works  []*node
}

func newCoordinator(t *testing.T, name string, join string) *node {
	n := &node{name: name, role: "coordinator", grpc: testutil.FreeAddr(t), http: testutil.FreeAddr(t),
		raft: testutil.FreeAddr(t), gossip: testutil.FreeAddr(t), dataDir: t.TempDir()}
	n.args = []string{"coordinator", "--name", name, "--data-dir", n.dataDir, "--grpc", n.grpc, "--http", n.http,
		"--raft", n.raft, "--gossip", n.gossip, "--gossip-fast"}
	if os.Getenv("GUST_CHAOS_VERBOSE") != "" {
		n.args = append(n.args, "-v")
	}
	if join == "" {
		n.args = append(n.args, "--bootstrap")
	} else {
		n.args = append(n.args, "--join", join)
	}
	return n
}

// workerArgs are extra flags for every worker a test starts.
var workerArgs []string

func newWorker(t *testing.T, name, join string) *node {
	n := &node{name: name, role: "worker", grpc: testutil.FreeAddr(t), http: testutil.FreeAddr(t), gossip: testutil.FreeAddr(t), dataDir: t.TempDir()}
	n.args = []string{"worker", "--name", name, "--data-dir", n.dataDir, "--grpc", n.grpc, "--gossip", n.gossip,
		"--join", join, "--gossip-fast", "--memory-mb", "2048", "--stem-cells", "4", "--http", n.http}
	n.args = append(n.args, workerArgs...)
	return n
}

// startCluster runs 3 coordinators and 2 workers; prepare may change a
// coordinator before it starts (index, node).
func startCluster(t *testing.T, prepare func(int, *node)) *cluster {
	c := &cluster{t: t}
	c1 := newCoordinator(t, "c1", "")
	c.coords = append(c.coords, c1)
	for _, name := range []string{"c2", "c3"} {
		c.coords = append(c.coords, newCoordinator(t, name, c1.gossip))
	}
	for i, n := range c.coords {
		if prepare != nil {
			prepare(i, n)
		}
		n.start(t)
	}
	for _, name := range []string{"w1", "w2"} {
		n := newWorker(t, name, c1.gossip+","+c.coords[1].gossip)
		n.start(t)
		c.works = append(c.works, n)
	}
	t.Cleanup(func() {
		c.stopAll(t)
		if t.Failed() {
			dir := os.Getenv("GUST_CHAOS_LOGDIR")
			for _, n := range c.all() {
				t.Logf("---- %s log ----\n%s", n.name, tail(n.log.String(), 3000))
				if dir != "" {
					os.MkdirAll(dir, 0o755)
					os.WriteFile(filepath.Join(dir, t.Name()[strings.LastIndex(t.Name(), "/")+1:]+"-"+n.name+".log"), []byte(n.log.String()), 0o644)
				}
			}
		}
	})
	return c
}

func (c *cluster) all() []*node { return append(append([]*node{}, c.coords...), c.works...) }

// stopAll sends SIGTERM to every node, workers first.
func (c *cluster) stopAll(t *testing.T) bool {
	ok := true
	for _, n := range append(append([]*node{}, c.works...), c.coords...) {
		ok = n.stop(t) && ok
	}
	return ok
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func addrs(nodes ...*node) string {
	var a []string
	for _, n := range nodes {
		a = append(a, n.grpc)
	}
	return strings.Join(a, ",")
}

// gust runs the CLI against addr and returns stdout, stderr and the exit code.
func gust(t *testing.T, addr string, args ...string) (string, string, int) {
	t.Helper()
	// A bound on every call: a coordinator cut off from the leader must
	// not hang the suite (see cliTimeouts).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "gust"), append([]string{"--addr", addr}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ctx.Err() != nil {
		cliTimeouts.Add(1)
		t.Logf("gust %s via %s: no answer within 30 s", strings.Join(args, " "), addr)
		return out.String(), errb.String() + "timed out", -2
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Error(err)
		code = -1
	}
	return out.String(), errb.String(), code
}

func gustJSON(t *testing.T, addr string, v any, args ...string) bool {
	t.Helper()
	out, _, code := gust(t, addr, append([]string{"-o", "json"}, args...)...)
	return code == 0 && json.Unmarshal([]byte(out), v) == nil
}

// mustGust runs a CLI command that has to succeed.
func mustGust(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, stderr, code := gust(t, addr, args...)
	if code != 0 {
		t.Fatalf("gust %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

type nodeView struct{ Name, Role, Status string }

type peerView struct {
	Name, Address, State string
	Voter                bool
}

// waitHealthy polls until every coordinator sees wantAlive members alive
// and Raft has three voters and one leader; it returns the leader.
func (c *cluster) waitHealthy(t *testing.T, within time.Duration, wantAlive int) *node {
	t.Helper()
	var leader *node
	testutil.Eventually(t, within, func() bool {
		for _, co := range c.coords {
			var nodes []nodeView
			if !gustJSON(t, co.grpc, &nodes, "nodes") {
				return false
			}
			alive := 0
			for _, n := range nodes {
				if n.Status == "alive" {
					alive++
				}
			}
			if alive != wantAlive {
				return false
			}
		}
		leader = c.leader(t, c.coords)
		return leader != nil
	}, "cluster never showed %d alive nodes and 3 voters with one leader", wantAlive)
	return leader
}

// leader asks among for the Raft peers; nil unless there are 3 voters and
// one leader among them.
func (c *cluster) leader(t *testing.T, among []*node) *node {
	var peers []peerView
	if !gustJSON(t, addrs(among...), &peers, "raft", "peers") {
		return nil
	}
	voters := 0
	var leader *node
	for _, p := range peers {
		if p.Voter {
			voters++
		}
		if p.State == "leader" {
			for _, n := range among {
				if n.name == p.Name {
					leader = n
				}
			}
		}
	}
	if voters != 3 {
		return nil
	}
	return leader
}

func (c *cluster) waitLeader(t *testing.T, among []*node, within time.Duration) *node {
	t.Helper()
	var l *node
	testutil.Eventually(t, within, func() bool { l = c.leader(t, among); return l != nil }, "no leader among %d coordinators", len(among))
	return l
}

func (c *cluster) followers(leader *node) []*node {
	var out []*node
	for _, n := range c.coords {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

func probeDir() string { return filepath.Join(binDir, "probe") }

type span struct{ start, end int64 }

// workerSpans reads every SPAN line function fn printed, from the workers'
// retained function logs: it includes invocations whose caller never saw
// the answer.
func (c *cluster) workerSpans(fn string) []span {
	var out []span
	for _, w := range c.works {
		starts, ends := testutil.LogSpans(w.dataDir, fn)
		for i := range starts {
			out = append(out, span{starts[i], ends[i]})
		}
	}
	return out
}

// settledSpans polls the function logs until they stop growing.
func (c *cluster) settledSpans(t *testing.T, fn string) []span {
	var spans []span
	testutil.Eventually(t, 20*time.Second, func() bool {
		before := len(c.workerSpans(fn))
		time.Sleep(700 * time.Millisecond) // the logs are flushed asynchronously
		spans = c.workerSpans(fn)
		return len(spans) == before
	}, "function logs of %s never settled", fn)
	return spans
}
