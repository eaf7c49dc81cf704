package cluster_test

// Durable events on a real cluster: acknowledged async events survive the
// leader's death, and a schedule keeps its rate across a leader kill with
// no tick fired twice.

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
)

func TestAsyncEventsSurviveLeaderDeath(t *testing.T) {
	c := startCluster(t)
	c.WaitHealthy(t, 45*time.Second, 5, 3)
	all := proccluster.Addrs(c.Coordinators...)
	if out, stderr, exit := bins.Gust(t, all, "fn", "deploy", "ev", "--code", probeCode(t)); exit != 0 {
		t.Fatalf("deploy: %s %s", out, stderr)
	}
	// The burst starts right after the deploy: a coordinator that has not
	// applied the function yet must catch up rather than answer not-found.
	leader := c.WaitLeader(t, c.Coordinators, 15*time.Second)
	// 60 acknowledged events, sent through every coordinator at once.
	ids := make([]string, 60)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			co := c.Coordinators[i%3]
			out, stderr, exit := bins.Gust(t, co.GRPC, "invoke", "ev", "--async", "--payload", `{"action":"span","n":200}`)
			if exit != 0 {
				t.Errorf("enqueue %d via %s: %s", i, co.Name, stderr)
				return
			}
			ids[i] = strings.TrimSpace(out)
		}()
	}
	wg.Wait()
	leader.Kill9()
	rest := c.Followers(leader)
	addrs := proccluster.Addrs(rest...)
	for _, id := range ids {
		if id == "" {
			continue
		}
		var v struct{ Status string }
		testutil.Eventually(t, 60*time.Second, func() bool {
			out, _, exit := bins.Gust(t, addrs, "-o", "json", "invocation", "get", id)
			return exit == 0 && json.Unmarshal([]byte(out), &v) == nil && v.Status == "succeeded"
		}, "acknowledged event %s ended %q after the leader died", id, v.Status)
	}
}

func TestScheduleKeepsRateAcrossLeaderKill(t *testing.T) {
	c := startCluster(t)
	c.WaitHealthy(t, 45*time.Second, 5, 3)
	all := proccluster.Addrs(c.Coordinators...)
	if out, stderr, exit := bins.Gust(t, all, "fn", "deploy", "tick", "--code", probeCode(t)); exit != 0 {
		t.Fatalf("deploy: %s %s", out, stderr)
	}
	if out, stderr, exit := bins.Gust(t, all, "schedule", "add", "every1s", "--function", "tick", "--cron", "@every 1s",
		"--payload", `{"action":"echo"}`); exit != 0 {
		t.Fatalf("schedule add: %s %s", out, stderr)
	}
	fired := func(addrs string) int64 {
		var list []struct {
			Name  string
			Fired int64
		}
		if !bins.GustJSON(t, addrs, &list, "schedule", "ls") {
			return -1
		}
		for _, s := range list {
			if s.Name == "every1s" {
				return s.Fired
			}
		}
		return -1
	}
	start := fired(all)
	time.Sleep(6 * time.Second)
	n := fired(all) - start
	t.Logf("%d ticks in 6 s", n)
	if n < 4 || n > 7 {
		t.Fatalf("@every 1s fired %d times in 6 s", n)
	}
	leader := c.WaitLeader(t, c.Coordinators, 15*time.Second)
	before := fired(all)
	leader.Kill9()
	rest := c.Followers(leader)
	time.Sleep(6 * time.Second)
	after := fired(proccluster.Addrs(rest...))
	t.Logf("%d ticks in the 6 s after killing the leader", after-before)
	if after-before < 4 || after-before > 7 {
		t.Fatalf("across a leader kill @every 1s fired %d times in 6 s", after-before)
	}
}
