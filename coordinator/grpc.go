package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gustfaas/gust/coordinator/replica"

	"github.com/gustfaas/gust/coordinator/fleet"
	"github.com/gustfaas/gust/worker/workerapi"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/chunkio"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus maps an error to gRPC, once, using apierr's table.
func toStatus(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	e := toAPIError(err).(*apierr.Error)
	if e.Name == apierr.Service {
		log.Error("internal error", "err", err)
	}
	return e.GRPCStatus().Err()
}

// toAPIError names an error for users: named errors pass through; the
// platform's own sentinels get their name; anything else is a ServiceException.
func toAPIError(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := apierr.As(err); ok {
		return e
	}
	if errors.Is(err, raftstore.ErrNotLeader) || errors.Is(err, replica.ErrLeaderUnreachable) {
		return apierr.New(apierr.ResourceNotReady, "%v", err)
	}
	return apierr.New(apierr.Service, "%v", err)
}

// functionServer adapts functions to gRPC.
type functionServer struct {
	gustv1.UnimplementedFunctionServiceServer
	fns    *functions
	router *fleet.Router
	log    *slog.Logger
}

func (s *functionServer) UploadCode(stream gustv1.FunctionService_UploadCodeServer) error {
	info, err := s.fns.upload(stream.Context(), chunkio.NewReader(nil, func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	}))
	if err != nil {
		return toStatus(s.log, err)
	}
	return stream.SendAndClose(&gustv1.UploadCodeResponse{Digest: info.Digest, Size: info.Size, UnzippedSize: info.UnzippedSize})
}

func (s *functionServer) PutFunction(ctx context.Context, req *gustv1.PutFunctionRequest) (*gustv1.PutFunctionResponse, error) {
	fn, err := s.fns.put(ctx, req.GetConfig(), req.GetCodeDigest())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PutFunctionResponse{Function: fn}, nil
}

func (s *functionServer) GetFunction(ctx context.Context, req *gustv1.GetFunctionRequest) (*gustv1.GetFunctionResponse, error) {
	fn, err := s.fns.get(ctx, req.GetName(), req.GetQualifier())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.GetFunctionResponse{Function: fn, Concurrency: s.fns.quotas.concurrency(req.GetName())}, nil
}

func (s *functionServer) PutFunctionConcurrency(ctx context.Context, req *gustv1.PutFunctionConcurrencyRequest) (*gustv1.PutFunctionConcurrencyResponse, error) {
	c, err := s.fns.quotas.setConcurrency(ctx, s.fns, req.GetName(), req.GetReserved(), req.GetProvisioned())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PutFunctionConcurrencyResponse{Concurrency: c}, nil
}

func (s *functionServer) ListFunctions(context.Context, *gustv1.ListFunctionsRequest) (*gustv1.ListFunctionsResponse, error) {
	return &gustv1.ListFunctionsResponse{Functions: s.fns.list()}, nil
}

func (s *functionServer) DeleteFunction(ctx context.Context, req *gustv1.DeleteFunctionRequest) (*gustv1.DeleteFunctionResponse, error) {
	if err := s.fns.delete(ctx, req.GetName(), req.GetQualifier()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.DeleteFunctionResponse{}, nil
}

func (s *functionServer) PublishVersion(ctx context.Context, req *gustv1.PublishVersionRequest) (*gustv1.PublishVersionResponse, error) {
	fn, err := s.fns.publish(ctx, req.GetName(), req.GetDescription())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PublishVersionResponse{Function: fn}, nil
}

func (s *functionServer) PutAlias(ctx context.Context, req *gustv1.PutAliasRequest) (*gustv1.PutAliasResponse, error) {
	a, err := s.fns.putAlias(ctx, req.GetAlias(), req.GetCreateOnly(), req.GetUpdateOnly())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PutAliasResponse{Alias: a}, nil
}

func (s *functionServer) ListAliases(ctx context.Context, req *gustv1.ListAliasesRequest) (*gustv1.ListAliasesResponse, error) {
	if _, err := s.fns.get(ctx, req.GetName(), ""); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.ListAliasesResponse{Aliases: s.fns.store.Aliases(req.GetName())}, nil
}

func (s *functionServer) ListVersions(ctx context.Context, req *gustv1.ListVersionsRequest) (*gustv1.ListVersionsResponse, error) {
	latest, err := s.fns.get(ctx, req.GetName(), "")
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.ListVersionsResponse{Versions: append([]*gustv1.Function{latest}, s.fns.store.Versions(req.GetName())...)}, nil
}

func (s *functionServer) GetLogs(req *gustv1.GetLogsRequest, stream grpc.ServerStreamingServer[gustv1.GetLogsResponse]) error {
	ctx := stream.Context()
	if _, err := s.fns.get(ctx, req.GetName(), ""); err != nil {
		return toStatus(s.log, err)
	}
	opts := workerapi.LogOptions{Follow: req.GetFollow(), Timestamps: req.GetTimestamps()}
	if ms := req.GetSinceMs(); ms > 0 {
		opts.Since = time.Now().Add(-time.Duration(ms) * time.Millisecond)
	}
	err := s.router.Logs(ctx, req.GetName(), opts, func(worker string, data []byte) error {
		return stream.Send(&gustv1.GetLogsResponse{Worker: worker, Data: data})
	})
	return toStatus(s.log, err)
}

// GetUsage sums the workers' usage rollups. A named function must exist;
// the listing of all includes functions deleted since they ran.
func (s *functionServer) GetUsage(ctx context.Context, req *gustv1.GetUsageRequest) (*gustv1.GetUsageResponse, error) {
	if req.GetWindowMs() < 0 {
		return nil, toStatus(s.log, apierr.New(apierr.InvalidParameterValue, "window must not be negative"))
	}
	if req.GetName() != "" {
		if _, err := s.fns.get(ctx, req.GetName(), ""); err != nil {
			return nil, toStatus(s.log, err)
		}
	}
	until := time.Now()
	since := time.Time{}
	if ms := req.GetWindowMs(); ms > 0 {
		since = until.Add(-time.Duration(ms) * time.Millisecond)
	}
	usage, answered, missing := s.router.Usage(ctx, req.GetName(), since, until)
	res := &gustv1.GetUsageResponse{UntilUnixMs: until.UnixMilli(), Workers: int32(answered), MissingWorkers: missing}
	if !since.IsZero() {
		res.SinceUnixMs = since.UnixMilli()
	}
	for _, u := range usage {
		res.Usage = append(res.Usage, &gustv1.FunctionUsage{Name: u.Function, Invocations: u.Requests,
			BilledMs: u.BilledMs, GbSeconds: u.GBSeconds()})
	}
	return res, nil
}

// invokeServer adapts invoker to gRPC.
type invokeServer struct {
	gustv1.UnimplementedInvokeServiceServer
	iv  *invoker
	log *slog.Logger
}

func (s *invokeServer) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	res, err := s.iv.invoke(ctx, req)
	return res, toStatus(s.log, err)
}

func (s *invokeServer) InvokeAsync(ctx context.Context, req *gustv1.InvokeAsyncRequest) (*gustv1.InvokeAsyncResponse, error) {
	id, err := s.iv.invokeAsync(ctx, req)
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.InvokeAsyncResponse{InvocationId: id}, nil
}

func (s *invokeServer) GetInvocation(ctx context.Context, req *gustv1.GetInvocationRequest) (*gustv1.GetInvocationResponse, error) {
	inv, err := s.iv.getInvocation(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.GetInvocationResponse{Invocation: inv}, nil
}
