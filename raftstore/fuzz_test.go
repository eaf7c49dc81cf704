package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// seedCommands is one valid command of several types, for the fuzzers' seeds.
func seedCommands(t testing.TB) [][]byte {
	var out [][]byte
	for _, c := range []Command{
		{Type: CmdPutFunction, Msg: &raftv1.PutFunction{Function: &gustv1.Function{Config: &gustv1.FunctionConfig{Name: "f", MemoryMb: 128}, CodeDigest: "d"}}},
		{Type: CmdDeleteFunction, Msg: &raftv1.DeleteFunction{Name: "f"}},
		{Type: CmdSetAccountLimit, Msg: &raftv1.SetAccountLimit{Limit: 10}},
		{Type: CmdGrantLeases, Msg: &raftv1.GrantLeases{Coordinator: "c1", Leases: []*raftv1.Lease{{Slots: 2}}}},
		{Type: CmdPublishVersion, Msg: &raftv1.PublishVersion{Name: "f"}},
		{Type: CmdPutAlias, Msg: &raftv1.PutAlias{Alias: &gustv1.Alias{Function: "f", Name: "a", Version: "1"}}},
		{Type: CmdEnqueueEvents, Msg: &raftv1.EnqueueEvents{Invocations: []*gustv1.Invocation{{Id: "e1", Function: "f"}}}},
		{Type: CmdStartAttempts, Msg: &raftv1.StartAttempts{Ids: []string{"e1"}}},
		{Type: CmdFinishAttempts, Msg: &raftv1.FinishAttempts{Attempts: []*raftv1.FinishAttempt{{Id: "e1", Status: EventQueued}}}},
		{Type: CmdPutSchedule, Msg: &raftv1.PutSchedule{Schedule: &raftv1.Schedule{Name: "s", Function: "f", Cron: "@every 1s"}}},
		{Type: CmdFireSchedule, Msg: &raftv1.FireSchedule{Name: "s", TickUnixNano: 1, Invocation: &gustv1.Invocation{Id: "e2"}}},
		{Type: CmdPruneEvents, Msg: &raftv1.PruneEvents{FinishedBeforeUnixNano: 5}},
		{Type: CmdPutToken, Msg: &raftv1.PutToken{Token: &raftv1.Token{Hash: make([]byte, 32), Tenant: "t"}}},
		{Type: CmdDeleteToken, Msg: &raftv1.DeleteToken{Hash: make([]byte, 32)}},
		{Type: CmdRotateRoot, Msg: &raftv1.RotateRoot{OldHash: make([]byte, 32), Token: &raftv1.Token{Hash: make([]byte, 32), Root: true}}},
		{Type: CmdClaimCode, Msg: &raftv1.ClaimCode{Tenant: "t", Digest: "d"}},
		{Type: CmdSetTenantCaps, Msg: &raftv1.SetTenantCaps{Caps: &raftv1.TenantCaps{Tenant: "t", MaxReserved: proto.Int64(5)}}},
	} {
		b, err := c.encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzApplyCommands feeds a sequence of log entries to a fresh state
// machine. An entry either applies (a domain refusal is a value) or stops
// the replica with the decode panic; nothing else may panic, and a
// snapshot taken afterwards must restore to an equal snapshot.
func FuzzApplyCommands(f *testing.F) {
	seeds := seedCommands(f)
	f.Add(bytes.Join(seeds, []byte{0xfe, 0xfd}))
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFSM()
		for i, entry := range bytes.Split(data, []byte{0xfe, 0xfd}) {
			if !applyOrDecodePanic(t, m, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: entry}) {
				return // the replica stopped, as it must on an undecodable entry
			}
		}
		snap, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		first := &memSink{}
		if err := snap.Persist(first); err != nil {
			t.Fatal(err)
		}
		restored := newFSM()
		if err := restored.Restore(first.reader()); err != nil {
			t.Fatalf("a snapshot of applied commands does not restore: %v", err)
		}
		again, _ := restored.Snapshot()
		second := &memSink{}
		again.Persist(second)
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatal("snapshot → restore → snapshot changed the state")
		}
	})
}

func applyOrDecodePanic(t *testing.T, m *fsm, l *raft.Log) (applied bool) {
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprint(r)
			if !strings.HasPrefix(msg, "raftstore: undecodable") && !strings.HasPrefix(msg, "raftstore: unknown command type") {
				t.Fatalf("entry %x: unexpected panic: %v", l.Data, r)
			}
			applied = false
		}
	}()
	m.Apply(l)
	return true
}

// FuzzRestore feeds arbitrary bytes as a snapshot: Restore returns an
// error or succeeds, and never panics.
func FuzzRestore(f *testing.F) {
	m := newFSM()
	for i, c := range seedCommands(f) {
		m.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: c})
	}
	snap, _ := m.Snapshot()
	sink := &memSink{}
	snap.Persist(sink)
	f.Add(sink.Bytes())
	f.Add([]byte{byte(recEvent), 0x05, 0x0a, 0x03, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = newFSM().Restore(&nopCloser{bytes.NewReader(data)})
	})
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestForwardedGarbageIsRefused: the leader refuses a forwarded command
// that does not decode instead of committing an entry that would stop
// every replica.
func TestForwardedGarbageIsRefused(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	for _, data := range [][]byte{{byte(CmdPutFunction), 0xff, 0xff, 0xff}, {byte(CmdEnqueueEvents), 0x0a}} {
		if _, _, err := s.ApplyEncoded(context.Background(), data); !errors.Is(err, ErrInvalid) {
			t.Errorf("command %x: %v, want ErrInvalid", data, err)
		}
	}
	if _, _, err := s.ApplyEncoded(context.Background(), seedCommands(t)[0]); err != nil {
		t.Fatalf("a valid forwarded command was refused: %v", err)
	}
}
