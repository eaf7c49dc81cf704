package raftstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// state is everything the log builds. Each domain keeps its own fields and
// its own snapshot records.
type state struct {
	// index is the Raft index of the command being applied.
	index     uint64
	functions functionState
	quota     quotaState
	events    eventState
	tokens    tokenState
	code      codeState
}

func newState() *state {
	return &state{functions: newFunctionState(), quota: newQuotaState(), events: newEventState(), tokens: newTokenState(),
		code: newCodeState()}
}

// fsm adapts state to raft.FSM. Readers take mu for reading; the single
// applier goroutine takes it for writing.
//
// applied is the index of the last command applied here. raft's own
// AppliedIndex runs ahead of the state machine (it counts entries handed to
// the FSM goroutine, not applied by it), so "has this replica seen write N"
// must be asked of the FSM itself.
type fsm struct {
	mu sync.RWMutex
	st *state

	applied atomic.Uint64
	waitMu  sync.Mutex
	changed chan struct{} // closed and replaced after every apply
}

func newFSM() *fsm { return &fsm{st: newState(), changed: make(chan struct{})} }

func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	a, ok := appliers[CommandType(l.Data[0])]
	if !ok {
		panic(fmt.Sprintf("raftstore: unknown command type %d at index %d", l.Data[0], l.Index))
	}
	f.mu.Lock()
	f.st.index = l.Index
	res := a(f.st, l.Data[1:])
	f.mu.Unlock()
	f.setApplied(l.Index)
	return res
}

func (f *fsm) setApplied(index uint64) {
	f.applied.Store(index)
	f.waitMu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.waitMu.Unlock()
}

// waitApplied blocks until the command at index (or a later one) is applied.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.changed
		f.waitMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", index, f.applied.Load(), ctx.Err())
		case <-ch:
		}
	}
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
	recApplied     recordType = 10
	recToken       recordType = 11
	recCodeClaim   recordType = 12
	recTenantCaps  recordType = 13
)

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var recs []record
	recs = f.st.functions.snapshot(recs)
	recs = f.st.quota.snapshot(recs)
	recs = f.st.events.snapshot(recs)
	recs = f.st.tokens.snapshot(recs)
	recs = f.st.code.snapshot(recs)
	// Snapshot runs on the FSM goroutine, so applied is the snapshot's own
	// last command.
	idx, err := proto.Marshal(&raftv1.AppliedIndex{Index: f.applied.Load()})
	if err != nil {
		return nil, fmt.Errorf("snapshot applied index: %w", err)
	}
	recs = append(recs, record{t: recApplied, body: idx})
	return &snapshot{records: recs}, nil
}

// maxRecord bounds one snapshot record; the largest is one function or one
// event (payload at most 256 KB), far below it.
const maxRecord = 64 << 20

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	fresh := newState()
	var applied uint64
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
		if n > maxRecord {
			// A corrupt snapshot must not make the node allocate without bound.
			return fmt.Errorf("restore: record of %d bytes is over the %d byte bound", n, maxRecord)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("restore: record body: %w", err)
		}
		if recordType(t) == recApplied {
			var a raftv1.AppliedIndex
			if err := proto.Unmarshal(body, &a); err != nil {
				return fmt.Errorf("restore applied index: %w", err)
			}
			applied = a.GetIndex()
			continue
		}
		if err := fresh.restore(recordType(t), body); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.st = fresh
	f.mu.Unlock()
	f.setApplied(applied)
	return nil
}

func (s *state) restore(t recordType, body []byte) error {
	switch t {
	case recFunction, recVersion, recAlias, recCounter:
		return s.functions.restoreRecord(t, body)
	case recAccount, recConcurrency, recLeases, recTenantCaps:
		return s.quota.restore(t, body)
	case recEvent, recSchedule:
		return s.events.restore(t, body)
	case recToken:
		return s.tokens.restore(body)
	case recCodeClaim:
		return s.code.restore(body)
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
