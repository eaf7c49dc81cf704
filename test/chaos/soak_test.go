package chaos_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestSoak (make soak; GUST_SOAK=10m) runs mixed load on a 3-coordinator,
// 2-worker cluster: warm invocations, async events, a schedule, new
// versions (cold starts), functions made and removed, log reads. Every
// node's goroutines, resident memory and open files are sampled from its
// /metrics; after the warm-up they must stay flat. A leak of one goroutine,
// buffer or descriptor per invocation shows within minutes.
func TestSoak(t *testing.T) {
	v := os.Getenv("GUST_SOAK")
	if v == "" {
		t.Skip("set GUST_SOAK=DURATION (make soak) to run the soak test")
	}
	total, err := time.ParseDuration(v)
	if err != nil || total < 30*time.Second {
		t.Fatalf("GUST_SOAK=%q: want a duration of at least 30s", v)
	}
	testutil.RequireRoot(t)
	// Sandboxes of replaced versions and removed functions are retired
	// after this keep-alive, so their number (and with it the workers'
	// goroutines and descriptors) levels off within the warm-up. (Under
	// 11 s the adaptive keep-alive is exactly this fixed one.)
	workerArgs = []string{"--keep-alive", "10s"}
	t.Cleanup(func() { workerArgs = nil })
	c := startCluster(t, nil)
	c.WaitHealthy(t, 60*time.Second, 5, 3)
	all := proccluster.Addrs(c.Coordinators...)
	for _, fn := range []string{"soak", "ev", "ver"} {
		bins.MustGust(t, all, "fn", "deploy", fn, "--code", probeDir(), "--timeout", "10s")
	}
	bins.MustGust(t, all, "schedule", "add", "tick", "--function", "ev", "--cron", "@every 2s", "--payload", `{"action":"echo"}`)

	var ops, fails atomic.Int64
	count := func(ok bool) {
		ops.Add(1)
		if !ok {
			fails.Add(1)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(pause time.Duration, f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
				f(i)
			}
		}()
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	post := func(co *node, fn, invType, body string) bool {
		req, _ := http.NewRequest("POST", "http://"+co.HTTP+"/2015-03-31/functions/"+fn+"/invocations", strings.NewReader(body))
		if invType != "" {
			req.Header.Set("X-Amz-Invocation-Type", invType)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200 || resp.StatusCode == 202
	}
	// Warm invocations from 4 clients over every coordinator.
	for g := range 4 {
		loop(2*time.Millisecond, func(i int) { count(post(c.Coordinators[(g+i)%3], "soak", "", `{"action":"echo"}`)) })
	}
	// Async events.
	loop(50*time.Millisecond, func(i int) { count(post(c.Coordinators[i%3], "ev", "Event", `{"action":"echo"}`)) })
	// A new version every 10 s: its first invocations are cold.
	loop(10*time.Second, func(i int) {
		_, _, code := bins.Gust(t, all, "fn", "deploy", "ver", "--code", probeDir(), "--env", "N="+strconv.Itoa(i))
		count(code == 0 && post(c.Coordinators[i%3], "ver", "", `{"action":"echo"}`))
	})
	// A function made, invoked and removed every 15 s.
	loop(15*time.Second, func(i int) {
		name := fmt.Sprintf("tmp%d", i)
		_, _, c1 := bins.Gust(t, all, "fn", "deploy", name, "--code", probeDir())
		ok := c1 == 0 && post(c.Coordinators[i%3], name, "", `{"action":"echo"}`)
		_, _, c2 := bins.Gust(t, all, "fn", "rm", name)
		count(ok && c2 == 0)
	})
	// Log reads.
	loop(5*time.Second, func(int) {
		_, _, code := bins.Gust(t, all, "logs", "soak")
		count(code == 0)
	})

	// Sample every node while the load runs.
	type sample struct{ goroutines, rssMB, fds float64 }
	nodes := c.All()
	samples := make([][]sample, len(nodes))
	every := max(total/60, 5*time.Second)
	began := time.Now()
	for time.Since(began) < total {
		time.Sleep(every)
		for i, n := range nodes {
			m, err := scrape(hc, n.HTTP)
			if err != nil {
				t.Errorf("%s /metrics: %v", n.Name, err)
				continue
			}
			samples[i] = append(samples[i], sample{m["go_goroutines"], m["process_resident_memory_bytes"] / (1 << 20), m["process_open_fds"]})
		}
		if t.Failed() {
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("soak: %v of load, %d operations, %d failed", time.Since(began).Round(time.Second), ops.Load(), fails.Load())
	if f := fails.Load(); f*100 > ops.Load() {
		t.Errorf("%d of %d operations failed (more than 1%%)", f, ops.Load())
	}

	// Flat: the median of the last fifth is within a margin of the median
	// of the fifth after the warm-up (the first fifth: pools, caches and
	// connections filling).
	median := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-4s %-11s %9s %9s %9s  %s\n", "node", "metric", "baseline", "final", "limit", "verdict")
	for i, n := range nodes {
		ss := samples[i]
		if len(ss) < 10 {
			t.Errorf("%s: only %d samples", n.Name, len(ss))
			continue
		}
		fifth := len(ss) / 5
		for _, m := range []struct {
			name        string
			get         func(sample) float64
			ratio, plus float64
		}{
			{"goroutines", func(s sample) float64 { return s.goroutines }, 1.2, 20},
			{"rss_mb", func(s sample) float64 { return s.rssMB }, 1.3, 24},
			{"open_fds", func(s sample) float64 { return s.fds }, 1.2, 20},
		} {
			var base, last []float64
			for _, s := range ss[fifth : 2*fifth] {
				base = append(base, m.get(s))
			}
			for _, s := range ss[len(ss)-fifth:] {
				last = append(last, m.get(s))
			}
			b, f := median(base), median(last)
			limit := b*m.ratio + m.plus
			verdict := "flat"
			if f > limit {
				verdict = "GROWING"
				t.Errorf("%s %s grew from %.0f to %.0f (limit %.0f)", n.Name, m.name, b, f, limit)
			}
			fmt.Fprintf(&table, "%-4s %-11s %9.0f %9.0f %9.0f  %s\n", n.Name, m.name, b, f, limit, verdict)
		}
	}
	fmt.Print("soak (" + total.String() + ")\n" + table.String())
	t.Log("\n" + table.String())
}

// scrape reads the gauges of a node's /metrics page, by metric name (the
// ones read here have no labels).
func scrape(hc *http.Client, addr string) (map[string]float64, error) {
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range families {
		if ms := f.GetMetric(); len(ms) == 1 && ms[0].GetGauge() != nil {
			out[name] = ms[0].GetGauge().GetValue()
		}
	}
	return out, nil
}
