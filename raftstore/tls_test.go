package raftstore

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/tlsconf"
)

func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Two replicas over the TLS transport: a write on the leader reaches the
// follower, so appends, heartbeats and votes cross the TLS stream layer.
func TestTLSTransportReplicates(t *testing.T) {
	dir := t.TempDir()
	if err := tlsconf.InitCA(dir, ""); err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsconf.Issue(dir, dir, tlsconf.IssueRequest{Name: "n", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := tlsconf.LoadNode(tlsconf.Files{CA: filepath.Join(dir, tlsconf.CAFile), Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	open := func(id string, boot bool) *Store {
		s, err := Open(Config{NodeID: id, DataDir: t.TempDir(), BindAddr: freeTCP(t), Bootstrap: boot,
			ListenTLS: creds.NodeServerConfig(), DialTLS: creds.ClientConfig(),
			HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s1 := open("n1", true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s1.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := open("n2", false)
	if err := s1.AddVoter("n2", string(s2.trans.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	putFn(t, s1, "a", "d1")
	if err := s2.WaitApplied(ctx, s1.AppliedIndex()); err != nil {
		t.Fatalf("follower never applied the write over TLS: %v", err)
	}
	if id, _ := s2.Leader(); id != "n1" {
		t.Fatalf("follower sees leader %q", id)
	}
}
