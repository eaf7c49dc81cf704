// Package replica is a coordinator's side of the replicated state: it
// commits writes on the Raft leader (forwarding them from a follower),
// answers only once this replica has applied them (read your writes),
// catches reads that miss up with the leader, copies code zips to a
// majority of coordinators, and serves PeerService, which all of that
// travels over between coordinators.
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/internal/chunkio"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/protobuf/proto"
)

// Peers is what the coordinator knows of the other coordinators: their
// node ports, keyed by Raft server id (the node name).
type Peers interface {
	// CoordinatorAddrs maps each alive coordinator's name to its node port.
	CoordinatorAddrs() map[string]string
}

// Writer commits Raft commands from a coordinator: locally on the
// leader, else forwarded to it, and answers once this replica has applied
// them (read your writes). Reads that miss catch up with the leader.
type Writer struct {
	name     string
	store    *raftstore.Store
	peers    Peers // nil in single-node mode
	clients  *Clients
	catchUps rounds // of catchUpNow
}

// NewWriter returns the writer of the coordinator name. peers is nil for
// a coordinator alone (gustd dev). No catch-up outlives base.
func NewWriter(base context.Context, name string, store *raftstore.Store, peers Peers, clients *Clients) *Writer {
	w := &Writer{name: name, store: store, peers: peers, clients: clients}
	w.catchUps.fn, w.catchUps.base = w.catchUpNow, base
	return w
}

// Apply commits cmd and decodes the applier's result into out (if not nil).
// On a follower it answers once the local replica has applied the write,
// so the caller reads its own write here.
func (w *Writer) Apply(ctx context.Context, cmd raftstore.Command, out proto.Message) error {
	return w.commit(ctx, cmd, out, true)
}

// ApplyNoWait is Apply without the read-your-writes wait on a follower: for
// writes whose readers catch up on a miss anyway (async events), it saves
// the time until the leader's next message tells this replica to apply.
func (w *Writer) ApplyNoWait(ctx context.Context, cmd raftstore.Command, out proto.Message) error {
	return w.commit(ctx, cmd, out, false)
}

func (w *Writer) commit(ctx context.Context, cmd raftstore.Command, out proto.Message, waitLocal bool) error {
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

// LeaderClient returns a PeerService client for the leader's node port.
func (w *Writer) LeaderClient() (nodev1.PeerServiceClient, error) {
	leader, _ := w.store.Leader()
	if w.peers == nil || leader == "" {
		return nil, raftstore.ErrNotLeader
	}
	addr, ok := w.peers.CoordinatorAddrs()[leader]
	if !ok {
		return nil, raftstore.ErrNotLeader
	}
	return w.clients.Get(addr)
}

// forward sends cmd to the leader and returns the log index it committed at.
func (w *Writer) forward(ctx context.Context, cmd raftstore.Command, out proto.Message) (uint64, error) {
	leader, _ := w.store.Leader()
	addr, ok := w.peers.CoordinatorAddrs()[leader]
	if leader == "" || !ok || leader == w.name {
		return 0, fmt.Errorf("forward: leader unknown: %w", raftstore.ErrNotLeader)
	}
	data, err := raftstore.Encode(cmd)
	if err != nil {
		return 0, err
	}
	c, err := w.clients.Get(addr)
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
		return 0, fmt.Errorf("forward to leader %s: no answer within %s: %w", leader, forwardTimeout, ErrLeaderUnreachable)
	}
	if err != nil {
		return 0, fmt.Errorf("forwarded to %s: %w", leader, fromStatus(err))
	}
	if out != nil && len(res.GetResult()) > 0 {
		if err := proto.Unmarshal(res.GetResult(), out); err != nil {
			return 0, fmt.Errorf("forwarded result: %w", err)
		}
	}
	return res.GetIndex(), nil
}

// CatchUp waits until this replica has applied everything the leader had
// applied when asked: a read that found nothing then reflects every write
// acknowledged before it, wherever it was sent. Callers at the same moment
// share one question to the leader (rounds).
func (w *Writer) CatchUp(ctx context.Context) error { return w.catchUps.wait(ctx) }

// catchUpNow asks the leader, taking up to three seconds (for a loaded
// machine).
func (w *Writer) catchUpNow(ctx context.Context) error {
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

func (w *Writer) catchUpOnce(ctx context.Context) error {
	leader, _ := w.store.Leader()
	addr, ok := w.peers.CoordinatorAddrs()[leader]
	if leader == "" || !ok {
		return fmt.Errorf("catch up: %w", raftstore.ErrNotLeader)
	}
	c, err := w.clients.Get(addr)
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

// ReplicateCode copies a stored zip to other coordinators and returns once
// a majority of the Raft voters (this one included) hold it; the rest
// continue in the background.
func (w *Writer) ReplicateCode(ctx context.Context, code *codestore.Store, digest string) error {
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

func (w *Writer) pushCode(ctx context.Context, code *codestore.Store, digest, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := w.clients.Get(addr)
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

// FetchCode copies a zip this coordinator lacks from a peer that has it
// (a deploy may upload through one coordinator and commit through another).
func (w *Writer) FetchCode(ctx context.Context, code *codestore.Store, digest string) error {
	if w.peers == nil {
		return codestore.ErrNotFound
	}
	var errs []error
	for name, addr := range w.peers.CoordinatorAddrs() {
		if name == w.name {
			continue
		}
		c, err := w.clients.Get(addr)
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
