// Package grpcopt holds the gRPC settings every gust link shares.
package grpcopt

import "google.golang.org/grpc"

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
