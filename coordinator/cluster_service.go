package coordinator

import (
	"context"
	"errors"
	"sort"

	"github.com/gustfaas/gust/coordinator/fleet"

	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
)

// clusterServer serves ClusterService from gossip, the router and Raft.
type clusterServer struct {
	gustv1.UnimplementedClusterServiceServer
	c *Coordinator
}

func (s *clusterServer) ListNodes(context.Context, *gustv1.ListNodesRequest) (*gustv1.ListNodesResponse, error) {
	workers := map[string]fleet.WorkerStatus{}
	for _, w := range s.c.router.Workers() {
		workers[w.Name] = w
	}
	var nodes []*gustv1.Node
	if s.c.members == nil {
		// One process: this coordinator and its in-process worker.
		nodes = append(nodes, &gustv1.Node{Name: s.c.cfg.Name, Role: RoleCoordinator, Status: "alive", Address: s.c.GRPCAddr()})
		for _, w := range workers {
			nodes = append(nodes, workerNode(w.Name, "alive", s.c.GRPCAddr(), "", w))
		}
	} else {
		for _, m := range s.c.members.Members() {
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
	return &gustv1.ListNodesResponse{Nodes: nodes}, nil
}

func workerNode(name, status, addr, gossipAddr string, w fleet.WorkerStatus) *gustv1.Node {
	return &gustv1.Node{Name: name, Role: RoleWorker, Status: status, Address: addr, GossipAddress: gossipAddr,
		MemoryMb: w.MemoryMB, FreeMemoryMb: w.FreeMemoryMB, Sandboxes: w.Sandboxes, Draining: w.Draining}
}

func (s *clusterServer) DrainNode(ctx context.Context, req *gustv1.DrainNodeRequest) (*gustv1.DrainNodeResponse, error) {
	if err := s.c.router.Drain(ctx, req.GetName()); err != nil {
		return nil, toStatus(s.c.log, err)
	}
	return &gustv1.DrainNodeResponse{}, nil
}

func (s *clusterServer) ListSandboxes(ctx context.Context, req *gustv1.ListSandboxesRequest) (*gustv1.ListSandboxesResponse, error) {
	list, err := s.c.router.Sandboxes(ctx, req.GetNode())
	if err != nil {
		return nil, toStatus(s.c.log, err)
	}
	out := &gustv1.ListSandboxesResponse{}
	for _, sb := range list {
		out.Sandboxes = append(out.Sandboxes, &gustv1.Sandbox{Id: sb.ID, Node: sb.Worker, Function: sb.Function,
			MemoryMb: int32(sb.MemoryMB), State: sb.State, LastUsedUnixMs: sb.LastUsed.UnixMilli()})
	}
	return out, nil
}

func (s *clusterServer) ListRaftPeers(context.Context, *gustv1.ListRaftPeersRequest) (*gustv1.ListRaftPeersResponse, error) {
	peers, err := s.c.raft.Peers()
	if err != nil {
		return nil, toStatus(s.c.log, err)
	}
	leader, _ := s.c.raft.Leader()
	out := &gustv1.ListRaftPeersResponse{}
	for _, p := range peers {
		state := "follower"
		switch {
		case p.ID == leader:
			state = "leader"
		case p.ID == s.c.cfg.Name:
			state = s.c.raft.State()
		}
		out.Peers = append(out.Peers, &gustv1.RaftPeer{Name: p.ID, Address: p.Address, State: state, Voter: p.Voter})
	}
	return out, nil
}

func (s *clusterServer) RemoveRaftPeer(ctx context.Context, req *gustv1.RemoveRaftPeerRequest) (*gustv1.RemoveRaftPeerResponse, error) {
	err := s.c.raft.RemoveServer(req.GetName())
	if errors.Is(err, raftstore.ErrNotLeader) {
		// Membership changes run on the leader; forward the call there.
		err = s.c.forwardRemovePeer(ctx, req.GetName())
	}
	if errors.Is(err, raftstore.ErrNotFound) {
		return nil, toStatus(s.c.log, apierr.New(apierr.ResourceNotFound, "no raft peer named %s", req.GetName()))
	}
	if err != nil {
		return nil, toStatus(s.c.log, err)
	}
	return &gustv1.RemoveRaftPeerResponse{}, nil
}

func (s *clusterServer) GetQuota(_ context.Context, req *gustv1.GetQuotaRequest) (*gustv1.GetQuotaResponse, error) {
	return &gustv1.GetQuotaResponse{Quota: s.c.quotas.get(req.GetTenant())}, nil
}

func (s *clusterServer) SetQuota(ctx context.Context, req *gustv1.SetQuotaRequest) (*gustv1.SetQuotaResponse, error) {
	q, err := s.c.quotas.set(ctx, req.GetTenant(), req.GetConcurrency())
	if err != nil {
		return nil, toStatus(s.c.log, err)
	}
	return &gustv1.SetQuotaResponse{Quota: q}, nil
}

// SetTenantCaps adapts setCaps to ClusterService (root only: tenancy.go
// does not list it).
func (s *clusterServer) SetTenantCaps(ctx context.Context, req *gustv1.SetTenantCapsRequest) (*gustv1.SetTenantCapsResponse, error) {
	q, err := s.c.quotas.setCaps(ctx, req.GetTenant(), req.MaxReserved, req.MaxProvisioned)
	if err != nil {
		return nil, toStatus(s.c.log, err)
	}
	return &gustv1.SetTenantCapsResponse{Quota: q}, nil
}

func (s *clusterServer) AddSchedule(ctx context.Context, req *gustv1.AddScheduleRequest) (*gustv1.AddScheduleResponse, error) {
	sc, err := s.c.iv.addSchedule(ctx, req.GetSchedule())
	if err != nil {
		return nil, toStatus(s.c.log, err)
	}
	return &gustv1.AddScheduleResponse{Schedule: sc}, nil
}

func (s *clusterServer) ListSchedules(context.Context, *gustv1.ListSchedulesRequest) (*gustv1.ListSchedulesResponse, error) {
	return &gustv1.ListSchedulesResponse{Schedules: s.c.iv.listSchedules()}, nil
}

func (s *clusterServer) RemoveSchedule(ctx context.Context, req *gustv1.RemoveScheduleRequest) (*gustv1.RemoveScheduleResponse, error) {
	if err := s.c.iv.removeSchedule(ctx, req.GetName()); err != nil {
		return nil, toStatus(s.c.log, err)
	}
	return &gustv1.RemoveScheduleResponse{}, nil
}
