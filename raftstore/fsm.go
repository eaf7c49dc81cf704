package raftstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// state is everything the log builds. Each domain keeps its own fields and
// its own snapshot records.
type state struct {
	functions functionState
	quota     quotaState
	events    eventState
}

func newState() *state {
	return &state{functions: newFunctionState(), quota: newQuotaState(), events: newEventState()}
}

// fsm adapts state to raft.FSM. Readers take mu for reading; the single
// applier goroutine takes it for writing.
type fsm struct {
	mu sync.RWMutex
	st *state
}

func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	a, ok := appliers[CommandType(l.Data[0])]
	if !ok {
		panic(fmt.Sprintf("raftstore: unknown command type %d at index %d", l.Data[0], l.Index))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return a(f.st, l.Data[1:])
}

// Snapshot records are framed: type byte, uvarint length, protobuf.
type recordType byte

const (
	recFunction    recordType = 1
	recAccount     recordType = 2
	recConcurrency recordType = 3
	recLeases      recordType = 4
	recVersion     recordType = 5
	recAlias       recordType = 6
	recCounter     recordType = 7
	recEvent       recordType = 8
	recSchedule    recordType = 9
)

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var recs []record
	recs = f.st.functions.snapshot(recs)
	recs = f.st.quota.snapshot(recs)
	recs = f.st.events.snapshot(recs)
	return &snapshot{records: recs}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	fresh := newState()
	r := bufio.NewReader(rc)
	for {
		t, err := r.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("restore: record length: %w", err)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("restore: record body: %w", err)
		}
		if err := fresh.restore(recordType(t), body); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.st = fresh
	f.mu.Unlock()
	return nil
}

func (s *state) restore(t recordType, body []byte) error {
	switch t {
	case recFunction, recVersion, recAlias, recCounter:
		return s.functions.restoreRecord(t, body)
	case recAccount, recConcurrency, recLeases:
		return s.quota.restore(t, body)
	case recEvent, recSchedule:
		return s.events.restore(t, body)
	default:
		return fmt.Errorf("restore: unknown record type %d", t)
	}
}

type record struct {
	t    recordType
	body []byte
}

type snapshot struct{ records []record }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	var lenBuf [binary.MaxVarintLen64]byte
	for _, rec := range s.records {
		w.WriteByte(byte(rec.t))
		n := binary.PutUvarint(lenBuf[:], uint64(len(rec.body)))
		w.Write(lenBuf[:n])
		w.Write(rec.body)
	}
	if err := w.Flush(); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
