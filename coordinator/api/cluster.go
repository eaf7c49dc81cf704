package api

import (
	"context"
	"log/slog"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// clusterServer adapts Cluster, Quotas and Schedules to ClusterService.
type clusterServer struct {
	gustv1.UnimplementedClusterServiceServer
	cluster   Cluster
	quotas    Quotas
	schedules Schedules
	log       *slog.Logger
}

func (s *clusterServer) ListNodes(context.Context, *gustv1.ListNodesRequest) (*gustv1.ListNodesResponse, error) {
	return &gustv1.ListNodesResponse{Nodes: s.cluster.Nodes()}, nil
}

func (s *clusterServer) DrainNode(ctx context.Context, req *gustv1.DrainNodeRequest) (*gustv1.DrainNodeResponse, error) {
	if err := s.cluster.DrainNode(ctx, req.GetName()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.DrainNodeResponse{}, nil
}

func (s *clusterServer) ListSandboxes(ctx context.Context, req *gustv1.ListSandboxesRequest) (*gustv1.ListSandboxesResponse, error) {
	list, err := s.cluster.Sandboxes(ctx, req.GetNode())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.ListSandboxesResponse{Sandboxes: list}, nil
}

func (s *clusterServer) ListRaftPeers(context.Context, *gustv1.ListRaftPeersRequest) (*gustv1.ListRaftPeersResponse, error) {
	peers, err := s.cluster.RaftPeers()
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.ListRaftPeersResponse{Peers: peers}, nil
}

func (s *clusterServer) RemoveRaftPeer(ctx context.Context, req *gustv1.RemoveRaftPeerRequest) (*gustv1.RemoveRaftPeerResponse, error) {
	if err := s.cluster.RemoveRaftPeer(ctx, req.GetName()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.RemoveRaftPeerResponse{}, nil
}

func (s *clusterServer) GetQuota(_ context.Context, req *gustv1.GetQuotaRequest) (*gustv1.GetQuotaResponse, error) {
	return &gustv1.GetQuotaResponse{Quota: s.quotas.Get(req.GetTenant())}, nil
}

func (s *clusterServer) SetQuota(ctx context.Context, req *gustv1.SetQuotaRequest) (*gustv1.SetQuotaResponse, error) {
	q, err := s.quotas.Set(ctx, req.GetTenant(), req.GetConcurrency())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.SetQuotaResponse{Quota: q}, nil
}

// SetTenantCaps is root only: tenancy.go does not list it.
func (s *clusterServer) SetTenantCaps(ctx context.Context, req *gustv1.SetTenantCapsRequest) (*gustv1.SetTenantCapsResponse, error) {
	q, err := s.quotas.SetCaps(ctx, req.GetTenant(), req.MaxReserved, req.MaxProvisioned)
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.SetTenantCapsResponse{Quota: q}, nil
}

func (s *clusterServer) AddSchedule(ctx context.Context, req *gustv1.AddScheduleRequest) (*gustv1.AddScheduleResponse, error) {
	sc, err := s.schedules.AddSchedule(ctx, req.GetSchedule())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.AddScheduleResponse{Schedule: sc}, nil
}

func (s *clusterServer) ListSchedules(context.Context, *gustv1.ListSchedulesRequest) (*gustv1.ListSchedulesResponse, error) {
	return &gustv1.ListSchedulesResponse{Schedules: s.schedules.ListSchedules()}, nil
}

func (s *clusterServer) RemoveSchedule(ctx context.Context, req *gustv1.RemoveScheduleRequest) (*gustv1.RemoveScheduleResponse, error) {
	if err := s.schedules.RemoveSchedule(ctx, req.GetName()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.RemoveScheduleResponse{}, nil
}
