package worker

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/gustfaas/gust/internal/tenant"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// GRPCServer adapts a Worker to WorkerService, so coordinators on other
// hosts can use it. Errors map to gRPC codes here, once.
type GRPCServer struct {
	nodev1.UnimplementedWorkerServiceServer
	W *Worker
}

// Register adds the service to a gRPC server.
func (s *GRPCServer) Register(gs *grpc.Server) { nodev1.RegisterWorkerServiceServer(gs, s) }

// Invoke runs one invocation, sending Started before the result.
func (s *GRPCServer) Invoke(req *nodev1.InvokeRequest, stream grpc.ServerStreamingServer[nodev1.InvokeResponse]) error {
	var sendErr error
	res, err := s.W.Invoke(stream.Context(), InvokeRequest{
		Function:      SpecFromProto(req.GetFunction()),
		RequestID:     req.GetRequestId(),
		Payload:       req.GetPayload(),
		ClientContext: req.GetClientContext(),
		TraceID:       req.GetTraceId(),
		LogTail:       req.GetLogTail(),
		WarmOnly:      req.GetWarmOnly(),
		OnStart: func(sandbox string, cold bool) {
			sendErr = stream.Send(&nodev1.InvokeResponse{Event: &nodev1.InvokeResponse_Started{
				Started: &nodev1.Started{Sandbox: sandbox, ColdStart: cold}}})
		},
	})
	if errors.Is(err, ErrNoWarm) {
		return stream.Send(&nodev1.InvokeResponse{Event: &nodev1.InvokeResponse_NoWarmSandbox{NoWarmSandbox: &nodev1.NoWarmSandbox{}}})
	}
	if err != nil {
		return toStatus(err)
	}
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&nodev1.InvokeResponse{Event: &nodev1.InvokeResponse_Result{Result: ResultToProto(res)}})
}

// WatchPool streams the pool state whenever it changes, and at least every second.
func (s *GRPCServer) WatchPool(_ *nodev1.WatchPoolRequest, stream grpc.ServerStreamingServer[nodev1.WatchPoolResponse]) error {
	changed, stop := s.W.Watch()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var seq uint64
	for {
		seq++
		if err := stream.Send(s.stateProto(seq)); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
			// Coalesce a burst of changes into one message.
			time.Sleep(2 * time.Millisecond)
		case <-tick.C:
		}
	}
}

func (s *GRPCServer) stateProto(seq uint64) *nodev1.WatchPoolResponse {
	return StateToProto(s.W.Name(), seq, s.W.State())
}

// ListSandboxes lists live sandboxes.
func (s *GRPCServer) ListSandboxes(context.Context, *nodev1.ListSandboxesRequest) (*nodev1.ListSandboxesResponse, error) {
	return &nodev1.ListSandboxesResponse{Sandboxes: SandboxesToProto(s.W.Name(), s.W.Sandboxes())}, nil
}

// Drain stops new invocations.
func (s *GRPCServer) Drain(context.Context, *nodev1.DrainRequest) (*nodev1.DrainResponse, error) {
	s.W.Drain()
	return &nodev1.DrainResponse{}, nil
}

// FunctionLogs streams a function's retained log.
func (s *GRPCServer) FunctionLogs(req *nodev1.FunctionLogsRequest, stream grpc.ServerStreamingServer[nodev1.FunctionLogsResponse]) error {
	err := s.W.ReadLogs(stream.Context(), req.GetFunction(), LogOptionsFromProto(req), func(b []byte) error {
		return stream.Send(&nodev1.FunctionLogsResponse{Data: b})
	})
	if err != nil {
		return toStatus(err)
	}
	return nil
}

// LogOptionsFromProto converts a logs request's options.
func LogOptionsFromProto(req *nodev1.FunctionLogsRequest) LogOptions {
	opts := LogOptions{Follow: req.GetFollow(), Timestamps: req.GetTimestamps()}
	if ms := req.GetSinceUnixMs(); ms > 0 {
		opts.Since = time.UnixMilli(ms)
	}
	return opts
}

// FunctionUsage sums the invocations run here over a window.
func (s *GRPCServer) FunctionUsage(_ context.Context, req *nodev1.FunctionUsageRequest) (*nodev1.FunctionUsageResponse, error) {
	return UsageToProto(s.W, req), nil
}

// UsageToProto answers a usage request from w's rollup.
func UsageToProto(w *Worker, req *nodev1.FunctionUsageRequest) *nodev1.FunctionUsageResponse {
	var until time.Time
	if ms := req.GetUntilUnixMs(); ms > 0 {
		until = time.UnixMilli(ms)
	}
	usage, retained := w.Usage(req.GetFunction(), time.UnixMilli(req.GetSinceUnixMs()), until)
	out := &nodev1.FunctionUsageResponse{}
	if !retained.IsZero() {
		out.RetainedSinceUnixMs = retained.UnixMilli()
	}
	for _, u := range usage {
		out.Functions = append(out.Functions, &nodev1.FunctionUsage{
			Function: u.Function, Requests: u.Requests, BilledMs: u.BilledMs, BilledMbMs: u.BilledMBMs})
	}
	return out
}

