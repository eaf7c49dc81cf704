package coordinator

import (
	"context"
	"time"

	"github.com/gustfaas/gust/coordinator/fleet"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
)

// Member is a node as gossip sees it.
type Member struct {
	Name string
	// Role is coordinator or worker.
	Role string
	// Status is alive, suspect, dead or left.
	Status     string
	GRPC       string
	Raft       string
	GossipAddr string
	MemoryMB   int64
}

// Membership is the gossip view; nil in single-process mode.
type Membership interface {
	Members() []Member
}

// Role names.
const (
	RoleCoordinator = "coordinator"
	RoleWorker      = "worker"
)

// gossipPeers turns the membership into the coordinator address book:
// each coordinator's node port, which serves Raft and PeerService.
type gossipPeers struct{ m Membership }

func (g gossipPeers) CoordinatorAddrs() map[string]string {
	out := map[string]string{}
	for _, m := range g.m.Members() {
		if m.Role == RoleCoordinator && m.Status == "alive" {
			out[m.Name] = m.Raft
		}
	}
	return out
}

// Reconciling with gossip polls every 200 ms rather than reacting to
// events, which makes a missed event harmless.
const reconcileEvery = 200 * time.Millisecond

// every runs fn now and then every period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reconcileWorkers hands the router the workers gossip announces.
func (c *Coordinator) reconcileWorkers() {
	var workers []fleet.Announced
	for _, m := range c.members.Members() {
		if m.Role == RoleWorker {
			workers = append(workers, fleet.Announced{Name: m.Name, Addr: m.GRPC, Alive: m.Status == "alive"})
		}
	}
	c.router.Reconcile(workers)
}

// reconcileVoters, while this coordinator leads, makes every alive
// coordinator gossip announces a Raft voter, so joining needs no manual
// step.
func (c *Coordinator) reconcileVoters() {
	members := c.members.Members()
	peers, err := c.raft.Peers()
	if err != nil {
		return
	}
	inRaft := map[string]string{}
	for _, p := range peers {
		inRaft[p.ID] = p.Address
	}
	for _, m := range members {
		if m.Role != RoleCoordinator || m.Status != "alive" || m.Raft == "" {
			continue
		}
		if addr, ok := inRaft[m.Name]; ok && addr == m.Raft {
			continue
		}
		if !c.provenCoordinator(m) {
			continue
		}
		if err := c.raft.AddVoter(m.Name, m.Raft); err != nil {
			c.log.Warn("add raft voter", "name", m.Name, "err", err)
		} else {
			c.log.Info("added raft voter", "name", m.Name, "raft", m.Raft)
		}
	}
}

// retryUnproven is how long a coordinator that failed Hello waits before
// it is asked again.
const retryUnproven = 2 * time.Second

// provenCoordinator asks a coordinator gossip announced to name itself on
// its node port. Gossip without --gossip-key lets anyone announce
// anything; made a voter, a stranger would count towards every quorum
// without ever voting. Only a node that passes the node handshake (and
// TLS, if on) and answers with the name gossip gave is added.
func (c *Coordinator) provenCoordinator(m Member) bool {
	key := m.Name + " " + m.Raft
	if at, ok := c.unproven[key]; ok && time.Since(at) < retryUnproven {
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, time.Second)
	defer cancel()
	pc, err := c.clients.Get(m.Raft)
	var res *nodev1.HelloResponse
	if err == nil {
		res, err = pc.Hello(ctx, &nodev1.HelloRequest{})
	}
	if err == nil && res.GetName() == m.Name {
		delete(c.unproven, key)
		return true
	}
	if c.unproven == nil {
		c.unproven = map[string]time.Time{}
	}
	if _, warned := c.unproven[key]; !warned {
		c.log.Warn("not adding a coordinator gossip announced as a raft voter: it did not answer on its node port "+
			"(another --cluster-secret or TLS CA, or not a gust node)", "name", m.Name, "raft", m.Raft, "answered", res.GetName(), "err", err)
	}
	c.unproven[key] = time.Now()
	return false
}
