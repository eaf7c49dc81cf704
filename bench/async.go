package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// benchAsync starts three coordinators and one worker, enqueues n events
// from conc clients spread over the coordinators, and reports the enqueue
// rate (each acknowledged only after its Raft commit) and, per event, the
// delay from acknowledgement to completion (an upper bound on the delay to
// start: it includes the warm run itself).
func benchAsync(work, gustdBin, bootstrap string, n, conc int) (rate float64, ackToDone []time.Duration, err error) {
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
			return 0, nil, err
		}
		procs = append(procs, cmd)
		grpcAddrs = append(grpcAddrs, g)
	}
	w := exec.Command(gustdBin, "worker", "--name", "aw1", "--data-dir", filepath.Join(work, "async-w1"), "--gossip-fast",
		"--grpc", freeAddr(), "--gossip", freeAddr(), "--join", seed)
	if err := w.Start(); err != nil {
		return 0, nil, err
	}
	procs = append(procs, w)
	ctx := context.Background()
	all, err := client.New(grpcAddrs, "")
	if err != nil {
		return 0, nil, err
	}
	defer all.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		peers, err := all.ListRaftPeers(ctx)
		if err == nil && len(peers) == 3 {
			break
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("async cluster never formed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, err := zipBootstrap(bootstrap)
	if err != nil {
		return 0, nil, err
	}
	if _, err := all.Deploy(ctx, &gustv1.FunctionConfig{Name: "ev"}, bytes.NewReader(code)); err != nil {
		return 0, nil, err
	}
	clients := make([]*client.Client, len(grpcAddrs))
	for i, a := range grpcAddrs {
		if clients[i], err = client.New([]string{a}, ""); err != nil {
			return 0, nil, err
		}
		defer clients[i].Close()
	}
	for _, c := range clients {
		for {
			if _, err := c.GetFunction(ctx, "ev"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return 0, nil, fmt.Errorf("function never visible on every coordinator")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	type ack struct {
		id string
		at time.Time
	}
	acks := make([]ack, n)
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
				id, err := clients[i%len(clients)].InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: "ev", Payload: []byte(`{"name":"bench"}`)})
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				acks[i] = ack{id, time.Now()}
			}
		}()
	}
	wg.Wait()
	rate = float64(n) / time.Since(start).Seconds()
	if firstErr != nil {
		return 0, nil, firstErr
	}
	for _, a := range acks {
		var inv *gustv1.Invocation
		for {
			inv, err = all.GetInvocation(ctx, a.id)
			if err == nil && inv.GetFinishedUnixNano() > 0 {
				break
			}
			if time.Now().After(deadline.Add(5 * time.Minute)) {
				return 0, nil, fmt.Errorf("event %s never finished", a.id)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if inv.GetStatus() != "succeeded" {
			return 0, nil, fmt.Errorf("event %s ended %s: %s", a.id, inv.GetStatus(), inv.GetError())
		}
		ackToDone = append(ackToDone, time.Unix(0, inv.GetFinishedUnixNano()).Sub(a.at))
	}
	return rate, ackToDone, nil
}
