package testcluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/testutil"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/sandbox"
	"github.com/gustfaas/gust/test/testcluster"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

func probeZip(t *testing.T) []byte {
	t.Helper()
	bin := testutil.BuildStatic(t, "../../test/e2e/testdata/probe", filepath.Join(t.TempDir(), "bootstrap"))
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.BootstrapZip(t, data)
}

// Two coordinators that both see one idle sandbox and both send an
// invocation to it: the worker gives it to one; the other places again and
// gets a fresh sandbox. Neither fails, and no sandbox runs two at once.
func TestTwoCoordinatorsRaceForOneIdleSandbox(t *testing.T) {
	c := testcluster.New(t, 2, 1)
	ctx := context.Background()
	code := probeZip(t)
	c1, c2 := c.ClientOf(t, 0), c.ClientOf(t, 1)
	for round := 0; round < 3; round++ {
		name := "race" + string(rune('a'+round))
		if _, err := c.Client(t).Deploy(ctx, &gustv1.FunctionConfig{Name: name}, bytes.NewReader(code)); err != nil {
			t.Fatal(err)
		}
		first, err := c1.Invoke(ctx, &gustv1.InvokeRequest{Function: name, Payload: []byte(`{"action":"count"}`)})
		if err != nil || first.GetFunctionError() != "" {
			t.Fatalf("warm-up: %v %s", err, first.GetPayload())
		}
		// Both coordinators' views must show the idle sandbox before the race.
		testutil.Eventually(t, 5*time.Second, func() bool {
			list, err := c2.ListSandboxes(ctx, "")
			n := 0
			for _, sb := range list {
				if sb.GetFunction() == name+":$LATEST" && sb.GetState() != "busy" {
					n++
				}
			}
			return err == nil && n == 1
		}, "idle sandbox never listed: %v", func() any { l, err := c2.ListSandboxes(ctx, ""); return fmt.Sprint(l, err) }())
		// And both coordinators' placement views (fed by the worker's pool
		// stream) must have caught up with the worker's own count.
		testutil.Eventually(t, 5*time.Second, func() bool {
			list, err := c2.ListSandboxes(ctx, "")
			if err != nil {
				return false
			}
			for _, cl := range []*client.Client{c1, c2} {
				nodes, err := cl.ListNodes(ctx)
				if err != nil {
					return false
				}
				for _, n := range nodes {
					if n.GetName() == "w1" && int(n.GetSandboxes()) != len(list) {
						return false
					}
				}
			}
			return true
		}, "coordinators' views never caught up")
		var wg sync.WaitGroup
		results := make([]*gustv1.InvokeResponse, 2)
		errs := make([]error, 2)
		for i, cl := range []*client.Client{c1, c2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = cl.Invoke(ctx, &gustv1.InvokeRequest{Function: name, Payload: []byte(`{"action":"sleep","n":500}`)})
			}()
		}
		wg.Wait()
		for i := range results {
			if errs[i] != nil || results[i].GetFunctionError() != "" {
				t.Fatalf("round %d invoke %d: %v %s", round, i, errs[i], results[i].GetPayload())
			}
		}
		if results[0].GetSandbox() == results[1].GetSandbox() {
			t.Fatalf("round %d: both overlapping invocations ran in sandbox %s", round, results[0].GetSandbox())
		}
		warm := 0
		for _, r := range results {
			if !r.GetColdStart() {
				warm++
				if r.GetSandbox() != first.GetSandbox() {
					t.Fatalf("round %d: warm invoke in %s, not the idle %s", round, r.GetSandbox(), first.GetSandbox())
				}
			}
		}
		if warm != 1 {
			t.Fatalf("round %d: %d of 2 racing invokes were warm; want exactly 1", round, warm)
		}
	}
}

