package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gustfaas/gust/internal/grpcopt"

	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/internal/chunkio"
	"github.com/gustfaas/gust/internal/nodeauth"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// codeChunk is the size of code stream messages.
const codeChunk = 256 << 10

// Peers is what the coordinator knows of the other coordinators: their
// node ports, keyed by Raft server id (the node name).
type Peers interface {
	// CoordinatorAddrs maps each alive coordinator's name to its node port.
	CoordinatorAddrs() map[string]string
}

// peerServer serves PeerService: forwarded writes and code copies.
type peerServer struct {
	nodev1.UnimplementedPeerServiceServer
	name   string
	store  *raftstore.Store
	code   *codestore.Store
	quotas *quotas
	log    *slog.Logger
}

func (s *peerServer) RenewLeases(ctx context.Context, req *nodev1.RenewLeasesRequest) (*nodev1.RenewLeasesResponse, error) {
	if !s.store.IsLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the raft leader")
	}
	res, err := s.quotas.grant(ctx, req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return res, nil
}

func (s *peerServer) Apply(ctx context.Context, req *nodev1.ApplyRequest) (*nodev1.ApplyResponse, error) {
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

func (s *peerServer) PutCode(stream grpc.ClientStreamingServer[nodev1.PutCodeRequest, nodev1.PutCodeResponse]) error {
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

func (s *peerServer) GetCode(req *nodev1.GetCodeRequest, stream grpc.ServerStreamingServer[nodev1.GetCodeResponse]) error {
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

func (s *peerServer) RemovePeer(_ context.Context, req *nodev1.RemovePeerRequest) (*nodev1.RemovePeerResponse, error) {
	if err := s.store.RemoveServer(req.GetName()); err != nil {
		return nil, storeStatus(err)
	}
	return &nodev1.RemovePeerResponse{}, nil
}

// storeStatus maps the Raft store's errors to PeerService's wire, once.
func storeStatus(err error) error {
	switch {
	case errors.Is(err, raftstore.ErrNotLeader):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, raftstore.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, raftstore.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func (s *peerServer) Hello(context.Context, *nodev1.HelloRequest) (*nodev1.HelloResponse, error) {
	return &nodev1.HelloResponse{Name: s.name}, nil
}

func (s *peerServer) AppliedIndex(context.Context, *nodev1.AppliedIndexRequest) (*nodev1.AppliedIndexResponse, error) {
	if !s.store.IsLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the raft leader")
	}
	idx, err := s.store.LeaderApplied()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &nodev1.AppliedIndexResponse{Index: idx}, nil
}

// peerClients keeps one connection per coordinator node port.
type peerClients struct {
	creds  credentials.TransportCredentials // nil: plaintext
	secret nodeauth.Secret
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
}

func (p *peerClients) get(addr string) (nodev1.PeerServiceClient, error) {
	c, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return nodev1.NewPeerServiceClient(c), nil
}

func (p *peerClients) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	creds := p.creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(nodeauth.Dialer(p.secret, nodeauth.GRPC)),
		grpcopt.CallSizes())
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peerClients) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// writer commits Raft commands: locally on the leader, else forwarded to it.
type writer struct {
	name     string
	store    *raftstore.Store
	peers    Peers // nil in single-node mode
	clients  *peerClients
	catchUps rounds // of catchUpNow
}

func newWriter(name string, store *raftstore.Store, clients *peerClients) *writer {
	w := &writer{name: name, store: store, clients: clients}
	w.catchUps.fn = w.catchUpNow
	return w
}

// apply commits cmd and decodes the applier's result into out (if not nil).
// On a follower it answers once the local replica has applied the write,
// so the caller reads its own write here.
func (w *writer) apply(ctx context.Context, cmd raftstore.Command, out proto.Message) error {
	return w.commit(ctx, cmd, out, true)
}

// applyNoWait is apply without the read-your-writes wait on a follower: for
// writes whose readers catch up on a miss anyway (async events), it saves
// the time until the leader's next message tells this replica to apply.
func (w *writer) applyNoWait(ctx context.Context, cmd raftstore.Command, out proto.Message) error {
	return w.commit(ctx, cmd, out, false)
}

func (w *writer) commit(ctx context.Context, cmd raftstore.Command, out proto.Message, waitLocal bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, _, err := w.store.ApplyIndexed(ctx, cmd)
		if err == nil {
			if m, ok := res.(proto.Message); ok && out != nil {
				proto.Merge(out, m)
			}
			return nil
		}
		if !errors.Is(err, raftstore.ErrNotLeader) || w.peers == nil {
			return err
		}
		index, err := w.forward(ctx, cmd, out)
		if err == nil && !waitLocal {
			return nil
		}
		if err == nil {
			// Read your writes: a follower that forwarded a write answers
			// only once its own replica has applied it (or, on a machine too
			// loaded for that, after a bounded wait: the write is committed).
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			w.store.WaitApplied(wctx, index)
			cancel()
			return nil
		}
		if !errors.Is(err, raftstore.ErrNotLeader) || time.Now().After(deadline) {
			return err
		}
		// No leader yet (an election is under way): wait a moment and retry.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// forwardTimeout bounds one forwarded write.
const forwardTimeout = 5 * time.Second

// errLeaderUnreachable: the leader did not answer a forwarded write in
// time. The write may or may not have been applied.
var errLeaderUnreachable = errors.New("leader unreachable")

// forward sends cmd to the leader and returns the log index it committed at.
func (w *writer) forward(ctx context.Context, cmd raftstore.Command, out proto.Message) (uint64, error) {
	leader, _ := w.store.Leader()
	addr, ok := w.peers.CoordinatorAddrs()[leader]
	if leader == "" || !ok || leader == w.name {
		return 0, fmt.Errorf("forward: leader unknown: %w", raftstore.ErrNotLeader)
	}
	data, err := raftstore.Encode(cmd)
	if err != nil {
		return 0, err
	}
	c, err := w.clients.get(addr)
	if err != nil {
		return 0, err
	}
	// Bounded: a leader this node cannot reach (a partition drops the
	// packets) must not hold the caller for gRPC's 20 s connect timeout
	// and more; the caller can try another coordinator instead.
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	res, err := c.Apply(fctx, &nodev1.ApplyRequest{Command: data})
	if err != nil && fctx.Err() != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("forward to leader %s: no answer within %s: %w", leader, forwardTimeout, errLeaderUnreachable)
	}
	if st, ok := status.FromError(err); ok && err != nil {
		switch st.Code() {
		case codes.NotFound:
			return 0, fmt.Errorf("forwarded: %s: %w", st.Message(), raftstore.ErrNotFound)
		case codes.InvalidArgument:
			return 0, fmt.Errorf("forwarded: %s: %w", st.Message(), raftstore.ErrInvalid)
		case codes.FailedPrecondition, codes.Unavailable:
			return 0, fmt.Errorf("forwarded to %s: %s: %w", leader, st.Message(), raftstore.ErrNotLeader)
		}
		return 0, fmt.Errorf("forwarded to %s: %w", leader, err)
	}
	if out != nil && len(res.GetResult()) > 0 {
		if err := proto.Unmarshal(res.GetResult(), out); err != nil {
			return 0, fmt.Errorf("forwarded result: %w", err)
		}
	}
	return res.GetIndex(), nil
}

// catchUp waits until this replica has applied everything the leader had
// applied when asked: a read that found nothing then reflects every write
// acknowledged before it, wherever it was sent. Callers at the same moment
// share one question to the leader (rounds).
func (w *writer) catchUp(ctx context.Context) error { return w.catchUps.wait(ctx) }

// catchUpNow asks the leader, taking up to three seconds (for a loaded
// machine).
func (w *writer) catchUpNow(ctx context.Context) error {
	if w.store.IsLeader() {
		// A leader new in its term applies earlier entries only once its
		// first entry commits: LeaderApplied waits for that.
		_, err := w.store.LeaderApplied()
		return err
	}
	if w.peers == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for {
		err := w.catchUpOnce(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		// No leader known yet, or it did not answer: an election may be
		// under way; try again shortly.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (w *writer) catchUpOnce(ctx context.Context) error {
	leader, _ := w.store.Leader()
	addr, ok := w.peers.CoordinatorAddrs()[leader]
	if leader == "" || !ok {
		return fmt.Errorf("catch up: %w", raftstore.ErrNotLeader)
	}
	c, err := w.clients.get(addr)
	if err != nil {
		return err
	}
	res, err := c.AppliedIndex(ctx, &nodev1.AppliedIndexRequest{})
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if err := w.store.WaitApplied(ctx, res.GetIndex()); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	return nil
}

// replicateCode copies a stored zip to other coordinators and returns once
// a majority of the Raft voters (this one included) hold it; the rest
// continue in the background.
func (w *writer) replicateCode(ctx context.Context, code *codestore.Store, digest string) error {
	if w.peers == nil {
		return nil
	}
	voters, err := w.store.Peers()
	if err != nil {
		return err
	}
	addrs := w.peers.CoordinatorAddrs()
	need := len(voters)/2 + 1 - 1 // copies needed beyond our own
	if need <= 0 {
		return nil
	}
	results := make(chan error, len(voters))
	started := 0
	for _, v := range voters {
		if v.ID == w.name {
			continue
		}
		addr, ok := addrs[v.ID]
		if !ok {
			continue
		}
		started++
		go func() { results <- w.pushCode(context.WithoutCancel(ctx), code, digest, addr) }()
	}
	var errs []error
	for got := 0; started > 0; started-- {
		select {
		case err := <-results:
			if err == nil {
				got++
				if got >= need {
					return nil
				}
			} else {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("code %s reached fewer than a majority of coordinators: %w", digest, errors.Join(errs...))
}

func (w *writer) pushCode(ctx context.Context, code *codestore.Store, digest, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := w.clients.get(addr)
	if err != nil {
		return err
	}
	rc, err := code.OpenCode(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	stream, err := c.PutCode(ctx)
	if err != nil {
		return err
	}
	buf := make([]byte, codeChunk)
	first := true
	for {
		n, rerr := rc.Read(buf)
		if n > 0 || first {
			msg := &nodev1.PutCodeRequest{Data: buf[:n]}
			if first {
				msg.Digest, first = digest, false
			}
			if err := stream.Send(msg); err != nil {
				break // the reason comes with CloseAndRecv
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

// fetchCode copies a zip this coordinator lacks from a peer that has it
// (a deploy may upload through one coordinator and commit through another).
func (w *writer) fetchCode(ctx context.Context, code *codestore.Store, digest string) error {
	if w.peers == nil {
		return codestore.ErrNotFound
	}
	var errs []error
	for name, addr := range w.peers.CoordinatorAddrs() {
		if name == w.name {
			continue
		}
		c, err := w.clients.get(addr)
		if err != nil {
			continue
		}
		stream, err := c.GetCode(ctx, &nodev1.GetCodeRequest{Digest: digest})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		info, err := code.Put(chunkio.NewReader(nil, func() ([]byte, error) {
			msg, err := stream.Recv()
			return msg.GetData(), err
		}))
		if err == nil && info.Digest == digest {
			return nil
		}
		errs = append(errs, fmt.Errorf("from %s: %v", name, err))
	}
	return fmt.Errorf("%w: %w", codestore.ErrNotFound, errors.Join(errs...))
}
