package cluster_test

import (
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
)

// TestBootstrapRestart: the coordinator that bootstrapped the cluster is
// stopped cleanly (it leaves gossip, so the others stop looking for it)
// and started again with the same flags and data dir, --bootstrap and no
// --join. It must find the cluster again, from the gossip peers it saved
// in its data dir, and serve invokes, which needs the workers in its view,
// not only its Raft state.
func TestBootstrapRestart(t *testing.T) {
	testutil.RequireRoot(t)
	c1 := bins.NewCoordinator(t, "c1", "")
	c2 := bins.NewCoordinator(t, "c2", c1.Gossip)
	c3 := bins.NewCoordinator(t, "c3", c1.Gossip)
	w1 := bins.NewWorker(t, "w1", c1.Gossip+","+c2.Gossip)
	c := bins.Start(t, []*node{c1, c2, c3}, []*node{w1}, proccluster.Options{LogTail: 3000})
	c.WaitHealthy(t, 30*time.Second, 4, 3)
	if out, stderr, code := bins.Gust(t, c1.GRPC, "fn", "deploy", "hello", "--code", zipFunction(t)); code != 0 {
		t.Fatalf("deploy: %s%s", out, stderr)
	}

	c1.Stop(t)
	testutil.Eventually(t, 15*time.Second, func() bool {
		var nodes []proccluster.Member
		if !bins.GustJSON(t, c2.GRPC, &nodes, "nodes") {
			return false
		}
		for _, n := range nodes {
			if n.Name == "c1" && n.Status == "alive" {
				return false
			}
		}
		return true
	}, "c2 still sees c1 alive after it stopped")

	c1.Start(t)
	testutil.Eventually(t, 30*time.Second, func() bool {
		e, err := invoke(t, c1.GRPC, "hello")
		return err == nil && e.Worker == "w1"
	}, "the restarted c1 never served an invoke")
	c.WaitHealthy(t, 30*time.Second, 4, 3)
}
