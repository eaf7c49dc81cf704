package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/gustfaas/gust/coordinator/fleet"
	"github.com/gustfaas/gust/coordinator/replica"
	"github.com/gustfaas/gust/internal/apierr"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// cluster is the cluster as an operator sees it: gossip's members, the
// router's workers and Raft's servers.
type cluster struct {
	name     string
	grpcAddr func() string // bound once New returns
	router   *fleet.Router
	members  Membership // nil in gustd dev
	raft     *raftstore.Store
	write    *replica.Writer
}

// Nodes lists coordinators and workers, coordinators first, by name.
func (s *cluster) Nodes() []*gustv1.Node {
	workers := map[string]fleet.WorkerStatus{}
	for _, w := range s.router.Workers() {
		workers[w.Name] = w
	}
	var nodes []*gustv1.Node
	if s.members == nil {
		// One process: this coordinator and its in-process worker.
		nodes = append(nodes, &gustv1.Node{Name: s.name, Role: RoleCoordinator, Status: "alive", Address: s.grpcAddr()})
		for _, w := range workers {
			nodes = append(nodes, workerNode(w.Name, "alive", s.grpcAddr(), "", w))
		}
	} else {
		for _, m := range s.members.Members() {
			if m.Role == RoleWorker {
				nodes = append(nodes, workerNode(m.Name, m.Status, m.GRPC, m.GossipAddr, workers[m.Name]))
				continue
			}
			nodes = append(nodes, &gustv1.Node{Name: m.Name, Role: m.Role, Status: m.Status, Address: m.GRPC, GossipAddress: m.GossipAddr})
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		if nodes[i].Role != nodes[j].Role {
			return nodes[i].Role < nodes[j].Role
		}
		return nodes[i].Name < nodes[j].Name
	})
	return nodes
}

func workerNode(name, status, addr, gossipAddr string, w fleet.WorkerStatus) *gustv1.Node {
	return &gustv1.Node{Name: name, Role: RoleWorker, Status: status, Address: addr, GossipAddress: gossipAddr,
		MemoryMb: w.MemoryMB, FreeMemoryMb: w.FreeMemoryMB, Sandboxes: w.Sandboxes, Draining: w.Draining}
}

// DrainNode stops new invocations on a worker.
func (s *cluster) DrainNode(ctx context.Context, name string) error { return s.router.Drain(ctx, name) }

// Sandboxes lists the sandboxes of one worker (node != "") or all.
func (s *cluster) Sandboxes(ctx context.Context, node string) ([]*gustv1.Sandbox, error) {
	list, err := s.router.Sandboxes(ctx, node)
	if err != nil {
		return nil, err
	}
	out := make([]*gustv1.Sandbox, 0, len(list))
	for _, sb := range list {
		out = append(out, &gustv1.Sandbox{Id: sb.ID, Node: sb.Worker, Function: sb.Function,
			MemoryMb: int32(sb.MemoryMB), State: sb.State, LastUsedUnixMs: sb.LastUsed.UnixMilli()})
	}
	return out, nil
}

// RaftPeers lists the Raft servers and their states as this node knows them.
func (s *cluster) RaftPeers() ([]*gustv1.RaftPeer, error) {
	peers, err := s.raft.Peers()
	if err != nil {
		return nil, err
	}
	leader, _ := s.raft.Leader()
	var out []*gustv1.RaftPeer
	for _, p := range peers {
		state := "follower"
		switch {
		case p.ID == leader:
			state = "leader"
		case p.ID == s.name:
			state = s.raft.State()
		}
		out = append(out, &gustv1.RaftPeer{Name: p.ID, Address: p.Address, State: state, Voter: p.Voter})
	}
	return out, nil
}

// RemoveRaftPeer removes a Raft server, on the leader: a follower forwards
// the call there. The caller's right to (root, with --auth) was checked
// at the edge already.
func (s *cluster) RemoveRaftPeer(ctx context.Context, name string) error {
	err := s.raft.RemoveServer(name)
	if errors.Is(err, raftstore.ErrNotLeader) {
		err = s.forwardRemovePeer(ctx, name)
	}
	if errors.Is(err, raftstore.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "no raft peer named %s", name)
	}
	return err
}

func (s *cluster) forwardRemovePeer(ctx context.Context, name string) error {
	pc, err := s.write.LeaderClient()
	if err != nil {
		return err
	}
	_, err = pc.RemovePeer(ctx, &nodev1.RemovePeerRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("remove peer %s: %w", name, raftstore.ErrNotFound)
	}
	return err
}
