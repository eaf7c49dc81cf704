package workerapi

import (
	"context"
	"errors"

	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server serves a Worker as gust.node.v1.WorkerService, for coordinators
// on other hosts. Errors go to the wire here, once (toStatus).
type Server struct {
	nodev1.UnimplementedWorkerServiceServer
	W Worker
}

// Register adds the service to a gRPC server.
func (s *Server) Register(gs *grpc.Server) { nodev1.RegisterWorkerServiceServer(gs, s) }

// Invoke runs one invocation, sending Started before the result.
func (s *Server) Invoke(req *nodev1.InvokeRequest, stream grpc.ServerStreamingServer[nodev1.InvokeResponse]) error {
	var sendErr error
	r := requestFromWire(req)
	r.OnStart = func(sandbox string, cold bool) {
		sendErr = stream.Send(&nodev1.InvokeResponse{Event: &nodev1.InvokeResponse_Started{
			Started: &nodev1.Started{Sandbox: sandbox, ColdStart: cold}}})
	}
	res, err := s.W.Invoke(stream.Context(), r)
	if errors.Is(err, ErrNoWarm) {
		return stream.Send(&nodev1.InvokeResponse{Event: &nodev1.InvokeResponse_NoWarmSandbox{NoWarmSandbox: &nodev1.NoWarmSandbox{}}})
	}
	if err != nil {
		return toStatus(err)
	}
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&nodev1.InvokeResponse{Event: &nodev1.InvokeResponse_Result{Result: resultToWire(res)}})
}

// WatchPool streams the pool state.
func (s *Server) WatchPool(_ *nodev1.WatchPoolRequest, stream grpc.ServerStreamingServer[nodev1.WatchPoolResponse]) error {
	var seq uint64
	err := s.W.WatchPool(stream.Context(), func(st PoolState) error {
		seq++
		return stream.Send(stateToWire(s.W.Name(), seq, st))
	})
	if stream.Context().Err() != nil {
		return nil
	}
	return toStatus(err)
}

// ListSandboxes lists live sandboxes.
func (s *Server) ListSandboxes(ctx context.Context, _ *nodev1.ListSandboxesRequest) (*nodev1.ListSandboxesResponse, error) {
	list, err := s.W.Sandboxes(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodev1.ListSandboxesResponse{Sandboxes: sandboxesToWire(list)}, nil
}

// Drain stops new invocations.
func (s *Server) Drain(ctx context.Context, _ *nodev1.DrainRequest) (*nodev1.DrainResponse, error) {
	if err := s.W.Drain(ctx); err != nil {
		return nil, toStatus(err)
	}
	return &nodev1.DrainResponse{}, nil
}

// FunctionLogs streams a function's retained log.
func (s *Server) FunctionLogs(req *nodev1.FunctionLogsRequest, stream grpc.ServerStreamingServer[nodev1.FunctionLogsResponse]) error {
	opts := LogOptions{Follow: req.GetFollow(), Timestamps: req.GetTimestamps(), Since: fromUnixMs(req.GetSinceUnixMs())}
	err := s.W.ReadLogs(stream.Context(), req.GetFunction(), opts, func(b []byte) error {
		return stream.Send(&nodev1.FunctionLogsResponse{Data: b})
	})
	return toStatus(err)
}

// FunctionUsage sums the invocations run here over a window.
func (s *Server) FunctionUsage(ctx context.Context, req *nodev1.FunctionUsageRequest) (*nodev1.FunctionUsageResponse, error) {
	r, err := s.W.Usage(ctx, req.GetFunction(), fromUnixMs(req.GetSinceUnixMs()), fromUnixMs(req.GetUntilUnixMs()))
	if err != nil {
		return nil, toStatus(err)
	}
	return usageToWire(r), nil
}

// Provision keeps initialised sandboxes for provisioned concurrency.
func (s *Server) Provision(ctx context.Context, req *nodev1.ProvisionRequest) (*nodev1.ProvisionResponse, error) {
	if req.GetCount() < 0 || req.GetHoldMs() < 0 {
		return nil, status.Error(codes.InvalidArgument, "count and hold must not be negative")
	}
	existing, started, err := s.W.Provision(ctx, specFromWire(req.GetFunction()), int(req.GetCount()), msDuration(req.GetHoldMs()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodev1.ProvisionResponse{Existing: int32(existing), Started: int32(started)}, nil
}

// Retire destroys a deleted function's sandboxes.
func (s *Server) Retire(ctx context.Context, req *nodev1.RetireRequest) (*nodev1.RetireResponse, error) {
	n, err := s.W.Retire(ctx, req.GetFunction())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodev1.RetireResponse{Sandboxes: int32(n)}, nil
}
