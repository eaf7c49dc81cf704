package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/spf13/cobra"
)

// prices are what gust cost bills at.
type prices struct {
	// PerMillionRequests is the price of a million requests, in dollars.
	PerMillionRequests float64 `json:"per_million_requests"`
	// PerGBSecond is the price of one GB-second of billed memory-time.
	PerGBSecond float64 `json:"per_gb_second"`
	// InstancePerHour is the price of the always-on instance compared against.
	InstancePerHour float64 `json:"instance_per_hour"`
}

// Lambda's x86 prices in us-east-1, and an AWS t3.small (2 vCPU, 2 GiB)
// on demand in us-east-1 as the always-on instance.
var defaultPrices = prices{PerMillionRequests: 0.20, PerGBSecond: 0.0000166667, InstancePerHour: 0.0208}

// costLine is one function's (or the total's) bill over a window.
type costLine struct {
	Function    string  `json:"function"`
	Invocations int64   `json:"invocations"`
	BilledMs    int64   `json:"billed_ms"`
	GBSeconds   float64 `json:"gb_seconds"`
	RequestCost float64 `json:"request_cost"`
	ComputeCost float64 `json:"compute_cost"`
	TotalCost   float64 `json:"total_cost"`
	// Utilisation is billed time over the window: the share of the window
	// one always-on instance would have been busy (above 1: more than one).
	Utilisation float64 `json:"utilisation"`
	// BreakEvenUtilisation is the utilisation at which this bill would equal
	// the always-on instance's; nil when there is nothing billed to scale.
	BreakEvenUtilisation *float64 `json:"break_even_utilisation"`
	// InstanceCost is the always-on instance over the window.
	InstanceCost float64 `json:"instance_cost"`
	// Cheaper is "serverless" or "instance", at the utilisation seen.
	Cheaper string `json:"cheaper"`
}

// bill prices usage over a window.
//
// Break-even: at a fixed mix of requests and memory, the serverless bill
// grows in proportion to the billed time B, bill = C per B billed seconds,
// while the instance costs P per hour however busy it is. Utilisation is
// u = B / window, so over one hour the function costs u·3600·C/B and the
// instance P; they are equal at u* = P·B / (3600·C). For 1M requests of
// 100 ms at 128 MB (B = 100,000 s, C = $0.2083 compute + $0.20 requests)
// and a $0.0208/h instance, u* = 1.41: the function would have to be busy
// 141% of the time (more than one instance's worth) before the instance
// is cheaper. At 1 GB the same invocations give u* = 0.31.
func bill(function string, invocations, billedMs int64, gbSeconds float64, window time.Duration, p prices) costLine {
	l := costLine{Function: function, Invocations: invocations, BilledMs: billedMs, GBSeconds: gbSeconds}
	l.RequestCost = float64(invocations) / 1e6 * p.PerMillionRequests
	l.ComputeCost = gbSeconds * p.PerGBSecond
	l.TotalCost = l.RequestCost + l.ComputeCost
	billedSeconds := float64(billedMs) / 1000
	if window > 0 {
		l.Utilisation = billedSeconds / window.Seconds()
		l.InstanceCost = p.InstancePerHour * window.Hours()
	}
	if billedSeconds > 0 && l.TotalCost > 0 {
		u := p.InstancePerHour * billedSeconds / (3600 * l.TotalCost)
		l.BreakEvenUtilisation = &u
	}
	l.Cheaper = "serverless"
	if l.TotalCost > l.InstanceCost {
		l.Cheaper = "instance"
	}
	return l
}

// costReport is gust cost's -o json.
type costReport struct {
	Since          time.Time  `json:"since"`
	Until          time.Time  `json:"until"`
	WindowSeconds  float64    `json:"window_seconds"`
	Prices         prices     `json:"prices"`
	Functions      []costLine `json:"functions"`
	Total          costLine   `json:"total"`
	Workers        int32      `json:"workers"`
	MissingWorkers []string   `json:"missing_workers"`
}

// report prices every function in a usage answer, and the total.
func report(res *gustv1.GetUsageResponse, p prices) costReport {
	since, until := time.UnixMilli(res.GetSinceUnixMs()).UTC(), time.UnixMilli(res.GetUntilUnixMs()).UTC()
	window := until.Sub(since)
	r := costReport{Since: since, Until: until, WindowSeconds: window.Seconds(), Prices: p, Functions: []costLine{},
		Workers: res.GetWorkers(), MissingWorkers: res.GetMissingWorkers()}
	if r.MissingWorkers == nil {
		r.MissingWorkers = []string{}
	}
	var n, ms int64
	var gbs float64
	for _, u := range res.GetUsage() {
		r.Functions = append(r.Functions, bill(u.GetName(), u.GetInvocations(), u.GetBilledMs(), u.GetGbSeconds(), window, p))
		n, ms, gbs = n+u.GetInvocations(), ms+u.GetBilledMs(), gbs+u.GetGbSeconds()
	}
	r.Total = bill("TOTAL", n, ms, gbs, window, p)
	return r
}