// Provision keeps initialised sandboxes for provisioned concurrency.
func (s *GRPCServer) Provision(ctx context.Context, req *nodev1.ProvisionRequest) (*nodev1.ProvisionResponse, error) {
	existing, started, err := s.W.Provision(ctx, SpecFromProto(req.GetFunction()), int(req.GetCount()),
		time.Duration(req.GetHoldMs())*time.Millisecond)
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodev1.ProvisionResponse{Existing: int32(existing), Started: int32(started)}, nil
}

// Retire destroys a deleted function's sandboxes.
func (s *GRPCServer) Retire(_ context.Context, req *nodev1.RetireRequest) (*nodev1.RetireResponse, error) {
	if !tenant.ValidStored(req.GetFunction()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid function name %q", req.GetFunction())
	}
	return &nodev1.RetireResponse{Sandboxes: int32(s.W.Retire(req.GetFunction()))}, nil
}

// SandboxesToProto converts a sandbox listing.
func SandboxesToProto(worker string, list []SandboxInfo) []*nodev1.Sandbox {
	out := make([]*nodev1.Sandbox, 0, len(list))
	for _, sb := range list {
		out = append(out, &nodev1.Sandbox{Id: sb.ID, Worker: worker, Function: sb.Function, MemoryMb: int32(sb.MemoryMB),
			State: sb.State, LastUsedUnixMs: sb.LastUsed.UnixMilli()})
	}
	return out
}

func toStatus(err error) error {
	switch {
	case errors.Is(err, ErrDraining):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrCapacity):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrInvalidFunction):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrCode):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// SpecFromProto converts a function spec from the wire.
func SpecFromProto(f *nodev1.FunctionSpec) FunctionSpec {
	return FunctionSpec{
		Name: f.GetName(), Version: f.GetVersion(), Revision: f.GetRevision(), Incarnation: f.GetIncarnation(), CodeDigest: f.GetCodeDigest(),
		Handler: f.GetHandler(), MemoryMB: int(f.GetMemoryMb()), Timeout: time.Duration(f.GetTimeoutMs()) * time.Millisecond,
		Env: f.GetEnvironment(),
	}
}

// SpecToProto converts a function spec to the wire.
func SpecToProto(f FunctionSpec) *nodev1.FunctionSpec {
	return &nodev1.FunctionSpec{
		Name: f.Name, Version: f.Version, Revision: f.Revision, Incarnation: f.Incarnation, CodeDigest: f.CodeDigest, Handler: f.Handler,
		MemoryMb: int32(f.MemoryMB), TimeoutMs: f.Timeout.Milliseconds(), Environment: f.Env,
	}
}

// ResultToProto converts a result to the wire.
func ResultToProto(r *InvokeResult) *nodev1.InvokeResult {
	return &nodev1.InvokeResult{
		RequestId: r.RequestID, ExecutedVersion: r.ExecutedVersion, Worker: r.Worker, Sandbox: r.Sandbox,
		ColdStart: r.ColdStart, DurationUs: r.Duration.Microseconds(), InitDurationUs: r.InitDuration.Microseconds(),
		BilledMs: r.BilledMs, MaxMemoryMb: r.MaxMemoryMB, FunctionError: r.FunctionError, Payload: r.Payload, LogTail: r.LogTail,
		ColdStartReason: r.ColdStartReason,
	}
}

// ResultFromProto converts a result from the wire.
func ResultFromProto(r *nodev1.InvokeResult) *InvokeResult {
	return &InvokeResult{
		RequestID: r.GetRequestId(), ExecutedVersion: r.GetExecutedVersion(), Worker: r.GetWorker(), Sandbox: r.GetSandbox(),
		ColdStart: r.GetColdStart(), Duration: time.Duration(r.GetDurationUs()) * time.Microsecond,
		InitDuration: time.Duration(r.GetInitDurationUs()) * time.Microsecond, BilledMs: r.GetBilledMs(),
		MaxMemoryMB: r.GetMaxMemoryMb(), FunctionError: r.GetFunctionError(), Payload: r.GetPayload(), LogTail: r.GetLogTail(),
		ColdStartReason: r.GetColdStartReason(),
	}
}

// StateToProto converts a pool state to the wire.
func StateToProto(worker string, seq uint64, st State) *nodev1.WatchPoolResponse {
	out := &nodev1.WatchPoolResponse{
		Worker: worker, Seq: seq, MemoryMb: st.MemoryMB, FreeMemoryMb: st.FreeMemoryMB,
		Draining: st.Draining, CachedDigests: st.Digests,
	}
	keys := map[string]bool{}
	for k := range st.Idle {
		keys[k] = true
	}
	for k := range st.Busy {
		keys[k] = true
	}
	for k := range keys {
		out.Entries = append(out.Entries, &nodev1.PoolEntry{Key: k, Idle: st.Idle[k], Busy: st.Busy[k]})
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].Key < out.Entries[j].Key })
	return out
}
