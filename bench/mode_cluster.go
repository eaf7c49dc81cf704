package bench

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gustfaas/gust/client"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// cluster is three `gustd coordinator` processes and one `gustd worker` on
// loopback.
type cluster struct {
	procs []*proc
	grpc  map[string]string // coordinator name → gRPC address
	names []string          // coordinators, in start order
}

// startCluster starts the coordinators (the first bootstraps, the others
// join it) and the worker.
func (e *env) startCluster(prefix string) (*cluster, error) {
	c := &cluster{grpc: map[string]string{}}
	seed, err := freeAddr()
	if err != nil {
		return nil, err
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		addrs := make([]string, 4)
		for j := range addrs {
			if addrs[j], err = freeAddr(); err != nil {
				c.stop()
				return nil, err
			}
		}
		gossip := addrs[3]
		if i == 1 {
			gossip = seed
		}
		args := []string{"coordinator", "--name", name, "--data-dir", filepath.Join(e.work, name), "--gossip-fast",
			"--grpc", addrs[0], "--http", addrs[1], "--raft", addrs[2], "--gossip", gossip}
		if i == 1 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", seed)
		}
		p, err := startProc(e.work, name, e.opts.Gustd, args, nil)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.procs = append(c.procs, p)
		c.grpc[name] = addrs[0]
		c.names = append(c.names, name)
	}
	wname := prefix + "w1"
	wg, err1 := freeAddr()
	wgo, err2 := freeAddr()
	if err1 != nil || err2 != nil {
		c.stop()
		return nil, fmt.Errorf("free ports: %v %v", err1, err2)
	}
	p, err := startProc(e.work, wname, e.opts.Gustd, []string{"worker", "--name", wname, "--data-dir", filepath.Join(e.work, wname),
		"--gossip-fast", "--grpc", wg, "--gossip", wgo, "--join", seed}, nil)
	if err != nil {
		c.stop()
		return nil, err
	}
	c.procs = append(c.procs, p)
	return c, nil
}

func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(30 * time.Second)
	}
}

// failed describes a process that exited, with its log.
func (c *cluster) failed() error {
	for _, p := range c.procs {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.waitErr, p.tail())
		default:
		}
	}
	return nil
}

// leader waits for three voters and returns the leader and a follower.
func (c *cluster) leader(ctx context.Context, cl *client.Client, limit time.Duration) (leader, follower string, err error) {
	deadline := time.Now().Add(limit)
	for {
		if peers, err := cl.ListRaftPeers(ctx); err == nil && len(peers) == 3 {
			leader, follower = "", ""
			for _, p := range peers {
				if p.GetState() == "leader" {
					leader = p.GetName()
				} else if follower == "" {
					follower = p.GetName()
				}
			}
			if leader != "" && follower != "" {
				return leader, follower, nil
			}
		}
		if err := c.failed(); err != nil {
			return "", "", err
		}
		if err := pause(ctx, deadline, nil, 100*time.Millisecond); err != nil {
			return "", "", fmt.Errorf("cluster never formed: %w\n%s", err, c.procs[0].tail())
		}
	}
}

// cluster times warm invokes sent to the Raft leader and to a follower,
// interleaved so both see the same machine noise. Invokes make no Raft
// write, so the two should match.
func (e *env) cluster(ctx context.Context) (*section, error) {
	n := e.opts.samples(ModeCluster)
	c, err := e.startCluster("c")
	if err != nil {
		return nil, err
	}
	defer c.stop()
	clients := map[string]*client.Client{}
	for _, name := range c.names {
		cl, err := client.New([]string{c.grpc[name]}, "")
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		clients[name] = cl
	}
	leader, follower, err := c.leader(ctx, clients[c.names[0]], 60*time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := clients[leader].Deploy(ctx, &gustv1.FunctionConfig{Name: "hello"}, bytes.NewReader(e.zip)); err != nil {
		return nil, err
	}
	req := &gustv1.InvokeRequest{Function: "hello", Payload: e.opts.Payload}
	// The first invoke waits for the worker to join and the follower to
	// see the function.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err = clients[follower].Invoke(ctx, req); err == nil {
			break
		}
		if perr := pause(ctx, deadline, nil, 100*time.Millisecond); perr != nil {
			return nil, fmt.Errorf("first invoke via the follower: %w (%v)", err, perr)
		}
	}
	viaLeader, viaFollower := newRecorder(), newRecorder()
	skipped := 0
	for i := 0; i < n; i++ {
		for _, target := range []string{leader, follower} {
			t0 := time.Now()
			res, err := clients[target].Invoke(ctx, req)
			d := time.Since(t0)
			if err == nil && res.GetColdStart() {
				skipped++ // a second sandbox was started; not what this measures
				continue
			}
			rec := viaLeader
			if target == follower {
				rec = viaFollower
			}
			rec.add(t0, d, ColdNo, err)
		}
		e.progress("cluster samples", i, n)
	}
	lm := viaLeader.measurement("cluster.leader", "cluster warm invoke via the Raft leader (gRPC)", -1)
	lm.Client, lm.IsReference = "grpc", true
	fm := viaFollower.measurement("cluster.follower", "cluster warm invoke via a follower (gRPC)", -1)
	fm.Client, fm.Reference = "grpc", "cluster.leader"
	s := &section{}
	s.add(ModeCluster, lm, fm)
	if skipped > 0 {
		s.note("cluster: %d cold invokes left out", skipped)
	}
	return s, c.failed()
}
