package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// burst creates K fresh functions and invokes each once, all at once (or
// at a Poisson rate): cold starts per second on one worker. The reference
// is K `runc run` of /bin/true released the same way.
func (e *env) burst(ctx context.Context) (*section, error) {
	k := e.opts.samples(ModeBurst)
	sched, how := zeros(k), fmt.Sprintf("%d at once", k)
	if e.opts.Rate > 0 {
		sched = PoissonSchedule(rand.New(rand.NewPCG(e.opts.Seed, 2)), e.opts.Rate, k, 0)
		how = fmt.Sprintf("%d at Poisson %g/s", k, e.opts.Rate)
	}
	bundle, err := newRuncBundle(ctx, e.opts.Runc, e.work)
	if err != nil {
		return nil, err
	}
	if _, err := bundle.run(ctx); err != nil { // warm the page cache
		return nil, err
	}
	e.log.Info("burst: runc run", "containers", k)
	runcM := openLoop(ctx, sched, k, func(ctx context.Context, _ int) (Cold, error) {
		_, err := bundle.run(ctx)
		return ColdYes, err
	}).measurement("burst.runc", fmt.Sprintf("`runc run` /bin/true, %s", how), 0)
	runcM.Client, runcM.IsReference = "process", true

	g, lc, err := e.gustd(ctx, "burst")
	if err != nil {
		return nil, err
	}
	defer g.stop(60 * time.Second)
	// One function invoked first, so the worker's code cache holds the zip
	// and the burst measures sandboxes, not a code download.
	if err := lc.CreateFunction(ctx, e.create.For("burst-warmup")); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if _, err := lc.Invoke(ctx, "burst-warmup", e.opts.Payload); err != nil {
		return nil, fmt.Errorf("warm-up invoke: %w", err)
	}
	e.log.Info("burst: creating functions", "functions", k)
	create := newRecorder()
	names := make([]string, k)
	for i := range names {
		names[i] = fmt.Sprintf("burst-%d", i+1)
		body := e.create.For(names[i])
		began := time.Now()
		err := lc.CreateFunction(ctx, body)
		create.add(began, time.Since(began), ColdUnknown, err)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", names[i], err)
		}
	}
	e.log.Info("burst: invoking", "functions", k)
	burst := openLoop(ctx, sched, k, e.invokeOp(lc, func(i int) string { return names[i] })).
		measurement("burst.gust.http", fmt.Sprintf("gust first invokes of fresh functions, %s (HTTP)", how), 0)
	burst.Client, burst.Reference, burst.Rate = "http", "burst.runc", e.opts.Rate
	createM := create.measurement("burst.gust.http.create", "gust CreateFunction, one after another (HTTP)", -1)
	createM.Client = "http"
	s := &section{}
	s.add(ModeBurst, runcM, createM, burst)
	if w := burst.Summary.WarmStarts; w > 0 {
		s.note("burst.gust.http: %d of %d first invokes of fresh functions were served warm", w, burst.Summary.Count)
	}
	return s, g.alive()
}
