package raftstore

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// recv waits for one value on ch; ok is false if ch was closed.
func recv(t *testing.T, ch <-chan bool) (v, ok bool) {
	t.Helper()
	select {
	case v, ok = <-ch:
		return v, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no leadership change within 10s")
		return false, false
	}
}

// A real single-node store: every subscriber sees it become leader, an
// ended subscription is closed, and Close tells a leader's subscribers
// that leadership is over.
func TestLeadershipChangesSingleNode(t *testing.T) {
	// Not bootstrapped: the node cannot elect itself until the test says,
	// so the subscriptions are certainly in place first.
	s, err := Open(Config{NodeID: "n1", DataDir: t.TempDir(),
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	a, _ := s.LeadershipChanges()
	b, stopB := s.LeadershipChanges()
	if s.IsLeader() {
		t.Fatal("leader before bootstrap")
	}
	boot := raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: s.trans.LocalAddr()}}}
	if err := s.raft.BootstrapCluster(boot).Error(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan bool{"a": a, "b": b} {
		if v, ok := recv(t, ch); !v || !ok {
			t.Fatalf("subscriber %s got %v (open %v), want true", name, v, ok)
		}
	}
	if !s.IsLeader() {
		t.Fatal("told leader, but IsLeader is false")
	}

	stopB()
	stopB() // a second call is harmless
	if _, ok := recv(t, b); ok {
		t.Fatal("an ended subscription's channel is still open")
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if v, ok := recv(t, a); v || !ok {
		t.Fatalf("after Close got %v (open %v), want false", v, ok)
	}
	if _, ok := recv(t, a); ok {
		t.Fatal("channel still open after Close")
	}
	late, _ := s.LeadershipChanges()
	if _, ok := recv(t, late); ok {
		t.Fatal("a subscription after Close is open")
	}
}

// A subscriber that does not read keeps only the latest change, as raft's
// LeaderCh does, and the sender never blocks on it.
func TestLeadershipKeepsLatest(t *testing.T) {
	l := newLeadership()
	go l.watch()
	ch, _ := l.subscribe()
	l.set(true)
	l.set(false)
	l.set(true)
	if len(ch) != 1 {
		t.Fatalf("%d values pending, want 1", len(ch))
	}
	if v := <-ch; !v {
		t.Fatal("pending value is false, want the latest (true)")
	}
	l.close()
	if v, ok := <-ch; v || !ok {
		t.Fatalf("after close got %v (open %v), want false from a leader", v, ok)
	}
}
