package coordinator

import (
	"crypto/tls"
	"strings"

	"github.com/gustfaas/gust/internal/tlsconf"
	"google.golang.org/grpc"
)

// nodeInternal says whether a gRPC method belongs to a node-internal
// service (proto/gust/node/v1: PeerService, WorkerService).
func nodeInternal(fullMethod string) bool { return strings.HasPrefix(fullMethod, "/gust.node.v1.") }

// grpcTLS are the coordinator's user-facing gRPC server options with TLS
// on (none without). The handshake only verifies a client certificate if
// one is given (users may connect with none: tokens, not certificates, say
// who a user is). The node-internal services are not served on this port
// at all (see RegisterNodeServices); should one ever be, it stays closed,
// per call, to anything but a verified node certificate.
func grpcTLS(t *tlsconf.TLS) []grpc.ServerOption {
	return t.ServerOptions(tls.VerifyClientCertIfGiven, nodeInternal)
}
