package raftstore

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink in memory, for round-trip tests.
type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }
func (m *memSink) reader() io.ReadCloser {
	return io.NopCloser(bytes.NewReader(m.Bytes()))
}

var _ raft.SnapshotSink = (*memSink)(nil)

// roundTrip snapshots s and restores the snapshot into a fresh store.
func roundTrip(t *testing.T, s *Store) *Store {
	t.Helper()
	snap, err := s.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	fresh := newFSM()
	if err := fresh.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	return &Store{fsm: fresh}
}
