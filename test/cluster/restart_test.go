package cluster_test

import (
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// TestBootstrapRestart: the coordinator that bootstrapped the cluster is
// stopped cleanly (it leaves gossip, so the others stop looking for it)
// and started again with the same flags and data dir, --bootstrap and no
// --join. It must find the cluster again, from the gossip peers it saved
// in its data dir, and serve invokes, which needs the workers in its view,
// not only its Raft state.
func TestBootstrapRestart(t *testing.T) {
	testutil.RequireRoot(t)
	c := &cluster{t: t}
	c1 := newCoordinator(t, "c1", "")
	c2 := newCoordinator(t, "c2", c1.gossip)
	c3 := newCoordinator(t, "c3", c1.gossip)
	w1 := newWorker(t, "w1", c1.gossip+","+c2.gossip)
	c.coords, c.works = []*node{c1, c2, c3}, []*node{w1}
	for _, n := range []*node{c1, c2, c3, w1} {
		n.start(t)
	}
	t.Cleanup(func() {
		for _, n := range []*node{w1, c3, c2, c1} {
			n.stop(t)
		}
		if t.Failed() {
			for _, n := range []*node{c1, c2, c3, w1} {
				t.Logf("---- %s log ----\n%s", n.name, tail(n.log.String(), 3000))
			}
		}
	})
	c.waitHealthy(t, 30*time.Second, 4, 3)
	if out, stderr, code := gust(t, c1.grpc, "fn", "deploy", "hello", "--code", zipFunction(t)); code != 0 {
		t.Fatalf("deploy: %s%s", out, stderr)
	}

	c1.stop(t)
	testutil.Eventually(t, 15*time.Second, func() bool {
		var nodes []nodeView
		if !gustJSON(t, c2.grpc, &nodes, "nodes") {
			return false
		}
		for _, n := range nodes {
			if n.Name == "c1" && n.Status == "alive" {
				return false
			}
		}
		return true
	}, "c2 still sees c1 alive after it stopped")

	c1.start(t)
	testutil.Eventually(t, 30*time.Second, func() bool {
		e, err := invoke(t, c1.grpc, "hello")
		return err == nil && e.Worker == "w1"
	}, "the restarted c1 never served an invoke")
	c.waitHealthy(t, 30*time.Second, 4, 3)
}
