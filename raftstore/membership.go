package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Peer is one server of the Raft configuration.
type Peer struct {
	ID      string
	Address string
	Voter   bool
}

// Peers lists the current configuration.
func (s *Store) Peers() ([]Peer, error) {
	fut := s.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", err)
	}
	var out []Peer
	for _, srv := range fut.Configuration().Servers {
		out = append(out, Peer{ID: string(srv.ID), Address: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// Leader returns the leader's id and Raft address, empty when unknown.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// State is this node's Raft state: leader, follower, candidate or shutdown.
func (s *Store) State() string {
	switch s.raft.State() {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Follower:
		return "follower"
	}
	return "shutdown"
}

// AddVoter adds (or re-addresses) a voting server; leader only.
func (s *Store) AddVoter(id, addr string) error {
	err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error()
	if errors.Is(err, raft.ErrNotLeader) {
		return ErrNotLeader
	}
	return err
}

// RemoveServer removes a server from the configuration; leader only.
func (s *Store) RemoveServer(id string) error {
	peers, err := s.Peers()
	if err != nil {
		return err
	}
	found := false
	for _, p := range peers {
		found = found || p.ID == id
	}
	if !found {
		return fmt.Errorf("raft peer %q: %w", id, ErrNotFound)
	}
	err = s.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error()
	if errors.Is(err, raft.ErrNotLeader) {
		return ErrNotLeader
	}
	return err
}

// ApplyEncoded commits an already encoded command (forwarded by a
// follower) and returns the applier's result and the command's log index.
func (s *Store) ApplyEncoded(ctx context.Context, data []byte) (any, uint64, error) {
	if len(data) == 0 {
		return nil, 0, errors.New("apply: empty command")
	}
	if _, ok := appliers[CommandType(data[0])]; !ok {
		return nil, 0, fmt.Errorf("apply: unknown command type %d", data[0])
	}
	if err := checkDecodes(data); err != nil {
		return nil, 0, err
	}
	return s.apply(ctx, data)
}

// Encode frames a command for forwarding.
func Encode(c Command) ([]byte, error) { return c.encode() }

// AppliedIndex is the log index of the last command this replica's state
// machine has applied (not raft's own applied index, which runs ahead).
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// LeaderApplied returns, on the leader, the index of the last command that
// any client may have seen acknowledged: a leader new in its term first
// waits on a barrier, because it applies earlier terms' entries only once an
// entry of its own commits.
func (s *Store) LeaderApplied() (uint64, error) {
	term := s.raft.CurrentTerm()
	if s.barrierTerm.Load() != term {
		if err := s.Barrier(); err != nil {
			return 0, err
		}
		s.barrierTerm.Store(term)
	}
	return s.fsm.applied.Load(), nil
}

// WaitApplied blocks until this replica has applied the command at index.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	return s.fsm.waitApplied(ctx, index)
}

// Barrier waits until every entry in the log before it is applied here;
// leader only. A restarted leader uses it before serving reads.
func (s *Store) Barrier() error {
	err := s.raft.Barrier(10 * time.Second).Error()
	if errors.Is(err, raft.ErrNotLeader) {
		return ErrNotLeader
	}
	return err
}

// checkDecodes refuses a forwarded command that would stop every replica:
// an entry that does not decode panics each state machine that applies it
// (by design: replicas must not drift), so it must never be committed. It
// applies the command to an empty scratch state.
func checkDecodes(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("apply: refused command type %d: %v: %w", data[0], r, ErrInvalid)
		}
	}()
	appliers[CommandType(data[0])](newState(), data[1:])
	return nil
}
