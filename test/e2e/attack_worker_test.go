// Attacks on the worker from inside a sandbox (issue 14: H1, M3, L2): a
// Runtime API connection flood with endless headers, a log line that never
// ends, and a log flood. Each checks that gustd stays bounded (descriptors,
// heap, CPU) and that another function is served meanwhile.
package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// gustdStats is what the tests watch of the gustd process.
type gustdStats struct {
	fds     int
	heapMB  float64 // HeapInuse, from --pprof
	cpuSecs float64 // user + system
}

// sample reads d's descriptors, CPU and (with --pprof at pprof) heap.
func sample(t *testing.T, d *daemon, pprof string) gustdStats {
	t.Helper()
	pid := d.cmd.Process.Pid
	var s gustdStats
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(fds)
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			f := strings.Fields(string(stat[i+1:]))
			utime, _ := strconv.ParseFloat(f[11], 64)
			stime, _ := strconv.ParseFloat(f[12], 64)
			s.cpuSecs = (utime + stime) / 100 // USER_HZ
		}
	}
	if pprof != "" {
		resp, err := http.Get("http://" + pprof + "/debug/pprof/heap?debug=1")
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
					n, _ := strconv.ParseFloat(v, 64)
					s.heapMB = n / (1 << 20)
				}
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	return s
}

// TestAttackRuntimeAPIFlood: a function opening 2,000 Runtime API
// connections, 300 of them with a megabyte of unfinished headers, costs
// gustd a handful of descriptors and little heap; the flood is refused at
// once, another function is served meanwhile, and the flooding function's
// own runtime keeps working.
func TestAttackRuntimeAPIFlood(t *testing.T) {
	testutil.RequireRoot(t)
	pprof := freeAddr(t)
	d := startDaemon(t, "--stem-cells", "2", "--pprof", pprof)
	d.deploy(t, "rapi-flood", bin.probeZip, "--memory-mb", "512", "--timeout", "30s")
	d.deploy(t, "rapi-bystander", bin.probeZip)
	d.mustInvokeJSON(t, "rapi-flood", `{"action":"count"}`)
	d.mustInvokeJSON(t, "rapi-bystander", `{"action":"count"}`)
	before := sample(t, d, pprof)

	const hold = 6 * time.Second
	type result struct {
		env envelope
		r   cliResult
	}
	done := make(chan result, 1)
	go func() {
		r, err := runGust(d.grpc, "", "-o", "json", "invoke", "rapi-flood", "--payload",
			fmt.Sprintf(`{"action":"rapi-flood","args":{"parked":2000,"headers":300,"header_kb":1100,"hold_ms":%d}}`, hold.Milliseconds()))
		var env envelope
		if err == nil {
			err = json.Unmarshal([]byte(r.stdout), &env)
		}
		if err != nil {
			t.Errorf("flood invoke: %v\n%s", err, r)
		}
		done <- result{env, r}
	}()
	peak := before
	var bystander sync.WaitGroup
	bystander.Add(1)
	go func() {
		defer bystander.Done()
		time.Sleep(hold / 2) // into the flood
		if e, r := d.invokeJSON(t, "rapi-bystander", `{"action":"count"}`); r.code != 0 || e.FunctionError != "" {
			t.Errorf("another function failed during the flood:\n%s", r)
		}
	}()
	var res result
	for waiting := true; waiting; {
		select {
		case res = <-done:
			waiting = false
		case <-time.After(100 * time.Millisecond):
			s := sample(t, d, pprof)
			peak.fds, peak.heapMB = max(peak.fds, s.fds), max(peak.heapMB, s.heapMB)
		}
	}
	bystander.Wait()
	t.Logf("gustd before: %d fds, heap %.1f MB; peak during the flood: %d fds, heap %.1f MB; flood: %s",
		before.fds, before.heapMB, peak.fds, peak.heapMB, res.env.Payload)
	if res.r.code != 0 || res.env.FunctionError != "" {
		t.Fatalf("the flooding function's own invocation failed:\n%s", res.r)
	}
	// Unpatched, gustd took a descriptor for each of the 2,300 connections
	// and about 150 MB of heap for the headers.
	if grew := peak.fds - before.fds; grew > 100 {
		t.Errorf("gustd's descriptors grew by %d during the flood, want a few", grew)
	}
	if grew := peak.heapMB - before.heapMB; grew > 48 {
		t.Errorf("gustd's heap grew by %.1f MB during the flood, want a few", grew)
	}
	var st struct {
		Dialed  int `json:"dialed"`
		DialErr int `json:"dial_err"`
		Held    int `json:"held"`
	}
	decode(t, res.env.Payload, &st)
	if st.Dialed+st.DialErr != 2300 || st.Held > 8 {
		t.Errorf("flood: %+v; want at most 8 connections held (the runtime's limit), the rest refused", st)
	}
	d.mustInvokeJSON(t, "rapi-flood", `{"action":"count"}`)
}

