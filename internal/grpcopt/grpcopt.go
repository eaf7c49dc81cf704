// Package grpcopt holds the gRPC settings every gust link shares.
package grpcopt

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxMessage bounds a gRPC message on every gust link. It is over the
// 6 MB payload limit, so a payload over that limit arrives and is refused
// by name (RequestTooLargeException) rather than by the transport.
const MaxMessage = 16 << 20

// ServerSizes lets a server send and receive messages up to MaxMessage.
func ServerSizes() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessage), grpc.MaxSendMsgSize(MaxMessage)}
}

// CallSizes lets a client send and receive messages up to MaxMessage.
func CallSizes() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(MaxMessage))
}

// ContextStatus is the status of an error that is its context's ending
// (Canceled or DeadlineExceeded), so callers see why the call stopped and
// no server counts it as its own failure; nil for any other error.
func ContextStatus(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return nil
}
