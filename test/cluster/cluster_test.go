// Package cluster_test runs a real gust cluster on loopback — three
// coordinators and two workers as separate gustd processes — and checks
// what users rely on: membership, one Raft leader, deploys through a
// follower, warm-aware routing across coordinators, and recovery after
// kill -9 of the leader, of a worker, and a restart with the same data dir.
package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gust-cluster-bin-")
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

func build(dir string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	if err := testutil.BuildGustd(root, filepath.Join(dir, "gustd")); err != nil {
		return err
	}
	for _, b := range []struct{ out, pkg, tags, ldflags string }{
		{"gust", "./cmd/gust", "", ""},
	} {
		cmd := exec.Command("go", "build", "-tags", b.tags, "-ldflags", b.ldflags, "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(dir, "fn", "bootstrap"), "./examples/hello")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build function: %v\n%s", err, out)
	}
	return nil
}

func freePort(t *testing.T) string { return testutil.FreeAddr(t) }

// node is one gustd process.
type node struct {
	name, role               string
	grpc, http, raft, gossip string
	dataDir                  string
	args                     []string
	netns                    string // a network namespace to run in (testutil.NewNetNS); "" is the test's
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
	n.log = &syncBuffer{}
	n.cmd = command(n.netns, filepath.Join(binDir, "gustd"), n.args...)
	n.cmd.Stderr = n.log
	n.cmd.Stdout = n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.exited) }()
}

func (n *node) kill9() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

func (n *node) stop(t *testing.T) {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop on SIGTERM; killing", n.name)
		n.kill9()
	}
}

type cluster struct {
	t      *testing.T
	coords []*node
	works  []*node
}

func newCoordinator(t *testing.T, name string, join string) *node {
	n := &node{name: name, role: "coordinator", grpc: freePort(t), http: freePort(t), raft: freePort(t), gossip: freePort(t), dataDir: t.TempDir()}
	n.args = []string{"coordinator", "--name", name, "--data-dir", n.dataDir, "--grpc", n.grpc, "--http", n.http,
		"--raft", n.raft, "--gossip", n.gossip, "--gossip-fast"}
	if join == "" {
		n.args = append(n.args, "--bootstrap")
	} else {
		n.args = append(n.args, "--join", join)
	}
	return n
}

func newWorker(t *testing.T, name, join string) *node {
	n := &node{name: name, role: "worker", grpc: freePort(t), gossip: freePort(t), dataDir: t.TempDir()}
	n.args = []string{"worker", "--name", name, "--data-dir", n.dataDir, "--grpc", n.grpc, "--gossip", n.gossip,
		"--join", join, "--gossip-fast", "--memory-mb", "2048", "--stem-cells", "4"}
	return n
}

func startCluster(t *testing.T) *cluster { return startClusterWith(t, nil) }

