package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// benchCluster starts three coordinators and one worker and times warm
// invokes sent to the leader and to a follower, interleaved so both see
// the same machine noise. Invokes make no Raft write, so the two should
// match; this shows they do.
func benchCluster(work, gustdBin, bootstrap string, n int) (viaLeader, viaFollower []time.Duration, err error) {
	type proc struct {
		name, grpc, http string
		cmd              *exec.Cmd
		log              bytes.Buffer
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.cmd.Process.Signal(os.Interrupt)
			p.cmd.Wait()
		}
	}()
	start := func(name string, args ...string) *proc {
		p := &proc{name: name}
		p.cmd = exec.Command(gustdBin, args...)
		p.cmd.Stderr = &p.log
		procs = append(procs, p)
		return p
	}
	firstGossip := freeAddr()
	for i, name := range []string{"c1", "c2", "c3"} {
		gossipAddr := freeAddr()
		if i == 0 {
			gossipAddr = firstGossip
		}
		p := start(name, "coordinator", "--name", name, "--data-dir", filepath.Join(work, name), "--gossip-fast",
			"--grpc", freeAddr(), "--http", freeAddr(), "--raft", freeAddr(), "--gossip", gossipAddr)
		if i == 0 {
			p.cmd.Args = append(p.cmd.Args, "--bootstrap")
		} else {
			p.cmd.Args = append(p.cmd.Args, "--join", firstGossip)
		}
		p.grpc = p.cmd.Args[indexOf(p.cmd.Args, "--grpc")+1]
		if err := p.cmd.Start(); err != nil {
			return nil, nil, err
		}
	}
	w := start("w1", "worker", "--name", "w1", "--data-dir", filepath.Join(work, "w1"), "--gossip-fast",
		"--grpc", freeAddr(), "--gossip", freeAddr(), "--join", firstGossip)
	if err := w.cmd.Start(); err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	clients := map[string]*client.Client{}
	for _, p := range procs[:3] {
		c, err := client.New([]string{p.grpc}, "")
		if err != nil {
			return nil, nil, err
		}
		defer c.Close()
		clients[p.name] = c
	}
	// Wait for three voters, one leader, and the worker.
	var leader, follower string
	deadline := time.Now().Add(30 * time.Second)
	for leader == "" || follower == "" {
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("cluster never formed: %s", procs[0].log.String())
		}
		time.Sleep(100 * time.Millisecond)
		peers, err := clients["c1"].ListRaftPeers(ctx)
		if err != nil || len(peers) != 3 {
			continue
		}
		leader, follower = "", ""
		for _, p := range peers {
			if p.GetState() == "leader" {
				leader = p.GetName()
			} else if follower == "" {
				follower = p.GetName()
			}
		}
	}
	code, err := zipBootstrap(bootstrap)
	if err != nil {
		return nil, nil, err
	}
	if _, err := clients[leader].Deploy(ctx, &gustv1.FunctionConfig{Name: "hello"}, bytes.NewReader(code)); err != nil {
		return nil, nil, err
	}
	payload := []byte(`{"name":"bench"}`)
	for time.Now().Before(deadline) {
		if _, err = clients[follower].Invoke(ctx, &gustv1.InvokeRequest{Function: "hello", Payload: payload}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i < n; i++ {
		for _, target := range []string{leader, follower} {
			t0 := time.Now()
			res, err := clients[target].Invoke(ctx, &gustv1.InvokeRequest{Function: "hello", Payload: payload})
			if err != nil {
				return nil, nil, err
			}
			d := time.Since(t0)
			if res.GetColdStart() {
				continue // a second sandbox was started; not what this measures
			}
			if target == leader {
				viaLeader = append(viaLeader, d)
			} else {
				viaFollower = append(viaFollower, d)
			}
		}
	}
	return viaLeader, viaFollower, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
