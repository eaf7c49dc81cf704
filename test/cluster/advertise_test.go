package cluster_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
)

// TestAdvertise: nodes listening on every interface tell the others the
// address given by --advertise, and the cluster works through it; without
// --advertise such a node refuses to start and says why. The nodes run in
// a network namespace of their own, where every interface is loopback.
func TestAdvertise(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t)
	const host = "127.0.0.1"

	// Refused: others would dial 0.0.0.0, which is themselves.
	refused := proccluster.Command(ns, bins.Path("gustd"), "worker", "--name", "w0", "--data-dir", t.TempDir(),
		"--grpc", "0.0.0.0:7100", "--gossip", "127.0.0.1:7950", "--join", "127.0.0.1:7946")
	out, err := refused.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "--advertise") || !strings.Contains(string(out), "--grpc 0.0.0.0:7100") {
		t.Fatalf("worker on 0.0.0.0 without --advertise: %v\n%s", err, out)
	}

	c := &node{Name: "c1", Role: "coordinator", GRPC: "127.0.0.1:7070", NetNS: ns, DataDir: t.TempDir(), Gustd: bins.Path("gustd")}
	c.Args = []string{"coordinator", "--name", "c1", "--data-dir", c.DataDir, "--grpc", "0.0.0.0:7070", "--http", "0.0.0.0:7080",
		"--raft", "0.0.0.0:7090", "--gossip", "0.0.0.0:7946", "--advertise", host, "--bootstrap", "--gossip-fast"}
	w := &node{Name: "w1", Role: "worker", GRPC: "127.0.0.1:7100", NetNS: ns, DataDir: t.TempDir(), Gustd: bins.Path("gustd")}
	w.Args = []string{"worker", "--name", "w1", "--data-dir", w.DataDir, "--grpc", "0.0.0.0:7100", "--gossip", "0.0.0.0:7950",
		"--join", "127.0.0.1:7946", "--advertise", host, "--gossip-fast", "--memory-mb", "1024", "--stem-cells", "2"}
	for _, n := range []*node{c, w} {
		n.Start(t)
		defer n.Stop(t)
	}

	type member struct {
		Name, Role, Status, Address string
		Gossip                      string `json:"gossip_address"`
		MemoryMB                    int64  `json:"memory_mb"`
	}
	var nodes []member
	testutil.Eventually(t, 30*time.Second, func() bool {
		nodes = nil
		o, _, code := bins.GustIn(t, ns, c.GRPC, "-o", "json", "nodes")
		if code != 0 || json.Unmarshal([]byte(o), &nodes) != nil {
			return false
		}
		ready := 0
		for _, m := range nodes {
			if m.Status == "alive" && (m.Role != "worker" || m.MemoryMB > 0) {
				ready++
			}
		}
		return ready == 2
	}, "the coordinator never saw itself and the worker ready; logs:\n%s\n%s", c.LogTail(2000), w.LogTail(2000))
	want := map[string][2]string{"c1": {"127.0.0.1:7070", "127.0.0.1:7946"}, "w1": {"127.0.0.1:7100", "127.0.0.1:7950"}}
	for _, m := range nodes {
		if got := [2]string{m.Address, m.Gossip}; got != want[m.Name] {
			t.Errorf("%s advertises %v, want %v", m.Name, got, want[m.Name])
		}
	}
	var peers []proccluster.Peer
	if o, _, code := bins.GustIn(t, ns, c.GRPC, "-o", "json", "raft", "peers"); code != 0 || json.Unmarshal([]byte(o), &peers) != nil ||
		len(peers) != 1 || peers[0].Address != "127.0.0.1:7090" {
		t.Errorf("raft peers: %s (want c1 at 127.0.0.1:7090)", o)
	}

	// The coordinator reaches the worker at its advertised address.
	if o, e, code := bins.GustIn(t, ns, c.GRPC, "fn", "deploy", "hello", "--code", zipFunction(t)); code != 0 {
		t.Fatalf("deploy: %s%s", o, e)
	}
	o, e, code := bins.GustIn(t, ns, c.GRPC, "-o", "json", "invoke", "hello", "--payload", `{"name":"advertise"}`)
	var env envelope
	if code != 0 || json.Unmarshal([]byte(o), &env) != nil || env.Worker != "w1" || !strings.Contains(string(env.Payload), "advertise") {
		t.Fatalf("invoke through the advertised worker: exit %d\n%s%s\nworker log:\n%s", code, o, e, w.LogTail(2000))
	}
}
