package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// warmFunction is the function the warm mode invokes.
const warmFunction = "warm"

// warm times warm invokes from one client, gust (HTTP and gRPC) and
// aws-lambda-rie taking turns; then load rounds of N clients against gust
// (HTTP, then gRPC, each on a fresh gustd so neither inherits the other's
// sandboxes), compared with RIE's serial throughput (one client, back to
// back).
func (e *env) warm(ctx context.Context) (*section, error) {
	n := e.opts.samples(ModeWarm)
	r, err := startRIE(ctx, e.work, e.opts.RIE, e.bootstrap, e.hc, 0)
	if err != nil {
		return nil, err
	}
	defer r.kill()
	wg, err := e.warmGustd(ctx, "warm")
	if err != nil {
		return nil, err
	}
	defer wg.close()
	rieOp := e.invokeOp(r.lambda, func(int) string { return rieFunction })
	// Start both runtimes and let connections and caches settle.
	for i := 0; i < 20; i++ {
		for _, f := range []op{rieOp, wg.http, wg.grpc} {
			if _, err := f(ctx, 0); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	rieRec, httpRec, grpcRec := newRecorder(), newRecorder(), newRecorder()
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, s := range []struct {
			rec *recorder
			f   op
		}{{rieRec, rieOp}, {httpRec, wg.http}, {grpcRec, wg.grpc}} {
			began := time.Now()
			cold, err := s.f(ctx, i)
			s.rec.add(began, time.Since(began), cold, err)
		}
		e.progress("warm samples", i, n)
	}
	if err := wg.g.alive(); err != nil {
		return nil, err
	}
	wg.close()
	s := &section{}
	mk := func(rec *recorder, key, name, client string) *Measurement {
		m := rec.measurement(key, name, -1)
		m.Client, m.Clients = client, 1
		if key == "warm.rie" {
			m.IsReference = true
		} else {
			m.Reference = "warm.rie"
		}
		return m
	}
	s.add(ModeWarm,
		mk(rieRec, "warm.rie", "aws-lambda-rie warm invoke, one client (HTTP)", "http"),
		mk(httpRec, "warm.gust.http", "gust warm invoke, one client (HTTP → coordinator → worker → sandbox)", "http"),
		mk(grpcRec, "warm.gust.grpc", "gust warm invoke, one client (gRPC client)", "grpc"),
	)

	// Load: RIE serves one invocation at a time, so its serial throughput
	// (one closed-loop client) is its capacity.
	e.log.Info("load round: aws-lambda-rie serial", "duration", e.opts.Duration)
	rieLoad := closedLoop(ctx, 1, e.opts.Duration, rieOp).measurement("load.rie.serial", "aws-lambda-rie, one client back to back (serial throughput)", 0)
	rieLoad.Client, rieLoad.Clients, rieLoad.IsReference = "http", 1, true
	r.kill()
	s.add("load", rieLoad)
	for _, round := range []struct{ key, client string }{{"load.gust.http", "HTTP"}, {"load.gust.grpc", "gRPC client"}} {
		m, err := e.gustLoad(ctx, round.key, round.client)
		if err != nil {
			return s, fmt.Errorf("%s: %w", round.key, err)
		}
		s.add("load", m)
		if c := m.Summary.ColdStarts; c > 0 {
			s.note("%s: %d cold starts during the round (%.1f%% of invokes): gust started sandboxes beyond the %d pre-warmed", m.Key, c, 100*m.Summary.ColdShare, e.opts.Clients)
		}
	}
	return s, nil
}

// warmGust is a gustd dev with the warm function created, and the two ways
// to invoke it.
type warmGust struct {
	g          *gustd
	gc         *client.Client
	http, grpc op
}

func (e *env) warmGustd(ctx context.Context, name string) (*warmGust, error) {
	g, lc, err := e.gustd(ctx, name)
	if err != nil {
		return nil, err
	}
	w := &warmGust{g: g}
	if w.gc, err = client.New([]string{g.grpcAddr}, ""); err != nil {
		w.close()
		return nil, err
	}
	if err := lc.CreateFunction(ctx, e.create.For(warmFunction)); err != nil {
		w.close()
		return nil, fmt.Errorf("create: %w", err)
	}
	w.http = e.invokeOp(lc, func(int) string { return warmFunction })
	w.grpc = func(ctx context.Context, _ int) (Cold, error) {
		res, err := w.gc.Invoke(ctx, &gustv1.InvokeRequest{Function: warmFunction, Payload: e.opts.Payload})
		if err != nil {
			return ColdUnknown, err
		}
		if res.GetFunctionError() != "" {
			return ColdUnknown, &functionError{Kind: res.GetFunctionError(), Payload: string(res.GetPayload())}
		}
		if res.GetColdStart() {
			return ColdYes, nil
		}
		return ColdNo, nil
	}
	return w, nil
}

// close stops gustd; calling it again does nothing.
func (w *warmGust) close() {
	if w.gc != nil {
		w.gc.Close()
		w.gc = nil
	}
	w.g.stop(30 * time.Second)
}

// gustLoad is one load round on a fresh gustd, with one warm sandbox per
// client to begin with.
func (e *env) gustLoad(ctx context.Context, key, client string) (*Measurement, error) {
	w, err := e.warmGustd(ctx, key)
	if err != nil {
		return nil, err
	}
	defer w.close()
	f := w.http
	if key == "load.gust.grpc" {
		f = w.grpc
	}
	if err := e.prewarm(ctx, f, e.opts.Clients); err != nil {
		return nil, err
	}
	m := e.loadRound(ctx, key, "gust warm invoke", client, f)
	return m, w.g.alive()
}

// loadRound drives f for the configured duration: closed loop from
// Clients clients, or open loop at Rate.
func (e *env) loadRound(ctx context.Context, key, what, client string, f op) *Measurement {
	dur := e.opts.Duration
	var m *Measurement
	if e.opts.Rate > 0 {
		e.log.Info("load round, open loop", "key", key, "rate", e.opts.Rate, "duration", dur)
		sched := PoissonSchedule(rand.New(rand.NewPCG(e.opts.Seed, 1)), e.opts.Rate, 0, dur)
		m = openLoop(ctx, sched, max(1024, 4*e.opts.Clients), f).measurement(key,
			fmt.Sprintf("%s, Poisson arrivals at %g/s (%s, open loop)", what, e.opts.Rate, client), 0)
		m.Rate = e.opts.Rate
	} else {
		e.log.Info("load round, closed loop", "key", key, "clients", e.opts.Clients, "duration", dur)
		m = closedLoop(ctx, e.opts.Clients, dur, f).measurement(key,
			fmt.Sprintf("%s, %d clients back to back (%s, closed loop)", what, e.opts.Clients, client), 0)
		m.Clients = e.opts.Clients
	}
	m.Client, m.Reference = strings.Fields(strings.ToLower(client))[0], "load.rie.serial"
	return m
}

// invokeOp invokes name(i) over HTTP and reads coldness from the answer.
func (e *env) invokeOp(lc *lambdaClient, name func(int) string) op {
	return func(ctx context.Context, i int) (Cold, error) {
		out, err := lc.Invoke(ctx, name(i), e.opts.Payload)
		if err != nil {
			return ColdUnknown, err
		}
		return coldFromPayload(out), nil
	}
}

// prewarm invokes f from n clients at once, twice, so that n sandboxes are
// warm.
func (e *env) prewarm(ctx context.Context, f op, n int) error {
	for round := 0; round < 2; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f(ctx, i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return fmt.Errorf("pre-warm: %w", err)
		}
	}
	return nil
}
