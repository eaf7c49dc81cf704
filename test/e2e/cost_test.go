package e2e

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// costView is the part of `gust cost -o json` the test reads.
type costView struct {
	Functions []costLineView `json:"functions"`
	Total     costLineView   `json:"total"`
	Workers   int            `json:"workers"`
	Missing   []string       `json:"missing_workers"`
}

type costLineView struct {
	Function    string   `json:"function"`
	Invocations int64    `json:"invocations"`
	BilledMs    int64    `json:"billed_ms"`
	GBSeconds   float64  `json:"gb_seconds"`
	RequestCost float64  `json:"request_cost"`
	ComputeCost float64  `json:"compute_cost"`
	TotalCost   float64  `json:"total_cost"`
	BreakEven   *float64 `json:"break_even_utilisation"`
}

var reportLine = regexp.MustCompile(`REPORT RequestId: (\S+)\tDuration: [0-9.]+ ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB`)

// TestCost: `gust cost NAME -o json` counts every invocation, sync and
// async, and bills the GB-seconds the REPORT lines imply; the rollup
// survives a restart; `gust cost` with no name lists it too.
func TestCost(t *testing.T) {
	d := startDaemon(t)
	d.deploy(t, "bill", bin.probeDir, "--memory-mb", "256")
	const n = 6
	for i := 0; i < n; i++ {
		d.mustInvokeJSON(t, "bill", `{"action":"sleep","n":20}`)
	}
	id := strings.TrimSpace(d.mustGust(t, "invoke", "bill", "--async", "--payload", `{"action":"echo"}`).stdout)
	d.waitInvocation(t, id, 20*time.Second, func(v invocationView) bool { return v.Status == "succeeded" })

	// What the REPORT lines say was billed.
	var wantMs int64
	var wantGBs float64
	requests := map[string]bool{}
	testutil.Eventually(t, 10*time.Second, func() bool {
		wantMs, wantGBs = 0, 0
		clear(requests)
		for _, m := range reportLine.FindAllStringSubmatch(d.mustGust(t, "logs", "bill").stdout, -1) {
			ms, _ := strconv.ParseInt(m[2], 10, 64)
			mb, _ := strconv.ParseInt(m[3], 10, 64)
			if mb != 256 {
				t.Fatalf("REPORT line says Memory Size %d MB, want 256: %s", mb, m[0])
			}
			requests[m[1]] = true
			wantMs += ms
			wantGBs += float64(ms) * float64(mb) / 1024 / 1000
		}
		return len(requests) == n+1
	}, "logs never had %d REPORT lines", n+1)

	check := func(d *daemon, args ...string) costLineView {
		t.Helper()
		var c costView
		var line costLineView
		testutil.Eventually(t, 10*time.Second, func() bool {
			decode(t, []byte(d.mustGust(t, append([]string{"-o", "json", "cost"}, args...)...).stdout), &c)
			for _, l := range c.Functions {
				if l.Function == "bill" {
					line = l
				}
			}
			return line.Invocations == n+1
		}, "gust cost %v never counted %d invocations: %+v", args, n+1, c)
		if line.BilledMs != wantMs || math.Abs(line.GBSeconds-wantGBs) > 1e-9 {
			t.Errorf("gust cost %v: billed %d ms, %.9f GB-s; the REPORT lines say %d ms, %.9f GB-s", args, line.BilledMs, line.GBSeconds, wantMs, wantGBs)
		}
		if want := float64(n+1) / 1e6 * 0.20; math.Abs(line.RequestCost-want) > 1e-15 {
			t.Errorf("request cost %g, want %g", line.RequestCost, want)
		}
		if want := wantGBs * 0.0000166667; math.Abs(line.ComputeCost-want) > 1e-15 {
			t.Errorf("compute cost %g, want %g", line.ComputeCost, want)
		}
		if line.BreakEven == nil || *line.BreakEven <= 0 {
			t.Errorf("no break-even utilisation: %+v", line)
		}
		if c.Workers != 1 || len(c.Missing) != 0 {
			t.Errorf("workers %d, missing %v; want 1 and none", c.Workers, c.Missing)
		}
		return line
	}
	check(d, "bill")
	check(d, "--since", "1h")
	check(d) // every function

	// Text output: a row for the function and a total.
	text := d.mustGust(t, "cost", "bill").stdout
	if !regexp.MustCompile(`(?m)^bill\s+7\s`).MatchString(text) || !regexp.MustCompile(`(?m)^TOTAL\s+7\s`).MatchString(text) {
		t.Errorf("gust cost text output:\n%s", text)
	}
	if r := d.gust(t, "cost", "no-such-function"); r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
		t.Errorf("cost of a missing function: %s", r)
	}

	// The rollup survives a restart on the same data dir.
	if _, inTime := d.stop(syscall.SIGTERM, 30*time.Second); !inTime {
		t.Fatal("gustd did not stop on SIGTERM")
	}
	d2 := startDaemonAt(t, d.dataDir, d.grpc, d.http)
	check(d2, "bill")
}

