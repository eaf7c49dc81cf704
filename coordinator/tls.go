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

// grpcTLS are the coordinator's gRPC server options with TLS on (none
// without). One listener serves users and peers, so the handshake only
// verifies a client certificate if one is given (users may connect with
// none: tokens, not certificates, say who a user is), and the node-internal
// services are closed, per call, to anything but a verified node
// certificate: a user's client certificate from the same CA cannot forward
// a Raft command or plant code.
func grpcTLS(t *tlsconf.TLS) []grpc.ServerOption {
	return t.ServerOptions(tls.VerifyClientCertIfGiven, nodeInternal)
}
