package worker

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gustfaas/gust/internal/chunkio"
	"github.com/gustfaas/gust/internal/nodeauth"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// RemoteCode fetches code zips from coordinators (PeerService.GetCode),
// trying each in turn. The code cache verifies the sha256 of what arrives.
type RemoteCode struct {
	// Coordinators returns the node ports of coordinators believed alive.
	Coordinators func() []string
	// Creds secure the connections (mutual TLS in a TLS cluster); nil is
	// plaintext.
	Creds credentials.TransportCredentials
	// Secret is the cluster secret the node handshake proves.
	Secret nodeauth.Secret
}

// OpenCode streams a zip from the first coordinator that has it.
func (rc RemoteCode) OpenCode(ctx context.Context, digest string) (io.ReadCloser, error) {
	var errs []error
	creds := rc.Creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	for _, addr := range rc.Coordinators() {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(nodeauth.Dialer(rc.Secret, nodeauth.GRPC)))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		stream, err := nodev1.NewPeerServiceClient(conn).GetCode(ctx, &nodev1.GetCodeRequest{Digest: digest})
		if err == nil {
			// Read the first message now, so a coordinator without the
			// code is skipped rather than handed to the cache.
			var first *nodev1.GetCodeResponse
			if first, err = stream.Recv(); err == nil || errors.Is(err, io.EOF) {
				eof := errors.Is(err, io.EOF)
				next := func() ([]byte, error) {
					if eof {
						return nil, io.EOF
					}
					msg, err := stream.Recv()
					return msg.GetData(), err
				}
				return codeStream{Reader: chunkio.NewReader(first.GetData(), next), conn: conn}, nil
			}
		}
		conn.Close()
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("no coordinator known")
	}
	return nil, errors.Join(errs...)
}

// codeStream reads a fetched zip and closes its connection.
type codeStream struct {
	*chunkio.Reader
	conn *grpc.ClientConn
}

func (s codeStream) Close() error { return s.conn.Close() }
