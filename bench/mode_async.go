package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// asyncClientCounts are the closed-loop client counts of the enqueue
// rounds.
var asyncClientCounts = []int{16, 32, 64, 128}

// asyncSteadyRate is the default Poisson rate of the steady round.
const asyncSteadyRate = 200

// async starts three coordinators and one worker. For each client count it
// enqueues n events from that many closed-loop clients spread over the
// coordinators (each acknowledged only after its Raft commit) and reports
// the rate; then it enqueues at a steady Poisson rate below capacity and
// reports, per event, the delay from acknowledgement to the start of its
// first attempt.
func (e *env) async(ctx context.Context) (*section, error) {
	n := e.opts.samples(ModeAsync)
	c, err := e.startCluster("a")
	if err != nil {
		return nil, err
	}
	defer c.stop()
	var addrs []string
	for _, name := range c.names {
		addrs = append(addrs, c.grpc[name])
	}
	all, err := client.New(addrs, "")
	if err != nil {
		return nil, err
	}
	defer all.Close()
	if _, _, err := c.leader(ctx, all, 60*time.Second); err != nil {
		return nil, err
	}
	if _, err := all.Deploy(ctx, &gustv1.FunctionConfig{Name: "ev"}, bytes.NewReader(e.zip)); err != nil {
		return nil, err
	}
	clients := make([]*client.Client, len(addrs))
	for i, a := range addrs {
		if clients[i], err = client.New([]string{a}, ""); err != nil {
			return nil, err
		}
		defer clients[i].Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, cl := range clients {
		for {
			if _, err := cl.GetFunction(ctx, "ev"); err == nil {
				break
			}
			if err := pause(ctx, deadline, nil, 50*time.Millisecond); err != nil {
				return nil, fmt.Errorf("function never visible on every coordinator: %w", err)
			}
		}
	}
	enqueue := func(ctx context.Context, i int) (string, error) {
		return clients[i%len(clients)].InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: "ev", Payload: e.opts.Payload})
	}
	s := &section{}
	for _, conc := range asyncClientCounts {
		e.log.Info("async enqueue round", "clients", conc, "events", n)
		rec := newRecorder()
		ids := make([]string, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for g := 0; g < conc; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n || ctx.Err() != nil {
						return
					}
					t0 := time.Now()
					id, err := enqueue(ctx, i)
					rec.add(t0, time.Since(t0), ColdUnknown, err)
					ids[i] = id
				}
			}()
		}
		wg.Wait()
		m := rec.measurement(fmt.Sprintf("async.enqueue.c%d", conc),
			fmt.Sprintf("durable async enqueue, %d clients over 3 coordinators: call → acknowledgement (gRPC)", conc), time.Since(start))
		m.Client, m.Clients = "grpc", conc
		s.add(ModeAsync, m)
		if m.Errors > 0 {
			return s, fmt.Errorf("%d enqueues failed: %s", m.Errors, m.FirstError)
		}
		// Let the backlog drain so the next round starts from an empty queue.
		if err := waitFinished(ctx, clients[0], ids, 5*time.Minute); err != nil {
			return s, err
		}
	}

	// Steady load: Poisson arrivals, each event's delay from its
	// acknowledgement to the start of its first attempt.
	rate := e.opts.Rate
	if rate <= 0 {
		rate = asyncSteadyRate
	}
	e.log.Info("async steady round", "rate", rate, "duration", e.opts.Duration)
	type ack struct {
		id string
		at time.Time
	}
	acks := make([]ack, 0, int(rate*e.opts.Duration.Seconds())+16)
	var mu sync.Mutex
	sched := PoissonSchedule(rand.New(rand.NewPCG(e.opts.Seed, 3)), rate, 0, e.opts.Duration)
	steady := openLoop(ctx, sched, 4096, func(ctx context.Context, i int) (Cold, error) {
		id, err := enqueue(ctx, i)
		if err == nil {
			mu.Lock()
			acks = append(acks, ack{id, time.Now()})
			mu.Unlock()
		}
		return ColdUnknown, err
	})
	if steady.errors > 0 {
		return s, fmt.Errorf("%d steady enqueues failed: %s", steady.errors, steady.firstErr)
	}
	ids := make([]string, len(acks))
	for i, a := range acks {
		ids[i] = a.id
	}
	if err := waitFinished(ctx, clients[0], ids, 2*time.Minute); err != nil {
		return s, err
	}
	var ackToStart []time.Duration
	for _, a := range acks {
		inv, err := clients[0].GetInvocation(ctx, a.id)
		if err != nil {
			return s, err
		}
		ackToStart = append(ackToStart, max(0, time.Unix(0, inv.GetFirstStartedUnixNano()).Sub(a.at)))
	}
	m := durations("async.ack_to_start", fmt.Sprintf("durable async, Poisson %g/s for %s: acknowledgement → first attempt start", rate, e.opts.Duration), ackToStart, 0)
	m.Client, m.Rate = "grpc", rate
	s.add(ModeAsync, m)
	return s, c.failed()
}

// waitFinished polls until every event has succeeded.
func waitFinished(ctx context.Context, c *client.Client, ids []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, id := range ids {
		for {
			inv, err := c.GetInvocation(ctx, id)
			if err == nil && inv.GetFinishedUnixNano() > 0 {
				if inv.GetStatus() != "succeeded" {
					return fmt.Errorf("event %s ended %s: %s", id, inv.GetStatus(), inv.GetError())
				}
				break
			}
			if err := pause(ctx, deadline, nil, 20*time.Millisecond); err != nil {
				return fmt.Errorf("event %s never finished: %w", id, err)
			}
		}
	}
	return nil
}
