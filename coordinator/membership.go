package coordinator

import (
	"context"
	"time"
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

// reconcile keeps the router and the Raft configuration in line with
// gossip: workers are connected and taken out of placement as gossip says;
// the leader adds every alive coordinator as a voter, so joining needs no
// manual step. Polling (every 200 ms) rather than reacting to events makes
// a missed event harmless.
func (c *Coordinator) reconcile(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		c.reconcileOnce()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *Coordinator) reconcileOnce() {
	members := c.members.Members()
	seen := map[string]bool{}
	for _, m := range members {
		if m.Role != RoleWorker {
			continue
		}
		seen[m.Name] = true
		c.router.SetWorker(m.Name, m.GRPC, m.Status == "alive")
	}
	for _, w := range c.router.Workers() {
		if !seen[w.Name] {
			c.router.RemoveWorker(w.Name)
		}
	}
	if !c.raft.IsLeader() {
		return
	}
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
		if err := c.raft.AddVoter(m.Name, m.Raft); err != nil {
			c.log.Warn("add raft voter", "name", m.Name, "err", err)
		} else {
			c.log.Info("added raft voter", "name", m.Name, "raft", m.Raft)
		}
	}
}
