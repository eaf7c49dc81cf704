package worker

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/gustfaas/gust/worker/workerapi"
)

// TestUsageRollup: invocations land in their minute, a window sums the
// minutes it touches, functions stay apart, and GB-seconds are billed ms ×
// memory MB / 1024 / 1000.
func TestUsageRollup(t *testing.T) {
	u, err := newUsageLog("", 14*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC)
	for i := 0; i < 10; i++ {
		u.record("f", t0.Add(time.Duration(i)*time.Minute), 100, 128) // one per minute, 12:00–12:09
	}
	u.record("f", t0.Add(3*time.Minute), 50, 1024) // out of order, into 12:03
	u.record("g", t0, 1000, 512)

	cases := []struct {
		name         string
		fn           string
		since, until time.Time
		want         map[string]workerapi.Usage
	}{
		{"all", "", t0.Add(-time.Hour), t0.Add(time.Hour), map[string]workerapi.Usage{
			"f": {Function: "f", Requests: 11, BilledMs: 1050, BilledMBMs: 10*100*128 + 50*1024},
			"g": {Function: "g", Requests: 1, BilledMs: 1000, BilledMBMs: 1000 * 512},
		}},
		{"one function", "g", t0.Add(-time.Hour), t0.Add(time.Hour), map[string]workerapi.Usage{
			"g": {Function: "g", Requests: 1, BilledMs: 1000, BilledMBMs: 1000 * 512},
		}},
		// 12:03:59 to 12:05:00 touches minutes 3, 4 and 5.
		{"to the minute", "f", t0.Add(3*time.Minute + 29*time.Second), t0.Add(5*time.Minute - 30*time.Second), map[string]workerapi.Usage{
			"f": {Function: "f", Requests: 4, BilledMs: 350, BilledMBMs: 3*100*128 + 50*1024},
		}},
		{"before anything", "", t0.Add(-2 * time.Hour), t0.Add(-time.Hour), map[string]workerapi.Usage{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, retained := u.query(tc.fn, tc.since, tc.until)
			if !retained.Equal(t0.Truncate(time.Minute)) {
				t.Errorf("retained since %v, want %v", retained, t0.Truncate(time.Minute))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for _, g := range got {
				if g != tc.want[g.Function] {
					t.Errorf("got %+v, want %+v", g, tc.want[g.Function])
				}
			}
		})
	}

	// 1M requests of 100 ms at 128 MB are 12,500 GB-seconds.
	million := workerapi.Usage{Requests: 1e6, BilledMs: 1e6 * 100, BilledMBMs: 1e6 * 100 * 128}
	if got := million.GBSeconds(); math.Abs(got-12500) > 1e-9 {
		t.Errorf("GB-seconds of 1M × 100 ms × 128 MB = %v, want 12500", got)
	}
}

// TestUsageRetention: buckets older than the retention are dropped, and a
// function with nothing left is forgotten.
func TestUsageRetention(t *testing.T) {
	u, _ := newUsageLog("", time.Hour)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	u.record("old", now.Add(-2*time.Hour), 1, 128)
	u.record("f", now.Add(-90*time.Minute), 1, 128)
	u.record("f", now.Add(-10*time.Minute), 2, 128)
	u.prune(now)
	if len(u.fns) != 1 || len(u.fns["f"]) != 1 || u.fns["f"][0].BilledMs != 2 {
		t.Fatalf("after prune: %+v", u.fns)
	}
}

// TestUsagePersists: a saved rollup is what the next worker starts with,
// and a corrupt file is set aside rather than fatal.
func TestUsagePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.json")
	u, err := newUsageLog(path, 14*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	u.record("f", now, 7, 256)
	u.record("f", now.Add(-time.Hour), 3, 256)
	if err := u.save(); err != nil {
		t.Fatal(err)
	}
	again, err := newUsageLog(path, 14*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := again.query("f", now.Add(-2*time.Hour), now)
	if len(got) != 1 || got[0] != (workerapi.Usage{Function: "f", Requests: 2, BilledMs: 10, BilledMBMs: 10 * 256}) {
		t.Fatalf("after reload: %+v", got)
	}

	if err := writeFileAtomic(path, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	fresh, err := newUsageLog(path, time.Hour)
	if err != nil {
		t.Fatalf("corrupt rollup: %v", err)
	}
	if got, _ := fresh.query("", time.Time{}, now); len(got) != 0 {
		t.Fatalf("corrupt rollup read as %+v", got)
	}
}
