package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Sentinel errors; servers map them to API errors.
var (
	ErrNotFound = errors.New("not found")
	// ErrInvalid is a command the state refuses (bad version, alias exists…).
	ErrInvalid   = errors.New("invalid")
	ErrNotLeader = errors.New("not the raft leader")
)

// Config configures a Store.
type Config struct {
	// NodeID names this node in the Raft configuration.
	NodeID string
	// DataDir holds the log, stable store and snapshots.
	DataDir string
	// BindAddr is the Raft TCP address; empty means an in-process transport
	// (single-node dev mode: the log is still on disk).
	BindAddr string
	// Advertise is the address the other voters dial; empty means
	// BindAddr.
	Advertise string
	// Listener, if set, is where Raft accepts connections instead of
	// listening on BindAddr itself (BindAddr then only says which address
	// to advertise when Advertise is empty): a node that serves other
	// protocols on the same port hands Raft its share.
	Listener net.Listener
	// Dial, if set, opens connections to other voters instead of plain
	// TCP (a node-internal handshake, say); TLS, if on, runs over it.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// ListenTLS and DialTLS, when both set, carry the Raft transport over
	// TLS: the listener's config (which should require client certificates)
	// and the dialer's. Nil: plain TCP.
	ListenTLS, DialTLS *tls.Config
	// Bootstrap makes this node the first voter of a new cluster, if the
	// data dir holds no state yet.
	Bootstrap bool
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft;
	// tests shorten them.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is how many log entries trigger a snapshot.
	SnapshotThreshold uint64
	// Logger receives Raft's logs.
	Logger *slog.Logger
}

// DefaultConfig returns production timings.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		SnapshotThreshold:  8192,
	}
}

// Store is a node's replica of the cluster state.
type Store struct {
	raft  *raft.Raft
	fsm   *fsm
	log   *boltLog
	trans raft.Transport
	// leaders fans raft's leadership notifications out (LeadershipChanges).
	leaders *leadership

	barrierTerm atomic.Uint64 // last term this node, as leader, ran a barrier in
}

type boltLog = raftboltdb.BoltStore

// Open starts Raft on disk and returns once the node is running (not
// necessarily leader; see WaitLeader).
func Open(cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := DefaultConfig()
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = def.HeartbeatTimeout
	}
	if cfg.ElectionTimeout == 0 {
		cfg.ElectionTimeout = def.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout == 0 {
		cfg.LeaderLeaseTimeout = def.LeaderLeaseTimeout
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = def.SnapshotThreshold
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("raft data dir: %w", err)
	}
	hlog := hclog.FromStandardLogger(slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelInfo),
		&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.Logger = hlog
	leaders := newLeadership()
	rc.NotifyCh = leaders.notify

	logStore, err := raftboltdb.NewBoltStore(filepath.Join(cfg.DataDir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	var trans raft.Transport
	var addr raft.ServerAddress
	if cfg.BindAddr == "" {
		addr, trans = raft.NewInmemTransport(raft.ServerAddress(cfg.NodeID))
	} else {
		adv := cfg.Advertise
		if adv == "" {
			adv = cfg.BindAddr
		}
		tcpAddr, err := net.ResolveTCPAddr("tcp", adv)
		if err != nil {
			logStore.Close()
			return nil, fmt.Errorf("raft address: %w", err)
		}
		nt, err := newTransport(cfg, tcpAddr, hlog)
		if err != nil {
			logStore.Close()
			return nil, fmt.Errorf("raft transport: %w", err)
		}
		trans, addr = nt, nt.LocalAddr()
	}
	f := newFSM()
	r, err := raft.NewRaft(rc, f, logStore, logStore, snaps, trans)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(logStore, logStore, snaps)
		if err != nil {
			r.Shutdown()
			logStore.Close()
			return nil, fmt.Errorf("check raft state: %w", err)
		}
		if !has {
			boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: addr}}}
			if err := r.BootstrapCluster(boot).Error(); err != nil {
				r.Shutdown()
				logStore.Close()
				return nil, fmt.Errorf("bootstrap raft: %w", err)
			}
		}
	}
	go leaders.watch()
	return &Store{raft: r, fsm: f, log: logStore, trans: trans, leaders: leaders}, nil
}

// Apply commits a command through Raft and returns the applier's result.
// Only the leader may apply; others get ErrNotLeader.
func (s *Store) Apply(ctx context.Context, c Command) (any, error) {
	res, _, err := s.ApplyIndexed(ctx, c)
	return res, err
}

// ApplyIndexed is Apply that also returns the command's log index.
func (s *Store) ApplyIndexed(ctx context.Context, c Command) (any, uint64, error) {
	data, err := c.encode()
	if err != nil {
		return nil, 0, err
	}
	return s.apply(ctx, data)
}

func (s *Store) apply(ctx context.Context, data []byte) (any, uint64, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	fut := s.raft.Apply(data, timeout)
	if err := fut.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, 0, fmt.Errorf("apply: %w", ErrNotLeader)
		}
		return nil, 0, fmt.Errorf("apply: %w", err)
	}
	if err, ok := fut.Response().(error); ok {
		return nil, fut.Index(), err
	}
	return fut.Response(), fut.Index(), nil
}

// WaitLeader blocks until this node knows a leader.
func (s *Store) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := s.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// IsLeader reports whether this node leads.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Snapshot forces a snapshot now (operators and tests).
func (s *Store) Snapshot() error { return s.raft.Snapshot().Error() }

// Close stops Raft and closes the log.
func (s *Store) Close() error {
	err := s.raft.Shutdown().Error()
	s.leaders.close()
	if c, ok := s.trans.(interface{ Close() error }); ok {
		c.Close()
	}
	return errors.Join(err, s.log.Close())
}
