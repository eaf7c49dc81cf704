package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Generated traces, when no --trace is given.
const (
	traceRate          = 20 // arrivals per second
	traceFunctionCount = 20
)

// loadTrace reads the trace file, or generates one.
func (e *env) loadTrace() ([]TraceEvent, string, error) {
	if e.opts.Trace == "" {
		rate := e.opts.Rate
		if rate <= 0 {
			rate = traceRate
		}
		ev := GenerateTrace(e.opts.Seed, rate, e.opts.Duration, traceFunctionCount)
		if len(ev) == 0 {
			return nil, "", fmt.Errorf("generated trace is empty (rate %g/s over %s)", rate, e.opts.Duration)
		}
		return ev, fmt.Sprintf("generated: Poisson %g/s for %s over %d Zipf-popular functions", rate, e.opts.Duration, traceFunctionCount), nil
	}
	f, err := os.Open(e.opts.Trace)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	ev, err := ParseTrace(f)
	if err != nil {
		return nil, "", err
	}
	return ev, filepath.Base(e.opts.Trace), nil
}

// trace replays a trace open loop: every row is sent at its offset,
// whatever the earlier ones are doing, each function created beforehand
// and started cold by its first row.
func (e *env) trace(ctx context.Context) (*section, error) {
	events, desc, err := e.loadTrace()
	if err != nil {
		return nil, err
	}
	fns := traceFunctions(events)
	g, lc, err := e.gustd(ctx, "trace")
	if err != nil {
		return nil, err
	}
	defer g.stop(60 * time.Second)
	for _, fn := range fns {
		if err := lc.CreateFunction(ctx, e.create.For(fn)); err != nil {
			return nil, fmt.Errorf("create %s: %w", fn, err)
		}
	}
	sched := make([]time.Duration, len(events))
	for i, ev := range events {
		sched[i] = ev.Offset
	}
	span := events[len(events)-1].Offset
	e.log.Info("trace: replaying", "events", len(events), "functions", len(fns), "span", span)
	m := openLoop(ctx, sched, 1024, e.invokeOp(lc, func(i int) string { return events[i].Function })).
		measurement("trace.gust.http", fmt.Sprintf("gust, trace replay (%s; %d events, %d functions)", desc, len(events), len(fns)), 0)
	m.Client = "http"
	if span > 0 {
		m.Rate = float64(len(events)) / span.Seconds()
	}
	s := &section{}
	s.add(ModeTrace, m,
		m.only(ColdYes, "trace.gust.http.cold", "gust, trace replay: cold starts only"),
		m.only(ColdNo, "trace.gust.http.warm", "gust, trace replay: warm invokes only"))
	if m.Summary.ColdStarts > len(fns) {
		s.note("trace.gust.http: %d cold starts for %d functions: sandboxes were started beyond one per function (concurrent arrivals or evictions)", m.Summary.ColdStarts, len(fns))
	}
	return s, g.alive()
}