// TestAttackLogNoNewline: a function writes 20 MB without a newline;
// `gust logs` shows all of it, in marked pieces of at most 64 KB, where
// it used to fail (a 20 MB gRPC message, mislabelled
// TooManyRequestsException).
func TestAttackLogNoNewline(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, "--stem-cells", "2")
	d.deploy(t, "log-nonl", bin.probeZip, "--timeout", "20s")
	// Paced under the log rate (4 MB/s after an 8 MB burst): all of it is kept.
	d.mustInvokeJSON(t, "log-nonl", `{"action":"log-flood","args":{"mb":20,"ms":15000,"mbps":5}}`)
	r := d.gust(t, "logs", "log-nonl")
	if r.code != 0 {
		t.Fatalf("gust logs: want exit 0, got exit %d: %s", r.code, r.stderr)
	}
	const mark = " [gust: line continues]"
	for _, line := range strings.Split(r.stdout, "\n") {
		if len(line) > 64<<10+len(mark) {
			t.Fatalf("gust logs printed a line of %d bytes, want pieces of at most 64 KB", len(line))
		}
	}
	if n := strings.Count(r.stdout, "x"); n < 20<<20 {
		t.Errorf("gust logs printed %d of the 20 MB written", n)
	}
	if n := strings.Count(r.stdout, mark); n < 20<<4 {
		t.Errorf("%d split marks, want the 20 MB line in pieces of 64 KB", n)
	}
}

// TestAttackLogFlood: a function writing to stdout as fast as it can
// costs gustd little CPU: what passes the rate is dropped, with a counted
// line in the function's log, and the metric counts it.
func TestAttackLogFlood(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, "--stem-cells", "2")
	d.deploy(t, "log-flood", bin.probeZip, "--timeout", "10s")
	d.mustInvokeJSON(t, "log-flood", `{"action":"count"}`)
	before := sample(t, d, "")
	d.mustInvokeJSON(t, "log-flood", `{"action":"sleep","n":4000}`)
	quiet := sample(t, d, "")
	e := d.mustInvokeJSON(t, "log-flood", `{"action":"log-flood","args":{"ms":4000,"newlines":true}}`)
	after := sample(t, d, "")
	flood := after.cpuSecs - quiet.cpuSecs
	t.Logf("gustd CPU for a 4 s sleep: %.2f s; for a 4 s flood: %.2f s; function: %s", quiet.cpuSecs-before.cpuSecs, flood, e.Payload)
	// Unpatched, the flood cost gustd 2.35 s of CPU on a 2-CPU test host.
	if flood > 1 {
		t.Errorf("a 4 s log flood cost gustd %.2f s of CPU, want well under 1 s", flood)
	}
	r := d.mustGust(t, "logs", "log-flood", "--since", "1m")
	i := strings.Index(r.stdout, "[gust] ")
	if i < 0 || !strings.Contains(r.stdout[i:], "bytes of log output dropped: rate over 4 MB/s\n") {
		t.Fatalf("no drop line in the flooded log (%d bytes)", len(r.stdout))
	}
	if !strings.Contains(r.stdout[i:], "\nEND RequestId: "+e.RequestID) {
		t.Errorf("the END line of the flooding invocation is not after the drop line")
	}
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	dropped := 0.0
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "gust_worker_log_dropped_bytes_total "); ok {
			dropped, _ = strconv.ParseFloat(v, 64)
		}
	}
	if dropped == 0 {
		t.Error("gust_worker_log_dropped_bytes_total did not count the dropped output")
	}
}
