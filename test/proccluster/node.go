package proccluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// Node is one gustd process. Its addresses, data dir and arguments stay
// the same across restarts, as an operator's would.
type Node struct {
	Name string
	Role string // "coordinator" or "worker"
	// GRPC, HTTP, Raft and Gossip are its listen addresses; a worker has
	// no Raft, and HTTP only if its Args serve it.
	GRPC, HTTP, Raft, Gossip string
	DataDir                  string
	Args                     []string // gustd's arguments
	Gustd                    string   // the gustd binary
	NetNS                    string   // a network namespace to run in (testutil.NewNetNS); "" is the test's
	UID                      int      // run as this uid and gid when non-zero

	log    syncBuffer // every run's output, each after a start marker
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run ended
}

// NewCoordinator makes (but does not start) coordinator name on free
// loopback ports with a temporary data dir. An empty join bootstraps a new
// cluster; otherwise join is the gossip address(es) to join through.
func (b Binaries) NewCoordinator(t testing.TB, name, join string) *Node {
	n := &Node{Name: name, Role: "coordinator", GRPC: testutil.FreeAddr(t), HTTP: testutil.FreeAddr(t),
		Raft: testutil.FreeAddr(t), Gossip: testutil.FreeAddr(t), DataDir: t.TempDir(), Gustd: b.Path("gustd")}
	n.Args = []string{"coordinator", "--name", name, "--data-dir", n.DataDir, "--grpc", n.GRPC, "--http", n.HTTP,
		"--raft", n.Raft, "--gossip", n.Gossip, "--gossip-fast"}
	if join == "" {
		n.Args = append(n.Args, "--bootstrap")
	} else {
		n.Args = append(n.Args, "--join", join)
	}
	return n
}

// NewWorker makes (but does not start) worker name, joining through the
// gossip address(es) join, with 2 GB and 4 stem cells.
func (b Binaries) NewWorker(t testing.TB, name, join string) *Node {
	n := &Node{Name: name, Role: "worker", GRPC: testutil.FreeAddr(t), Gossip: testutil.FreeAddr(t),
		DataDir: t.TempDir(), Gustd: b.Path("gustd")}
	n.Args = []string{"worker", "--name", name, "--data-dir", n.DataDir, "--grpc", n.GRPC, "--gossip", n.Gossip,
		"--join", join, "--gossip-fast", "--memory-mb", "2048", "--stem-cells", "4"}
	return n
}

// Start runs the node; it must not be running.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	fmt.Fprintf(&n.log, "==== start %s ====\n", time.Now().Format(time.RFC3339Nano))
	cmd := Command(n.NetNS, n.Gustd, n.Args...)
	cmd.Stdout, cmd.Stderr = &n.log, &n.log
	if n.UID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(n.UID), Gid: uint32(n.UID)}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.Name, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited = cmd, exited
	go func() { cmd.Wait(); close(exited) }()
}

// Running reports whether the node was started and has not exited.
func (n *Node) Running() bool {
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

// Kill9 kills the node with SIGKILL and waits until it is gone.
func (n *Node) Kill9() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Signal sends s to the node.
func (n *Node) Signal(s syscall.Signal) { n.cmd.Process.Signal(s) }

// Stop sends SIGTERM and reports whether the node exited within 30 s; if
// not, the test fails and the node is killed.
func (n *Node) Stop(t testing.TB) bool {
	if !n.Running() {
		return true
	}
	n.cmd.Process.Signal(syscall.SIGCONT) // a stopped node cannot drain
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return true
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop on SIGTERM; killing", n.Name)
		n.Kill9()
		return false
	}
}

// Log is everything the node wrote to stdout and stderr, over all its runs.
func (n *Node) Log() string { return n.log.String() }

// LogTail is the last max bytes of Log.
func (n *Node) LogTail(max int) string {
	s := n.Log()
	if len(s) > max {
		return s[len(s)-max:]
	}
	return s
}

// Command runs bin in the network namespace netns ("": the test's own).
func Command(netns, bin string, args ...string) *exec.Cmd {
	return commandContext(context.Background(), netns, bin, args...)
}

// commandContext is Command, killed when ctx is done. nsenter execs bin
// rather than forking it, so signals (and the kill) reach bin itself.
func commandContext(ctx context.Context, netns, bin string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netns, "--", bin}, args...)...)
}

// syncBuffer is a bytes.Buffer that a process's output and the test may
// use at once.
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