// A follower forwards deploys to the leader and serves the result locally.
func TestDeployThroughFollowerInProcess(t *testing.T) {
	c := testcluster.New(t, 3, 1)
	ctx := context.Background()
	follower := 0
	for i, co := range c.Coordinators {
		if !co.Store.IsLeader() {
			follower = i
			break
		}
	}
	cl := c.ClientOf(t, follower)
	if _, err := cl.Deploy(ctx, &gustv1.FunctionConfig{Name: "f"}, bytes.NewReader(probeZip(t))); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Invoke(ctx, &gustv1.InvokeRequest{Function: "f", Payload: []byte(`{"action":"count"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Count int }
	if err := json.Unmarshal(res.GetPayload(), &out); err != nil || out.Count != 1 || res.GetWorker() != "w1" {
		t.Fatalf("payload %s worker %s: %v", res.GetPayload(), res.GetWorker(), err)
	}
}

// Provisioned concurrency: N sandboxes are started and kept warm before
// any invocation, the first invocation is warm, and when the worker that
// held them is lost they are started again elsewhere.
func TestProvisionedConcurrency(t *testing.T) {
	c := testcluster.New(t, 1, 2)
	ctx := context.Background()
	cl := c.Client(t)
	if _, err := cl.Deploy(ctx, &gustv1.FunctionConfig{Name: "prov"}, bytes.NewReader(probeZip(t))); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutFunctionConcurrency(ctx, "prov", 0, 2); err != nil {
		t.Fatal(err)
	}
	provisioned := func() map[string]int {
		list, err := cl.ListSandboxes(ctx, "")
		if err != nil {
			return nil
		}
		per := map[string]int{}
		for _, sb := range list {
			// A provisioned sandbox counts once initialised (idle or frozen):
			// while it starts it is listed busy and cannot serve yet.
			if sb.GetFunction() == "prov:$LATEST" && sb.GetState() != "busy" {
				per[sb.GetNode()]++
			}
		}
		return per
	}
	total := func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	testutil.Eventually(t, 15*time.Second, func() bool { return total(provisioned()) == 2 }, "2 provisioned sandboxes never started: %v", provisioned())
	// Placement sees them once the workers' pool streams have reported them.
	testutil.Eventually(t, 5*time.Second, func() bool {
		nodes, err := cl.ListNodes(ctx)
		if err != nil {
			return false
		}
		n := int32(0)
		for _, nd := range nodes {
			n += nd.GetSandboxes()
		}
		return n == 2
	}, "the coordinator's view never showed the provisioned sandboxes")
	res, err := cl.Invoke(ctx, &gustv1.InvokeRequest{Function: "prov", Payload: []byte(`{"action":"count"}`)})
	if err != nil || res.GetColdStart() {
		t.Fatalf("first invoke of a provisioned function: cold=%v err=%v", res.GetColdStart(), err)
	}
	// The cold starts were made ahead, and the metrics say so.
	testutil.Eventually(t, 5*time.Second, func() bool {
		resp, err := http.Get("http://" + c.Coordinators[0].HTTPAddr() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `gust_cold_starts_total{function="prov",reason="provisioned",version="$LATEST"} 2`)
	}, "/metrics never counted 2 provisioned cold starts of prov")
	// Lose a worker that holds some: they come back on the other.
	var lost string
	for w, n := range provisioned() {
		if n > 0 {
			lost = w
			break
		}
	}
	for _, w := range c.Workers {
		if w.Name() == lost {
			stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
			w.Stop(stopCtx)
			cancel()
		}
	}
	testutil.Eventually(t, 20*time.Second, func() bool {
		m := provisioned()
		return total(m) == 2 && m[lost] == 0
	}, "provisioned sandboxes were not re-created after losing %s: %v", lost, provisioned())
}

// A coordinator that is gone can be removed from Raft by name; the
// remaining two keep a quorum and accept writes. (A live coordinator that
// is removed is added back by the leader while it stays in gossip: stop it
// first.)
func TestRaftRemoveGoneCoordinator(t *testing.T) {
	c := testcluster.New(t, 3, 0)
	ctx := context.Background()
	gone := c.Coordinators[2]
	if gone.Store.IsLeader() {
		gone = c.Coordinators[1]
	}
	gone.Kill()
	var live *client.Client
	for i, co := range c.Coordinators {
		if co != gone {
			live = c.ClientOf(t, i)
			break
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		nodes, err := live.ListNodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.GetName() == gone.Name() && n.GetStatus() != "alive" {
				return true
			}
		}
		return false
	}, "gossip never saw the killed coordinator go")
	if err := live.RemoveRaftPeer(ctx, gone.Name()); err != nil {
		t.Fatal(err)
	}
	peers, err := live.ListRaftPeers(ctx)
	if err != nil || len(peers) != 2 {
		t.Fatalf("peers after remove: %v %v", peers, err)
	}
	if err := live.RemoveRaftPeer(ctx, "nope"); err == nil {
		t.Fatal("removing an unknown peer succeeded")
	}
	if _, err := live.SetQuota(ctx, "", 500); err != nil {
		t.Fatalf("write after remove: %v", err)
	}
}
