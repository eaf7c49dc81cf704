// Package cluster_test runs a real gust cluster on loopback — three
// coordinators and two workers as separate gustd processes — and checks
// what users rely on: membership, one Raft leader, deploys through a
// follower, warm-aware routing across coordinators, and recovery after
// kill -9 of the leader, of a worker, and a restart with the same data dir.
package cluster_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
)

// bins holds gustd, the CLI and the example function (fn/bootstrap).
var bins proccluster.Binaries

type (
	node    = proccluster.Node
	cluster = proccluster.Cluster
)

func TestMain(m *testing.M) {
	os.Exit(proccluster.Main(m, &bins, proccluster.Function{Out: "fn/bootstrap", Pkg: "./examples/hello"}))
}

func startCluster(t *testing.T) *cluster { return startClusterWith(t, nil) }

// startClusterWith starts the cluster with sec's TLS and gossip key on
// every node and on the CLI (nil: plaintext, as by default).
func startClusterWith(t *testing.T, sec *security) *cluster {
	testutil.RequireRoot(t)
	sec.useForCLI(t)
	return bins.StartCluster(t, proccluster.Options{
		Prepare: func(_ int, n *node) { n.Args = append(n.Args, sec.nodeArgs(t, n.Name)...) },
	})
}

type envelope struct {
	ColdStart     bool   `json:"cold_start"`
	Worker        string `json:"worker"`
	Sandbox       string `json:"sandbox"`
	FunctionError string `json:"function_error"`
	Payload       json.RawMessage
}

func zipFunction(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(bins.Path("fn/bootstrap"))
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
	out, stderr, code := bins.Gust(t, addr, "-o", "json", "invoke", fn, "--payload", `{"name":"cluster"}`)
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
	peers := c.WaitHealthy(t, 45*time.Second, 5, 3)

	var leader, follower *node
	for _, p := range peers {
		if p.State == "leader" {
			leader = c.ByName(p.Name)
		} else if follower == nil {
			follower = c.ByName(p.Name)
		}
	}
	code := zipFunction(t)

	t.Run("deploy through a follower", func(t *testing.T) {
		out, stderr, exit := bins.Gust(t, follower.GRPC, "fn", "deploy", "hello", "--code", code)
		if exit != 0 {
			t.Fatalf("deploy via %s: exit %d %s %s", follower.Name, exit, out, stderr)
		}
		// Reads are served locally: every coordinator lists it once Raft has replicated.
		for _, n := range c.Coordinators {
			testutil.Eventually(t, 5*time.Second, func() bool {
				out, _, exit := bins.Gust(t, n.GRPC, "fn", "ls")
				return exit == 0 && strings.Contains(out, "hello")
			}, "%s never listed the function", n.Name)
		}
	})

	t.Run("warm routing across coordinators", func(t *testing.T) {
		warm := 0
		for i := 0; i < 45; i++ {
			n := c.Coordinators[i%3]
			e, err := invoke(t, n.GRPC, "hello")
			if err != nil {
				t.Fatalf("invoke %d via %s: %v", i, n.Name, err)
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
		out, _, exit := bins.Gust(t, leader.GRPC, "sandboxes")
		if exit != 0 || !strings.Contains(out, "hello") {
			t.Fatalf("gust sandboxes: exit %d\n%s", exit, out)
		}
	})

	t.Run("kill -9 of the leader", func(t *testing.T) {
		leader.Kill9()
		rest := c.Followers(leader)
		all := proccluster.Addrs(c.Coordinators...)
		start := time.Now()
		testutil.Eventually(t, 15*time.Second, func() bool {
			_, err := invoke(t, all, "hello")
			return err == nil
		}, "invokes never succeeded after the leader died")
		t.Logf("invokes succeed %.1fs after kill -9 of the leader", time.Since(start).Seconds())
		var newLeader string
		testutil.Eventually(t, 15*time.Second, func() bool {
			var ps []proccluster.Peer
			if !bins.GustJSON(t, proccluster.Addrs(rest...), &ps, "raft", "peers") {
				return false
			}
			for _, p := range ps {
				if p.State == "leader" && p.Name != leader.Name {
					newLeader = p.Name
					return true
				}
			}
			return false
		}, "no new leader")
		t.Logf("new leader %s after %.1fs", newLeader, time.Since(start).Seconds())
		testutil.Eventually(t, 10*time.Second, func() bool {
			_, _, exit := bins.Gust(t, all, "fn", "deploy", "hello2", "--code", code)
			return exit == 0
		}, "deploys never worked again after the leader died")
		if _, err := invoke(t, all, "hello2"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kill -9 of the serving worker", func(t *testing.T) {
		all := proccluster.Addrs(c.Coordinators...)
		e, err := invoke(t, all, "hello")
		if err != nil {
			t.Fatal(err)
		}
		served := c.ByName(e.Worker)
		served.Kill9()
		start := time.Now()
		testutil.Eventually(t, 10*time.Second, func() bool {
			e, err := invoke(t, all, "hello")
			return err == nil && e.Worker != served.Name
		}, "invokes never moved to the other worker")
		t.Logf("invokes served by the other worker %.1fs after kill -9 of %s", time.Since(start).Seconds(), served.Name)

		// The killed worker comes back with its data dir: it reaps what it
		// left, rejoins, and is used again — proven by draining the other.
		served.Start(t)
		testutil.Eventually(t, 15*time.Second, func() bool {
			var nodes []proccluster.Member
			if !bins.GustJSON(t, all, &nodes, "nodes") {
				return false
			}
			for _, n := range nodes {
				if n.Name == served.Name && n.Status == "alive" {
					return true
				}
			}
			return false
		}, "%s never came back alive", served.Name)
		other := c.Workers[0]
		if other == served {
			other = c.Workers[1]
		}
		if out, stderr, exit := bins.Gust(t, all, "nodes", "drain", other.Name); exit != 0 {
			t.Fatalf("drain %s: %s %s", other.Name, out, stderr)
		}
		testutil.Eventually(t, 10*time.Second, func() bool {
			e, err := invoke(t, all, "hello")
			return err == nil && e.Worker == served.Name
		}, "the restarted worker was never used again")
	})

	t.Run("restarted coordinator rejoins with its state", func(t *testing.T) {
		leader.Start(t)
		testutil.Eventually(t, 20*time.Second, func() bool {
			out, _, exit := bins.Gust(t, leader.GRPC, "fn", "ls")
			return exit == 0 && strings.Contains(out, "hello2")
		}, "restarted %s never served the state committed while it was down", leader.Name)
		var ps []proccluster.Peer
		testutil.Eventually(t, 10*time.Second, func() bool {
			return bins.GustJSON(t, leader.GRPC, &ps, "raft", "peers") && len(ps) == 3
		}, "raft peers after restart: %v", ps)
	})
}
