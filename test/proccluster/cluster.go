package proccluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// Cluster is a set of started nodes.
type Cluster struct {
	Bins         Binaries
	Coordinators []*Node
	Workers      []*Node
	t            testing.TB
}

// Options change how Start runs a cluster.
type Options struct {
	// Prepare, when set, changes each node before its first start; i is
	// its index among the nodes of its role (c1 is coordinator 0).
	Prepare func(i int, n *Node)
	// LogTail is how much of each node's log a failed test prints, in
	// bytes; 0 means 4000.
	LogTail int
	// LogDir, when set, receives each node's whole log when the test
	// failed, as SUBTEST-NODE.log.
	LogDir string
}

// StartCluster starts the tests' usual cluster: coordinators c1 (which
// bootstraps), c2 and c3, and workers w1 and w2 joining through c1 and c2.
func (b Binaries) StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c1 := b.NewCoordinator(t, "c1", "")
	coords := []*Node{c1, b.NewCoordinator(t, "c2", c1.Gossip), b.NewCoordinator(t, "c3", c1.Gossip)}
	join := c1.Gossip + "," + coords[1].Gossip
	workers := []*Node{b.NewWorker(t, "w1", join), b.NewWorker(t, "w2", join)}
	return b.Start(t, coords, workers, opts)
}

// Start starts coords, then workers. At the test's end it stops them all
// with SIGTERM, workers first, and if the test failed shows their logs.
// Workers need root: without it the test is skipped (failed under
// CI=true).
func (b Binaries) Start(t testing.TB, coords, workers []*Node, opts Options) *Cluster {
	t.Helper()
	if len(workers) > 0 {
		testutil.RequireRoot(t)
	}
	c := &Cluster{Bins: b, Coordinators: coords, Workers: workers, t: t}
	tailLen := opts.LogTail
	if tailLen == 0 {
		tailLen = 4000
	}
	// Registered before any start, so a start that fails still stops the
	// nodes started before it.
	t.Cleanup(func() {
		c.StopAll(t)
		if !t.Failed() {
			return
		}
		for _, n := range c.All() {
			t.Logf("---- %s log ----\n%s", n.Name, n.LogTail(tailLen))
			if opts.LogDir != "" {
				os.MkdirAll(opts.LogDir, 0o755)
				name := t.Name()[strings.LastIndex(t.Name(), "/")+1:] + "-" + n.Name + ".log"
				os.WriteFile(filepath.Join(opts.LogDir, name), []byte(n.Log()), 0o644)
			}
		}
	})
	for _, nodes := range [][]*Node{coords, workers} {
		for i, n := range nodes {
			if opts.Prepare != nil {
				opts.Prepare(i, n)
			}
			n.Start(t)
		}
	}
	return c
}

// All is every node, coordinators first.
func (c *Cluster) All() []*Node {
	return append(append([]*Node{}, c.Coordinators...), c.Workers...)
}

// StopAll sends SIGTERM to every node, workers first, and reports whether
// all exited cleanly in time.
func (c *Cluster) StopAll(t testing.TB) bool {
	ok := true
	for _, n := range append(append([]*Node{}, c.Workers...), c.Coordinators...) {
		ok = n.Stop(t) && ok
	}
	return ok
}

// ByName is the node called name; the test fails if there is none.
func (c *Cluster) ByName(name string) *Node {
	for _, n := range c.All() {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// Followers are the coordinators other than leader.
func (c *Cluster) Followers(leader *Node) []*Node {
	var out []*Node
	for _, n := range c.Coordinators {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// Addrs is the nodes' gRPC addresses as the CLI's --addr takes them.
func Addrs(nodes ...*Node) string {
	var a []string
	for _, n := range nodes {
		a = append(a, n.GRPC)
	}
	return strings.Join(a, ",")
}

// Member is a line of `gust nodes -o json`.
type Member struct {
	Name, Role, Status, Address string
	MemoryMB                    int64 `json:"memory_mb"` // a worker's, once its pool stream reached the coordinator
}

// Peer is a line of `gust raft peers -o json`.
type Peer struct {
	Name, Address, State string
	Voter                bool
}

// WaitHealthy polls until every coordinator sees wantAlive members alive
// (a worker only once its pool stream reached that coordinator) and Raft
// has wantVoters voters and one leader; it returns the Raft peers.
func (c *Cluster) WaitHealthy(t testing.TB, within time.Duration, wantAlive, wantVoters int) []Peer {
	t.Helper()
	var peers []Peer
	testutil.Eventually(t, within, func() bool {
		for _, co := range c.Coordinators {
			var nodes []Member
			if !c.Bins.GustJSON(t, co.GRPC, &nodes, "nodes") {
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
		if !c.Bins.GustJSON(t, Addrs(c.Coordinators...), &peers, "raft", "peers") {
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

// Leader asks among for the Raft peers: nil unless every coordinator of
// the cluster is a voter and one of among leads.
func (c *Cluster) Leader(t testing.TB, among []*Node) *Node {
	var peers []Peer
	if !c.Bins.GustJSON(t, Addrs(among...), &peers, "raft", "peers") {
		return nil
	}
	voters := 0
	var leader *Node
	for _, p := range peers {
		if p.Voter {
			voters++
		}
		if p.State == "leader" {
			for _, n := range among {
				if n.Name == p.Name {
					leader = n
				}
			}
		}
	}
	if voters != len(c.Coordinators) {
		return nil
	}
	return leader
}

// WaitLeader polls Leader until it names one.
func (c *Cluster) WaitLeader(t testing.TB, among []*Node, within time.Duration) *Node {
	t.Helper()
	var l *Node
	testutil.Eventually(t, within, func() bool { l = c.Leader(t, among); return l != nil }, "no leader among %d coordinators", len(among))
	return l
}
