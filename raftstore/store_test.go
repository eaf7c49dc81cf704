package raftstore

import (
	"context"
	"errors"
	"testing"
	"time"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Config{NodeID: "n1", DataDir: dir, Bootstrap: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func putFn(t *testing.T, s *Store, name, digest string) *gustv1.Function {
	t.Helper()
	res, err := s.Apply(context.Background(), Command{Type: CmdPutFunction, Msg: &raftv1.PutFunction{
		Function: &gustv1.Function{Config: &gustv1.FunctionConfig{Name: name, MemoryMb: 128}, CodeDigest: digest, Version: "$LATEST"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return res.(*gustv1.Function)
}

func TestFunctionsApplyAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if fn := putFn(t, s, "a", "d1"); fn.Revision != 1 {
		t.Fatalf("revision %d", fn.Revision)
	}
	if fn := putFn(t, s, "a", "d2"); fn.Revision != 2 {
		t.Fatalf("revision %d", fn.Revision)
	}
	putFn(t, s, "b", "d3")
	if _, err := s.Apply(context.Background(), Command{Type: CmdDeleteFunction, Msg: &raftv1.DeleteFunction{Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), Command{Type: CmdDeleteFunction, Msg: &raftv1.DeleteFunction{Name: "zz"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The log on disk replays into the same state (applied once the node
	// leads again: Barrier waits for that).
	s = openTest(t, dir)
	defer s.Close()
	if err := s.Barrier(); err != nil {
		t.Fatal(err)
	}
	fns := s.Functions()
	if len(fns) != 1 || fns[0].CodeDigest != "d2" || fns[0].Revision != 2 {
		t.Fatalf("after reopen: %v", fns)
	}
	if _, err := s.Function("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b: %v", err)
	}
}

// Every command's effect survives a snapshot and restore into a fresh store.
func TestSnapshotRestoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	putFn(t, s, "a", "d1")
	putFn(t, s, "b", "d2")
	putFn(t, s, "c", "d3")
	if _, err := s.Apply(context.Background(), Command{Type: CmdDeleteFunction, Msg: &raftv1.DeleteFunction{Name: "c"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Command{
		{Type: CmdSetAccountLimit, Msg: &raftv1.SetAccountLimit{Limit: 40}},
		{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "a", Reserved: 5, Provisioned: 2}},
		{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "b", Reserved: 3}},
		{Type: CmdSetFunctionConcurrency, Msg: &raftv1.SetFunctionConcurrency{Function: "b"}}, // cleared
		{Type: CmdGrantLeases, Msg: &raftv1.GrantLeases{Coordinator: "c1", Leases: []*raftv1.Lease{{Pool: "", Slots: 7, ExpiresUnixNano: 99}, {Pool: "fn/a", Slots: 2}}}},
		{Type: CmdGrantLeases, Msg: &raftv1.GrantLeases{Coordinator: "c2", Leases: []*raftv1.Lease{{Pool: "", Slots: 3, InFlight: 1}}}},
	} {
		if _, err := s.Apply(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	wantQuota := s.Quota()
	if wantQuota.AccountLimit != 40 || wantQuota.Reserved["a"] != 5 || len(wantQuota.Reserved) != 1 || wantQuota.PoolLimit("") != 35 || wantQuota.Leases[""]["c1"].GetSlots() != 7 {
		t.Fatalf("quota state %+v", wantQuota)
	}
	want := s.Functions()
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	restored := roundTrip(t, s)
	s.Close()
	gotQuota := restored.Quota()
	if gotQuota.AccountLimit != wantQuota.AccountLimit || gotQuota.Reserved["a"] != 5 || gotQuota.Provisioned["a"] != 2 ||
		len(gotQuota.Leases[""]) != 2 || !proto.Equal(gotQuota.Leases["fn/a"]["c1"], wantQuota.Leases["fn/a"]["c1"]) {
		t.Fatalf("restored quota %+v, want %+v", gotQuota, wantQuota)
	}
	got := restored.Functions()
	if len(got) != len(want) {
		t.Fatalf("restored %d functions, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("function %d: got %v want %v", i, got[i], want[i])
		}
	}
}

func TestUndecodableCommandPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a corrupt command must stop the replica")
		}
	}()
	applyPutFunction(newState(), []byte{0xff, 0xff, 0xff})
}
