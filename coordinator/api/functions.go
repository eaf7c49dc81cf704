package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/chunkio"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/worker/workerapi"
	"google.golang.org/grpc"
)

// functionServer adapts Functions to FunctionService.
type functionServer struct {
	gustv1.UnimplementedFunctionServiceServer
	fns     Functions
	workers Workers
	log     *slog.Logger
}

func (s *functionServer) UploadCode(stream gustv1.FunctionService_UploadCodeServer) error {
	info, err := s.fns.Upload(stream.Context(), chunkio.NewReader(nil, func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	}))
	if err != nil {
		return toStatus(s.log, err)
	}
	return stream.SendAndClose(&gustv1.UploadCodeResponse{Digest: info.Digest, Size: info.Size, UnzippedSize: info.UnzippedSize})
}

func (s *functionServer) PutFunction(ctx context.Context, req *gustv1.PutFunctionRequest) (*gustv1.PutFunctionResponse, error) {
	fn, err := s.fns.Put(ctx, req.GetConfig(), req.GetCodeDigest())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PutFunctionResponse{Function: fn}, nil
}

func (s *functionServer) GetFunction(ctx context.Context, req *gustv1.GetFunctionRequest) (*gustv1.GetFunctionResponse, error) {
	fn, err := s.fns.Get(ctx, req.GetName(), req.GetQualifier())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.GetFunctionResponse{Function: fn, Concurrency: s.fns.Concurrency(req.GetName())}, nil
}

func (s *functionServer) PutFunctionConcurrency(ctx context.Context, req *gustv1.PutFunctionConcurrencyRequest) (*gustv1.PutFunctionConcurrencyResponse, error) {
	c, err := s.fns.SetConcurrency(ctx, req.GetName(), req.GetReserved(), req.GetProvisioned())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PutFunctionConcurrencyResponse{Concurrency: c}, nil
}

func (s *functionServer) ListFunctions(context.Context, *gustv1.ListFunctionsRequest) (*gustv1.ListFunctionsResponse, error) {
	return &gustv1.ListFunctionsResponse{Functions: s.fns.List()}, nil
}

func (s *functionServer) DeleteFunction(ctx context.Context, req *gustv1.DeleteFunctionRequest) (*gustv1.DeleteFunctionResponse, error) {
	if err := s.fns.Delete(ctx, req.GetName(), req.GetQualifier()); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.DeleteFunctionResponse{}, nil
}

func (s *functionServer) PublishVersion(ctx context.Context, req *gustv1.PublishVersionRequest) (*gustv1.PublishVersionResponse, error) {
	fn, err := s.fns.Publish(ctx, req.GetName(), req.GetDescription())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PublishVersionResponse{Function: fn}, nil
}

func (s *functionServer) PutAlias(ctx context.Context, req *gustv1.PutAliasRequest) (*gustv1.PutAliasResponse, error) {
	a, err := s.fns.PutAlias(ctx, req.GetAlias(), req.GetCreateOnly(), req.GetUpdateOnly())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.PutAliasResponse{Alias: a}, nil
}

func (s *functionServer) ListAliases(ctx context.Context, req *gustv1.ListAliasesRequest) (*gustv1.ListAliasesResponse, error) {
	if _, err := s.fns.Get(ctx, req.GetName(), ""); err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.ListAliasesResponse{Aliases: s.fns.Aliases(req.GetName())}, nil
}

func (s *functionServer) ListVersions(ctx context.Context, req *gustv1.ListVersionsRequest) (*gustv1.ListVersionsResponse, error) {
	latest, err := s.fns.Get(ctx, req.GetName(), "")
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.ListVersionsResponse{Versions: append([]*gustv1.Function{latest}, s.fns.Versions(req.GetName())...)}, nil
}

func (s *functionServer) GetLogs(req *gustv1.GetLogsRequest, stream grpc.ServerStreamingServer[gustv1.GetLogsResponse]) error {
	ctx := stream.Context()
	if _, err := s.fns.Get(ctx, req.GetName(), ""); err != nil {
		return toStatus(s.log, err)
	}
	opts := workerapi.LogOptions{Follow: req.GetFollow(), Timestamps: req.GetTimestamps()}
	if ms := req.GetSinceMs(); ms > 0 {
		opts.Since = time.Now().Add(-time.Duration(ms) * time.Millisecond)
	}
	err := s.workers.Logs(ctx, req.GetName(), opts, func(worker string, data []byte) error {
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
		if _, err := s.fns.Get(ctx, req.GetName(), ""); err != nil {
			return nil, toStatus(s.log, err)
		}
	}
	until := time.Now()
	since := time.Time{}
	if ms := req.GetWindowMs(); ms > 0 {
		since = until.Add(-time.Duration(ms) * time.Millisecond)
	}
	usage, answered, missing := s.workers.Usage(ctx, req.GetName(), since, until)
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
