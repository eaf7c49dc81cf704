package replica

import (
	"context"
	"errors"
	"io"

	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/internal/chunkio"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// codeChunk is the size of code stream messages.
const codeChunk = 256 << 10

// LeaseGranter decides quota leases; the leader's answers RenewLeases.
type LeaseGranter interface {
	Grant(ctx context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error)
}

// Server serves PeerService on a coordinator's node port: forwarded
// writes, catch-up reads, code copies, lease renewals and Hello.
type Server struct {
	nodev1.UnimplementedPeerServiceServer
	name   string
	store  *raftstore.Store
	code   *codestore.Store
	leases LeaseGranter
}

// NewServer returns the PeerService of the coordinator name.
func NewServer(name string, store *raftstore.Store, code *codestore.Store, leases LeaseGranter) *Server {
	return &Server{name: name, store: store, code: code, leases: leases}
}

// Register adds the service to a gRPC server (the node port's).
func (s *Server) Register(gs *grpc.Server) { nodev1.RegisterPeerServiceServer(gs, s) }

func (s *Server) RenewLeases(ctx context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error) {
	if !s.store.IsLeader() {
		return nil, storeStatus(raftstore.ErrNotLeader)
	}
	res, err := s.leases.Grant(ctx, req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return res, nil
}

func (s *Server) Apply(ctx context.Context, req *nodev1.ApplyRequest) (*nodev1.ApplyResponse, error) {
	res, index, err := s.store.ApplyEncoded(ctx, req.GetCommand())
	if err != nil {
		return nil, storeStatus(err)
	}
	out := &nodev1.ApplyResponse{Index: index}
	if m, ok := res.(proto.Message); ok {
		if out.Result, err = proto.Marshal(m); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	return out, nil
}

func (s *Server) PutCode(stream grpc.ClientStreamingServer[nodev1.PutCodeRequest, nodev1.PutCodeResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	digest := first.GetDigest()
	r := chunkio.NewReader(first.GetData(), func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetData(), err
	})
	if _, err := s.code.Size(digest); err == nil {
		io.Copy(io.Discard, r) // already here
		return stream.SendAndClose(&nodev1.PutCodeResponse{Digest: digest})
	}
	info, err := s.code.Put(r)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "store code: %v", err)
	}
	if info.Digest != digest {
		return status.Errorf(codes.DataLoss, "code digest %s does not match announced %s", info.Digest, digest)
	}
	return stream.SendAndClose(&nodev1.PutCodeResponse{Digest: digest})
}

func (s *Server) GetCode(req *nodev1.GetCodeRequest, stream grpc.ServerStreamingServer[nodev1.GetCodeResponse]) error {
	rc, err := s.code.OpenCode(stream.Context(), req.GetDigest())
	if errors.Is(err, codestore.ErrNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	defer rc.Close()
	buf := make([]byte, codeChunk)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if err := stream.Send(&nodev1.GetCodeResponse{Data: buf[:n]}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
	}
}

func (s *Server) RemovePeer(_ context.Context, req *nodev1.RemovePeerRequest) (*nodev1.RemovePeerResponse, error) {
	if err := s.store.RemoveServer(req.GetName()); err != nil {
		return nil, storeStatus(err)
	}
	return &nodev1.RemovePeerResponse{}, nil
}

func (s *Server) Hello(context.Context, *nodev1.HelloRequest) (*nodev1.HelloResponse, error) {
	return &nodev1.HelloResponse{Name: s.name}, nil
}

func (s *Server) AppliedIndex(context.Context, *nodev1.AppliedIndexRequest) (*nodev1.AppliedIndexResponse, error) {
	if !s.store.IsLeader() {
		return nil, storeStatus(raftstore.ErrNotLeader)
	}
	idx, err := s.store.LeaderApplied()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &nodev1.AppliedIndexResponse{Index: idx}, nil
}
