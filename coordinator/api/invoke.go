package api

import (
	"context"
	"log/slog"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// invokeServer adapts Invoker to InvokeService.
type invokeServer struct {
	gustv1.UnimplementedInvokeServiceServer
	iv  Invoker
	log *slog.Logger
}

func (s *invokeServer) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	res, err := s.iv.Invoke(ctx, req)
	return res, toStatus(s.log, err)
}

func (s *invokeServer) InvokeAsync(ctx context.Context, req *gustv1.InvokeAsyncRequest) (*gustv1.InvokeAsyncResponse, error) {
	id, err := s.iv.InvokeAsync(ctx, req)
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.InvokeAsyncResponse{InvocationId: id}, nil
}

func (s *invokeServer) GetInvocation(ctx context.Context, req *gustv1.GetInvocationRequest) (*gustv1.GetInvocationResponse, error) {
	inv, err := s.iv.GetInvocation(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.GetInvocationResponse{Invocation: inv}, nil
}