// startClusterWith starts the cluster with sec's TLS and gossip key on
// every node and on the CLI (nil: plaintext, as by default).
func startClusterWith(t *testing.T, sec *security) *cluster {
	testutil.RequireRoot(t)
	c := &cluster{t: t}
	sec.useForCLI(t)
	c1 := newCoordinator(t, "c1", "")
	c1.args = append(c1.args, sec.nodeArgs(t, c1.name)...)
	c1.start(t)
	c.coords = append(c.coords, c1)
	for _, name := range []string{"c2", "c3"} {
		n := newCoordinator(t, name, c1.gossip)
		n.args = append(n.args, sec.nodeArgs(t, name)...)
		n.start(t)
		c.coords = append(c.coords, n)
	}
	for _, name := range []string{"w1", "w2"} {
		n := newWorker(t, name, c1.gossip+","+c.coords[1].gossip)
		n.args = append(n.args, sec.nodeArgs(t, name)...)
		n.start(t)
		c.works = append(c.works, n)
	}
	t.Cleanup(func() {
		for _, n := range append(append([]*node{}, c.works...), c.coords...) {
			n.stop(t)
		}
		if t.Failed() {
			for _, n := range append(c.coords, c.works...) {
				t.Logf("---- %s log ----\n%s", n.name, tail(n.log.String(), 4000))
			}
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *cluster) addrs(nodes ...*node) string {
	var a []string
	for _, n := range nodes {
		a = append(a, n.grpc)
	}
	return strings.Join(a, ",")
}

// command runs bin in the network namespace netns ("": the test's own).
// nsenter execs bin rather than forking it, so signals reach bin itself.
func command(netns, bin string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("nsenter", append([]string{"--net=" + netns, "--", bin}, args...)...)
}

// gust runs the CLI against addr and returns stdout, stderr and the exit code.
func gust(t *testing.T, addr string, args ...string) (string, string, int) {
	t.Helper()
	return gustIn(t, "", addr, args...)
}

// gustIn is gust run in the network namespace netns.
func gustIn(t *testing.T, netns, addr string, args ...string) (string, string, int) {
	t.Helper()
	cmd := command(netns, filepath.Join(binDir, "gust"), append([]string{"--addr", addr}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func gustJSON(t *testing.T, addr string, v any, args ...string) bool {
	t.Helper()
	out, _, code := gust(t, addr, append([]string{"-o", "json"}, args...)...)
	return code == 0 && json.Unmarshal([]byte(out), v) == nil
}

type nodeView struct {
	Name, Role, Status, Address string
	MemoryMB                    int64 `json:"memory_mb"` // a worker's, once its pool stream reached the coordinator
}

type peerView struct {
	Name, Address, State string
	Voter                bool
}

type envelope struct {
	ColdStart     bool   `json:"cold_start"`
	Worker        string `json:"worker"`
	Sandbox       string `json:"sandbox"`
	FunctionError string `json:"function_error"`
	Payload       json.RawMessage
}

func (c *cluster) waitHealthy(t *testing.T, within time.Duration, wantAlive, wantVoters int) []peerView {
	t.Helper()
	var peers []peerView
	testutil.Eventually(t, within, func() bool {
		// Every coordinator must see every member alive.
		for _, co := range c.coords {
			var nodes []nodeView
			if !gustJSON(t, co.grpc, &nodes, "nodes") {
				return false
			}
			alive := 0
			for _, n := range nodes {
				// A worker counts once this coordinator's placement sees it
				// (its pool stream is up), not only gossip.
				if n.Status == "alive" && (n.Role != "worker" || n.MemoryMB > 0) {
					alive++
				}
			}
			if alive != wantAlive {
				return false
			}
		}
		peers = nil
		if !gustJSON(t, c.addrs(c.coords...), &peers, "raft", "peers") {
			return false
		}
		voters, leaders := 0, 0
		for _, p := range peers {
			if p.Voter {
				voters++
			}
			if p.State == "leader" {
				leaders++
			}
		}
		return voters == wantVoters && leaders == 1
	}, "cluster never showed %d alive nodes and %d voters with one leader", wantAlive, wantVoters)
	return peers
}

func (c *cluster) byName(name string) *node {
	for _, n := range append(c.coords, c.works...) {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

func zipFunction(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(binDir, "fn", "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fn.zip")
	if err := os.WriteFile(path, testutil.BootstrapZip(t, data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func invoke(t *testing.T, addr, fn string) (envelope, error) {
	t.Helper()
	out, stderr, code := gust(t, addr, "-o", "json", "invoke", fn, "--payload", `{"name":"cluster"}`)
	if code != 0 {
		return envelope{}, fmt.Errorf("exit %d: %s", code, stderr)
	}
	var e envelope
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		return e, err
	}
	if e.FunctionError != "" {
		return e, fmt.Errorf("function error: %s", e.Payload)
	}
	return e, nil
}

func TestCluster(t *testing.T) {
	checkCluster(t, startCluster(t))
}

// checkCluster runs issue 3's checks on a started cluster.
func checkCluster(t *testing.T, c *cluster) {
	peers := c.waitHealthy(t, 45*time.Second, 5, 3)

	var leader, follower *node
	for _, p := range peers {
		if p.State == "leader" {
			leader = c.byName(p.Name)
		} else if follower == nil {
			follower = c.byName(p.Name)
		}
	}
	code := zipFunction(t)

	t.Run("deploy through a follower", func(t *testing.T) {
		out, stderr, exit := gust(t, follower.grpc, "fn", "deploy", "hello", "--code", code)
		if exit != 0 {
			t.Fatalf("deploy via %s: exit %d %s %s", follower.name, exit, out, stderr)
		}
		// Reads are served locally: every coordinator lists it once Raft has replicated.
		for _, n := range c.coords {
			testutil.Eventually(t, 5*time.Second, func() bool {
				out, _, exit := gust(t, n.grpc, "fn", "ls")
				return exit == 0 && strings.Contains(out, "hello")
			}, "%s never listed the function", n.name)
		}
	})

	t.Run("warm routing across coordinators", func(t *testing.T) {
		warm := 0
		for i := 0; i < 45; i++ {
			n := c.coords[i%3]
			e, err := invoke(t, n.grpc, "hello")
			if err != nil {
				t.Fatalf("invoke %d via %s: %v", i, n.name, err)
			}
			if !e.ColdStart {
				warm++
			}
		}
		if warm < 43 {
			t.Fatalf("%d of 45 invokes were warm; want at least 43", warm)
		}
	})

	t.Run("sandboxes and nodes listings", func(t *testing.T) {
		out, _, exit := gust(t, leader.grpc, "sandboxes")
		if exit != 0 || !strings.Contains(out, "hello") {
			t.Fatalf("gust sandboxes: exit %d\n%s", exit, out)
		}
	})

	t.Run("kill -9 of the leader", func(t *testing.T) {
		leader.kill9()
		rest := []*node{}
		for _, n := range c.coords {
			if n != leader {
				rest = append(rest, n)
			}
		}
		all := c.addrs(c.coords...)
		start := time.Now()
		testutil.Eventually(t, 15*time.Second, func() bool {
			_, err := invoke(t, all, "hello")
			return err == nil
		}, "invokes never succeeded after the leader died")
		t.Logf("invokes succeed %.1fs after kill -9 of the leader", time.Since(start).Seconds())
		var newLeader string
		testutil.Eventually(t, 15*time.Second, func() bool {
			var ps []peerView
			if !gustJSON(t, c.addrs(rest...), &ps, "raft", "peers") {
				return false
			}
			for _, p := range ps {
				if p.State == "leader" && p.Name != leader.name {
					newLeader = p.Name
					return true
				}
			}
			return false
		}, "no new leader")
		t.Logf("new leader %s after %.1fs", newLeader, time.Since(start).Seconds())
		testutil.Eventually(t, 10*time.Second, func() bool {
			_, _, exit := gust(t, all, "fn", "deploy", "hello2", "--code", code)
			return exit == 0
		}, "deploys never worked again after the leader died")
		if _, err := invoke(t, all, "hello2"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kill -9 of the serving worker", func(t *testing.T) {
		all := c.addrs(c.coords...)
		e, err := invoke(t, all, "hello")
		if err != nil {
			t.Fatal(err)
		}
		served := c.byName(e.Worker)
		served.kill9()
		start := time.Now()
		testutil.Eventually(t, 10*time.Second, func() bool {
			e, err := invoke(t, all, "hello")
			return err == nil && e.Worker != served.name
		}, "invokes never moved to the other worker")
		t.Logf("invokes served by the other worker %.1fs after kill -9 of %s", time.Since(start).Seconds(), served.name)

		// The killed worker comes back with its data dir: it reaps what it
		// left, rejoins, and is used again — proven by draining the other.
		served.start(t)
		testutil.Eventually(t, 15*time.Second, func() bool {
			var nodes []nodeView
			if !gustJSON(t, all, &nodes, "nodes") {
				return false
			}
			for _, n := range nodes {
				if n.Name == served.name && n.Status == "alive" {
					return true
				}
			}
			return false
		}, "%s never came back alive", served.name)
		other := c.works[0]
		if other == served {
			other = c.works[1]
		}
		if out, stderr, exit := gust(t, all, "nodes", "drain", other.name); exit != 0 {
			t.Fatalf("drain %s: %s %s", other.name, out, stderr)
		}
		testutil.Eventually(t, 10*time.Second, func() bool {
			e, err := invoke(t, all, "hello")
			return err == nil && e.Worker == served.name
		}, "the restarted worker was never used again")
	})

	t.Run("restarted coordinator rejoins with its state", func(t *testing.T) {
		leader.start(t)
		testutil.Eventually(t, 20*time.Second, func() bool {
			out, _, exit := gust(t, leader.grpc, "fn", "ls")
			return exit == 0 && strings.Contains(out, "hello2")
		}, "restarted %s never served the state committed while it was down", leader.name)
		var ps []peerView
		testutil.Eventually(t, 10*time.Second, func() bool {
			return gustJSON(t, leader.grpc, &ps, "raft", "peers") && len(ps) == 3
		}, "raft peers after restart: %v", ps)
	})
}
