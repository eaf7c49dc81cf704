package main

import (
	"math"
	"testing"
	"time"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestBill: the bill and the break-even at Lambda's prices, with numbers
// worked by hand.
func TestBill(t *testing.T) {
	cases := []struct {
		name                                 string
		invocations, billedMs                int64
		gbSeconds                            float64
		window                               time.Duration
		requestCost, computeCost, total      float64
		utilisation, breakEven, instanceCost float64
		cheaper                              string
	}{
		// 1M requests × 100 ms × 128 MB = 12,500 GB-s: $0.20 + $0.20833375.
		// Billed 100,000 s over a day is 115.74% busy; break-even
		// 0.0208 × 100,000 / (3,600 × 0.40833375) = 1.41497.
		{"1M × 128 MB × 100 ms in a day", 1_000_000, 100_000_000, 12500, 24 * time.Hour,
			0.20, 0.20833375, 0.40833375, 100000.0 / 86400, 2080 / (3600 * 0.40833375), 0.4992, "serverless"},
		// The same at 1 GB: 100,000 GB-s = $1.66667, break-even 30.95%.
		{"1M × 1 GB × 100 ms in an hour", 1_000_000, 100_000_000, 100000, time.Hour,
			0.20, 1.66667, 1.86667, 100000.0 / 3600, 2080 / (3600 * 1.86667), 0.0208, "instance"},
		{"nothing", 0, 0, 0, time.Hour, 0, 0, 0, 0, -1, 0.0208, "serverless"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := bill("f", tc.invocations, tc.billedMs, tc.gbSeconds, tc.window, defaultPrices)
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"request cost", l.RequestCost, tc.requestCost}, {"compute cost", l.ComputeCost, tc.computeCost},
				{"total", l.TotalCost, tc.total}, {"utilisation", l.Utilisation, tc.utilisation},
				{"instance cost", l.InstanceCost, tc.instanceCost},
			} {
				if !near(c.got, c.want) {
					t.Errorf("%s = %.10g, want %.10g", c.what, c.got, c.want)
				}
			}
			switch {
			case tc.breakEven < 0 && l.BreakEvenUtilisation != nil:
				t.Errorf("break-even %v, want none", *l.BreakEvenUtilisation)
			case tc.breakEven >= 0 && (l.BreakEvenUtilisation == nil || !near(*l.BreakEvenUtilisation, tc.breakEven)):
				t.Errorf("break-even %v, want %.6g", l.BreakEvenUtilisation, tc.breakEven)
			}
			if l.Cheaper != tc.cheaper {
				t.Errorf("cheaper %q, want %q", l.Cheaper, tc.cheaper)
			}
		})
	}
	// Spot check the headline figure.
	if l := bill("f", 1_000_000, 100_000_000, 12500, time.Hour, defaultPrices); math.Abs(*l.BreakEvenUtilisation-1.41497) > 1e-5 {
		t.Errorf("break-even %.6f, want 1.41497", *l.BreakEvenUtilisation)
	}
}

// TestReportTotals: the report prices each function and sums them.
func TestReportTotals(t *testing.T) {
	until := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	res := &gustv1.GetUsageResponse{
		SinceUnixMs: until.Add(-24 * time.Hour).UnixMilli(), UntilUnixMs: until.UnixMilli(), Workers: 2,
		Usage: []*gustv1.FunctionUsage{
			{Name: "a", Invocations: 1000, BilledMs: 100_000, GbSeconds: 12.5},
			{Name: "b", Invocations: 500, BilledMs: 1_000_000, GbSeconds: 1000},
		},
	}
	r := report(res, prices{PerMillionRequests: 1, PerGBSecond: 0.001, InstancePerHour: 1})
	if len(r.Functions) != 2 || r.WindowSeconds != 86400 || r.Workers != 2 {
		t.Fatalf("report %+v", r)
	}
	if r.Total.Invocations != 1500 || r.Total.BilledMs != 1_100_000 || !near(r.Total.GBSeconds, 1012.5) {
		t.Errorf("total %+v", r.Total)
	}
	if !near(r.Total.TotalCost, 0.0015+1.0125) || !near(r.Total.TotalCost, r.Functions[0].TotalCost+r.Functions[1].TotalCost) {
		t.Errorf("total cost %v", r.Total.TotalCost)
	}
	if !near(r.Total.InstanceCost, 24) {
		t.Errorf("instance cost over a day at $1/h = %v", r.Total.InstanceCost)
	}
}