// TestLogsSince: `gust logs NAME --since DUR` keeps only the lines written
// in the last DUR, and --timestamps and -o json show when each was written.
func TestLogsSince(t *testing.T) {
	d := startDaemon(t)
	d.deploy(t, "since", bin.probeDir)
	d.mustInvokeJSON(t, "since", `{"action":"log","line":"written before the window"}`)
	beforeDone := time.Now()
	// The window's edge needs a gap in time between the two invocations,
	// wide enough that a slow CLI start cannot move a line across it.
	const gap, margin = 4 * time.Second, 2 * time.Second
	time.Sleep(time.Until(beforeDone.Add(gap)))
	insideStart := time.Now()
	inside := d.mustInvokeJSON(t, "since", `{"action":"log","line":"written inside the window"}`)
	since := time.Since(insideStart) + margin // the "before" lines are at least gap-margin older than that

	out := d.mustGust(t, "logs", "since", "--since", since.Round(time.Millisecond).String()).stdout
	if strings.Contains(out, "written before the window") {
		t.Errorf("logs --since %s printed a line written %s ago:\n%s", since, time.Since(beforeDone), out)
	}
	for _, want := range []string{"written inside the window", "START RequestId: " + inside.RequestID, "REPORT RequestId: " + inside.RequestID} {
		if !strings.Contains(out, want) {
			t.Errorf("logs --since %s lacks %q:\n%s", since, want, out)
		}
	}
	if all := d.mustGust(t, "logs", "since").stdout; !strings.Contains(all, "written before the window") || !strings.Contains(all, "written inside the window") {
		t.Errorf("logs without --since lacks a line:\n%s", all)
	}

	stamped := d.mustGust(t, "logs", "since", "--timestamps").stdout
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)
	for _, line := range strings.Split(strings.TrimSuffix(stamped, "\n"), "\n") {
		if !stamp.MatchString(line) {
			t.Errorf("logs --timestamps: line without a time: %q", line)
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z", line[:24])
		if err != nil || time.Since(at) < 0 || time.Since(at) > time.Minute {
			t.Errorf("logs --timestamps: time %q is not of this test (%v)", line[:24], err)
		}
	}

	jsonOut := d.mustGust(t, "-o", "json", "logs", "since", "--since", "1h").stdout
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(jsonOut), "\n") {
		var v struct{ Worker, Time, Line string }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("logs -o json: %q: %v", l, err)
		}
		if v.Worker != "dev" || !stamp.MatchString(v.Time+" ") || stamp.MatchString(v.Line) {
			t.Errorf("logs -o json line %+v: want worker dev, a time, and the line without it", v)
		}
		lines++
	}
	if lines < 8 { // two invocations: START, the line, END, REPORT each
		t.Errorf("logs -o json printed %d lines:\n%s", lines, jsonOut)
	}
}
