package raftstore

import (
	"bytes"
	"io"

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
