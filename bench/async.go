package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// asyncRound is one closed-loop enqueue round.
type asyncRound struct {
	clients int
	rate    float64         // events acknowledged per second
	ack     []time.Duration // InvokeAsync call to acknowledgement
}

// benchAsync starts three coordinators and one worker. For each client
// count it enqueues n events from that many closed-loop clients spread over
// the coordinators (each acknowledged only after its Raft commit) and
// reports the rate; then it enqueues at a steady Poisson rate below
// capacity and reports, per event, the delay from acknowledgement to the
// start of its first attempt.
func benchAsync(work, gustdBin, bootstrap string, n int, concs []int, steadyRate float64, steadyDur time.Duration) (rounds []asyncRound, ackToStart []time.Duration, err error) {
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(os.Interrupt)
			p.Wait()
		}
	}()
	seed := freeAddr()
	var grpcAddrs []string
	for i, name := range []string{"a1", "a2", "a3"} {
		g, gossip := freeAddr(), freeAddr()
		if i == 0 {
			gossip = seed
		}
		args := []string{"coordinator", "--name", name, "--data-dir", filepath.Join(work, "async-"+name), "--gossip-fast",
			"--grpc", g, "--http", freeAddr(), "--raft", freeAddr(), "--gossip", gossip}
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", seed)
		}
		cmd := exec.Command(gustdBin, args...)
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		procs = append(procs, cmd)
		grpcAddrs = append(grpcAddrs, g)
	}
	w := exec.Command(gustdBin, "worker", "--name", "aw1", "--data-dir", filepath.Join(work, "async-w1"), "--gossip-fast",
		"--grpc", freeAddr(), "--gossip", freeAddr(), "--join", seed)
	if err := w.Start(); err != nil {
		return nil, nil, err
	}
	procs = append(procs, w)
	ctx := context.Background()
	all, err := client.New(grpcAddrs, "")
	if err != nil {
		return nil, nil, err
	}
	defer all.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		peers, err := all.ListRaftPeers(ctx)
		if err == nil && len(peers) == 3 {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("async cluster never formed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, err := zipBootstrap(bootstrap)
	if err != nil {
		return nil, nil, err
	}
	if _, err := all.Deploy(ctx, &gustv1.FunctionConfig{Name: "ev"}, bytes.NewReader(code)); err != nil {
		return nil, nil, err
	}
	clients := make([]*client.Client, len(grpcAddrs))
	for i, a := range grpcAddrs {
		if clients[i], err = client.New([]string{a}, ""); err != nil {
			return nil, nil, err
		}
		defer clients[i].Close()
	}
	for _, c := range clients {
		for {
			if _, err := c.GetFunction(ctx, "ev"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return nil, nil, fmt.Errorf("function never visible on every coordinator")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	enqueue := func(i int) (string, error) {
		return clients[i%len(clients)].InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: "ev", Payload: []byte(`{"name":"bench"}`)})
	}
	for _, conc := range concs {
		r := asyncRound{clients: conc, ack: make([]time.Duration, n)}
		ids := make([]string, n)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		next := 0
		start := time.Now()
		for g := 0; g < conc; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					if i >= n {
						return
					}
					t0 := time.Now()
					id, err := enqueue(i)
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					r.ack[i], ids[i] = time.Since(t0), id
				}
			}()
		}
		wg.Wait()
		r.rate = float64(n) / time.Since(start).Seconds()
		if firstErr != nil {
			return nil, nil, firstErr
		}
		rounds = append(rounds, r)
		// Let the backlog drain so the next round starts from an empty queue.
		if err := waitFinished(ctx, clients[0], ids, 5*time.Minute); err != nil {
			return nil, nil, err
		}
	}

	// Steady load: Poisson arrivals at steadyRate, each event's delay from
	// acknowledgement to the start of its first attempt.
	type ack struct {
		id string
		at time.Time
	}
	var acks []ack
	var mu sync.Mutex
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now().Add(steadyDur)
	for i := 0; time.Now().Before(end); i++ {
		time.Sleep(time.Duration(rng.ExpFloat64() / steadyRate * float64(time.Second)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := enqueue(i)
			at := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				id = "" // reported below
			}
			acks = append(acks, ack{id, at})
		}()
	}
	wg.Wait()
	var ids []string
	for _, a := range acks {
		if a.id == "" {
			return nil, nil, fmt.Errorf("steady enqueue failed")
		}
		ids = append(ids, a.id)
	}
	if err := waitFinished(ctx, clients[0], ids, 2*time.Minute); err != nil {
		return nil, nil, err
	}
	for _, a := range acks {
		inv, err := clients[0].GetInvocation(ctx, a.id)
		if err != nil {
			return nil, nil, err
		}
		ackToStart = append(ackToStart, max(0, time.Unix(0, inv.GetFirstStartedUnixNano()).Sub(a.at)))
	}
	return rounds, ackToStart, nil
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
			if time.Now().After(deadline) {
				return fmt.Errorf("event %s never finished", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
