package node_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/node"
)

// A coordinator that gossip announces but that cannot prove the cluster
// secret on its node port is never made a Raft voter: it would count
// towards every quorum without ever voting. One with the secret is.
func TestOnlyProvenCoordinatorsBecomeVoters(t *testing.T) {
	base := t.TempDir()
	start := func(name string, secret nodeauth.Secret, join []string) *node.Coordinator {
		t.Helper()
		co, err := node.StartCoordinator(node.CoordinatorConfig{
			Name: name, DataDir: filepath.Join(base, name),
			GRPCAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), GossipAddr: testutil.FreeAddr(t),
			Join: join, Bootstrap: len(join) == 0, FastGossip: true, FastRaft: true, ClusterSecret: secret,
		})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			co.Stop(ctx)
		})
		return co
	}
	c1 := start("c1", testSecret, nil)
	seed := []string{c1.Gossip.LocalAddr()}
	stranger := start("x1", nodeauth.Secret("not-the-cluster-secret"), seed)
	start("c2", testSecret, seed)

	voters := func() map[string]bool {
		peers, err := c1.Store.Peers()
		if err != nil {
			return nil
		}
		out := map[string]bool{}
		for _, p := range peers {
			out[p.ID] = true
		}
		return out
	}
	testutil.Eventually(t, 20*time.Second, func() bool { return voters()["c2"] }, "c2, which holds the secret, never became a voter")
	// The stranger is alive in gossip all along; give the leader a few of
	// its reconcile rounds more to (wrongly) add it.
	testutil.Eventually(t, 10*time.Second, func() bool {
		for _, m := range c1.Gossip.Members() {
			if m.Name == stranger.Name() {
				return true
			}
		}
		return false
	}, "the stranger never joined gossip")
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if voters()["x1"] {
			t.Fatal("a coordinator without the cluster secret was made a raft voter")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
