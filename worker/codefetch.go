package worker

import (
	"context"
	"errors"
	"fmt"
	"io"

	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// RemoteCode fetches code zips from coordinators (PeerService.GetCode),
// trying each in turn. The code cache verifies the sha256 of what arrives.
type RemoteCode struct {
	// Coordinators returns the gRPC addresses of coordinators believed alive.
	Coordinators func() []string
}

// OpenCode streams a zip from the first coordinator that has it.
func (rc RemoteCode) OpenCode(ctx context.Context, digest string) (io.ReadCloser, error) {
	var errs []error
	for _, addr := range rc.Coordinators() {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
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
				return &codeStream{conn: conn, recv: stream.Recv, buf: first.GetData(), eof: errors.Is(err, io.EOF)}, nil
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

type codeStream struct {
	conn *grpc.ClientConn
	recv func() (*nodev1.GetCodeResponse, error)
	buf  []byte
	eof  bool
}

func (s *codeStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		msg, err := s.recv()
		if err != nil {
			return 0, err
		}
		s.buf = msg.GetData()
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *codeStream) Close() error { return s.conn.Close() }