func costCmd(g *globals) *cobra.Command {
	var since time.Duration
	p := defaultPrices
	cmd := &cobra.Command{
		Use:   "cost [NAME]",
		Short: "What functions cost over a window, and when an always-on instance would be cheaper",
		Long: `Sum each function's invocations and billed GB-seconds (billed duration × memory size)
over the last --since, from every worker's per-minute usage rollup (so the window is
to the minute; workers keep 14 days), and price them: requests at --price-request per
million, memory-time at --price-gb-second. Defaults are Lambda's ($0.20 per million
requests, $0.0000166667 per GB-second).

BUSY is the function's billed time over the window: how much of the time one
always-on instance would have been busy running it. BREAK-EVEN is the BUSY at which
the serverless bill would equal an always-on instance at --instance-price per hour
(default $0.0208, an AWS t3.small on demand): at a fixed mix of requests and memory
the bill C grows with billed time B, so one hour costs BUSY×3600×C/B against the
instance's price P, equal at BREAK-EVEN = P×B / (3600×C). Below it, serverless is
cheaper; above it, the instance. A break-even above 100% means the instance never
wins on one instance's worth of work.

Workers that are down or do not answer are named on stderr; their invocations are
not counted. -o json prints the report as one object.`,
		Example: `  gust cost                      # every function, the last 24 hours
  gust cost hello --since 1h
  gust cost --since 168h --instance-price 0.0416 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if since <= 0 {
				return fmt.Errorf("--since must be a positive duration, such as 24h")
			}
			if p.PerMillionRequests < 0 || p.PerGBSecond < 0 || p.InstancePerHour < 0 {
				return fmt.Errorf("prices must not be negative")
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return withClient(g, func(c *clientCtx) error {
				res, err := c.Usage(c.ctx, name, since)
				if err != nil {
					return err
				}
				r := report(res, p)
				if len(r.MissingWorkers) > 0 {
					fmt.Fprintf(g.stderr, "warning: not counted, no answer from workers: %v\n", r.MissingWorkers)
				}
				if g.json() {
					return g.printJSON(r)
				}
				return printCost(g, r, since)
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&since, "since", 24*time.Hour, "how far back to sum, to the minute (at most the workers' 14 days)")
	f.Var(priceFlag{&p.PerMillionRequests}, "price-request", "price of a million requests")
	f.Var(priceFlag{&p.PerGBSecond}, "price-gb-second", "price of a GB-second")
	f.Var(priceFlag{&p.InstancePerHour}, "instance-price", "price of an hour of the always-on instance compared against")
	return cmd
}

func printCost(g *globals, r costReport, since time.Duration) error {
	fmt.Fprintf(g.stdout, "Last %s (%s to %s UTC), from %d worker(s).\n", since, r.Since.Format("2006-01-02 15:04"), r.Until.Format("2006-01-02 15:04"), r.Workers)
	fmt.Fprintf(g.stdout, "Prices: $%s per million requests, $%s per GB-second; always-on instance $%s per hour ($%.4f over the window).\n\n",
		plain(r.Prices.PerMillionRequests), plain(r.Prices.PerGBSecond), plain(r.Prices.InstancePerHour), r.Total.InstanceCost)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tINVOCATIONS\tGB-SECONDS\tREQUESTS\tCOMPUTE\tTOTAL\tBUSY\tBREAK-EVEN\tCHEAPER\t")
	for _, l := range append(r.Functions, r.Total) {
		breakEven := "-"
		if l.BreakEvenUtilisation != nil {
			breakEven = fmt.Sprintf("%.2f%%", *l.BreakEvenUtilisation*100)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t$%.8f\t$%.8f\t$%.8f\t%s\t%s\t%s\t\n", l.Function, l.Invocations, l.GBSeconds,
			l.RequestCost, l.ComputeCost, l.TotalCost, percent(l.Utilisation), breakEven, l.Cheaper)
	}
	return tw.Flush()
}

// plain prints a price without an exponent: 0.0000166667, not 1.66667e-05.
func plain(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func percent(u float64) string {
	switch p := u * 100; {
	case p == 0:
		return "0%"
	case p < 0.01:
		return "<0.01%"
	default:
		return fmt.Sprintf("%.2f%%", p)
	}
}

// priceFlag is a float flag whose default shows without an exponent.
type priceFlag struct{ v *float64 }

func (f priceFlag) String() string { return plain(*f.v) }
func (f priceFlag) Type() string   { return "dollars" }
func (f priceFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return err
	}
	*f.v = v
	return nil
}
