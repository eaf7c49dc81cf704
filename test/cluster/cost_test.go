package cluster_test

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
)

// TestCostAnyCoordinator: gust cost sums every worker's usage rollup, so
// each coordinator reports the same invocations and the billed time the
// invocations themselves reported, whichever coordinator admitted them.
func TestCostAnyCoordinator(t *testing.T) {
	c := startCluster(t)
	c.WaitHealthy(t, 45*time.Second, 5, 3)
	all := proccluster.Addrs(c.Coordinators...)
	if out, stderr, exit := bins.Gust(t, all, "fn", "deploy", "billed", "--code", zipFunction(t), "--memory-mb", "256"); exit != 0 {
		t.Fatalf("deploy: exit %d %s %s", exit, out, stderr)
	}
	for _, n := range c.Coordinators {
		testutil.Eventually(t, 10*time.Second, func() bool {
			_, _, exit := bins.Gust(t, n.GRPC, "fn", "get", "billed")
			return exit == 0
		}, "%s never saw the function", n.Name)
	}

	// Several at once, through every coordinator, so both workers may serve.
	const clients, each = 4, 4
	var mu sync.Mutex
	var billedMs int64
	workers := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				n := c.Coordinators[(i+j)%len(c.Coordinators)]
				var e struct {
					Worker        string `json:"worker"`
					Billed        int64  `json:"billed_duration_ms"`
					FunctionError string `json:"function_error"`
				}
				out, stderr, code := bins.Gust(t, n.GRPC, "-o", "json", "invoke", "billed", "--payload", `{"name":"cost"}`)
				if code != 0 || json.Unmarshal([]byte(out), &e) != nil || e.FunctionError != "" {
					errs <- fmt.Errorf("invoke via %s failed: exit %d %s %s", n.Name, code, out, stderr)
					continue
				}
				mu.Lock()
				billedMs += e.Billed
				workers[e.Worker]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("invocations per worker: %v", workers)

	type costLine struct {
		Invocations int64   `json:"invocations"`
		BilledMs    int64   `json:"billed_ms"`
		GBSeconds   float64 `json:"gb_seconds"`
	}
	var report struct {
		Functions []costLine `json:"functions"`
		Workers   int        `json:"workers"`
		Missing   []string   `json:"missing_workers"`
	}
	wantGBs := float64(billedMs) * 256 / 1024 / 1000
	for _, n := range c.Coordinators {
		testutil.Eventually(t, 10*time.Second, func() bool {
			return bins.GustJSON(t, n.GRPC, &report, "cost", "billed") && report.Workers == 2 && len(report.Functions) == 1
		}, "gust cost via %s never heard from both workers: %+v", n.Name, report)
		got := report.Functions[0]
		if got.Invocations != clients*each || got.BilledMs != billedMs || math.Abs(got.GBSeconds-wantGBs) > 1e-9 || len(report.Missing) != 0 {
			t.Errorf("gust cost via %s: %+v, missing %v; want %d invocations, %d ms, %.6f GB-s", n.Name, got, report.Missing,
				clients*each, billedMs, wantGBs)
		}
	}
}
