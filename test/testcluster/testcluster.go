// Package testcluster starts a whole gust cluster inside one test process:
// coordinators with real Raft on disk and real gossip, and workers with
// real sandboxes, on free loopback ports with short timings. Tests that need
// separate processes (kill -9) use test/cluster instead.
package testcluster

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/node"
	"github.com/gustfaas/gust/worker"
)

// Cluster is a running in-process cluster.
type Cluster struct {
	Coordinators []*node.Coordinator
	Workers      []*node.Worker
}

// New starts coordinators (the first bootstraps Raft) and workers, waits
// until every coordinator is a voter and sees every worker, and stops them
// all in t.Cleanup. Workers need root: the caller's TestMain must call
// sandbox.MaybeInit.
func New(t testing.TB, coordinators, workers int) *Cluster {
	t.Helper()
	if workers > 0 {
		testutil.RequireRoot(t)
	}
	// The data dirs are made before the cleanup that stops the nodes is
	// registered, so they are removed after it (cleanups run last first):
	// live sandboxes hold their directories.
	base := t.TempDir()
	c := &Cluster{}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, w := range c.Workers {
			w.Stop(ctx)
		}
		for _, co := range c.Coordinators {
			co.Stop(ctx)
		}
	})
	var seeds []string
	for i := 0; i < coordinators; i++ {
		name := "c" + string(rune('1'+i))
		co, err := node.StartCoordinator(node.CoordinatorConfig{
			Name: name, DataDir: filepath.Join(base, name),
			GRPCAddr: freeAddr(t), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t), GossipAddr: freeAddr(t),
			Join: seeds, Bootstrap: i == 0, FastGossip: true, FastRaft: true,
		})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		c.Coordinators = append(c.Coordinators, co)
		seeds = append(seeds, co.Gossip.LocalAddr())
	}
	for i := 0; i < workers; i++ {
		cfg := worker.DefaultConfig()
		cfg.Name, cfg.DataDir, cfg.MemoryMB = "w"+string(rune('1'+i)), filepath.Join(base, "w"+string(rune('1'+i))), 2048
		cfg.StemCells = 2 // a few, so cold starts use them without loading the machine
		w, err := node.StartWorker(node.WorkerConfig{Worker: cfg, GRPCAddr: freeAddr(t), GossipAddr: freeAddr(t), Join: seeds, FastGossip: true})
		if err != nil {
			t.Fatalf("start %s: %v", cfg.Name, err)
		}
		c.Workers = append(c.Workers, w)
	}
	c.waitFormed(t)
	return c
}

func (c *Cluster) waitFormed(t testing.TB) {
	t.Helper()
	cl := c.Client(t)
	testutil.Eventually(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, co := range c.Coordinators {
			peers, err := co.Store.Peers()
			if err != nil || len(peers) != len(c.Coordinators) {
				return false
			}
			one, err := client.New([]string{co.GRPCAddr()}, "")
			if err != nil {
				return false
			}
			nodes, err := one.ListNodes(ctx)
			one.Close()
			if err != nil {
				return false
			}
			alive := 0
			for _, n := range nodes {
				if n.GetStatus() == "alive" && (n.GetRole() == "coordinator" || n.GetMemoryMb() > 0) {
					alive++
				}
			}
			if alive != len(c.Coordinators)+len(c.Workers) {
				return false
			}
		}
		_, err := cl.ListFunctions(ctx)
		return err == nil
	}, "cluster of %d coordinators and %d workers never formed", len(c.Coordinators), len(c.Workers))
}

// Client returns an SDK client given every coordinator's address.
func (c *Cluster) Client(t testing.TB) *client.Client {
	t.Helper()
	var addrs []string
	for _, co := range c.Coordinators {
		addrs = append(addrs, co.GRPCAddr())
	}
	cl, err := client.New(addrs, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// ClientOf returns a client of one coordinator only.
func (c *Cluster) ClientOf(t testing.TB, i int) *client.Client {
	t.Helper()
	cl, err := client.New([]string{c.Coordinators[i].GRPCAddr()}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Addrs is every coordinator's gRPC address, comma-separated.
func (c *Cluster) Addrs() string {
	var addrs []string
	for _, co := range c.Coordinators {
		addrs = append(addrs, co.GRPCAddr())
	}
	return strings.Join(addrs, ",")
}

func freeAddr(t testing.TB) string { return testutil.FreeAddr(t) }
