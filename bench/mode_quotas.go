package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// quotas measures closed-loop warm throughput with admission on and off
// (gustd dev --no-quotas), in alternating rounds so both see the same
// noise: off, on, off, on.
func (e *env) quotas(ctx context.Context) (*section, error) {
	recs := map[bool]*recorder{false: newRecorder(), true: newRecorder()}
	var elapsed = map[bool]time.Duration{}
	for round := 0; round < 2; round++ {
		for _, on := range []bool{false, true} {
			e.log.Info("quotas round", "round", round+1, "quotas", on, "clients", e.opts.Clients, "duration", e.opts.Duration)
			d, err := e.quotaRound(ctx, recs[on], on, fmt.Sprintf("quotas-%d-%v", round, on))
			if err != nil {
				return nil, err
			}
			elapsed[on] += d
		}
	}
	off := recs[false].measurement("quotas.off", fmt.Sprintf("warm invoke, %d clients, quotas off (gRPC)", e.opts.Clients), elapsed[false])
	off.Client, off.Clients, off.IsReference = "grpc", e.opts.Clients, true
	on := recs[true].measurement("quotas.on", fmt.Sprintf("warm invoke, %d clients, quotas on (gRPC)", e.opts.Clients), elapsed[true])
	on.Client, on.Clients, on.Reference = "grpc", e.opts.Clients, "quotas.off"
	s := &section{}
	s.add(ModeQuotas, off, on)
	return s, nil
}

// quotaRound is one round on a fresh gustd dev; it adds to rec and returns
// the round's span.
func (e *env) quotaRound(ctx context.Context, rec *recorder, quotas bool, name string) (time.Duration, error) {
	var extra []string
	if !quotas {
		extra = append(extra, "--no-quotas")
	}
	g, _, err := e.gustd(ctx, name, extra...)
	if err != nil {
		return 0, err
	}
	defer g.stop(30 * time.Second)
	c, err := client.New([]string{g.grpcAddr}, "")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Deploy(ctx, &gustv1.FunctionConfig{Name: "tp"}, bytes.NewReader(e.zip)); err != nil {
		return 0, err
	}
	invoke := func(ctx context.Context, _ int) (Cold, error) {
		res, err := c.Invoke(ctx, &gustv1.InvokeRequest{Function: "tp", Payload: e.opts.Payload})
		if err != nil {
			return ColdUnknown, err
		}
		if res.GetColdStart() {
			return ColdYes, nil
		}
		return ColdNo, nil
	}
	if err := e.prewarm(ctx, invoke, e.opts.Clients); err != nil {
		return 0, err
	}
	r := closedLoop(ctx, e.opts.Clients, e.opts.Duration, invoke)
	rec.merge(r)
	return r.elapsed(), g.alive()
}
