package raftstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// Snapshot records are framed: type byte, uvarint length, protobuf. Values
// are append-only, like CommandType: snapshots on disk name them.
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

type record struct {
	t    recordType
	body []byte
}

// appendRecord appends m as a record of type t. The state was built from
// messages that decoded, so a marshal failure is a bug: it panics, as an
// undecodable log entry does.
func appendRecord(recs []record, t recordType, m proto.Message) []record {
	body, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("raftstore: marshal snapshot record %d (%T): %v", t, m, err))
	}
	return append(recs, record{t: t, body: body})
}

// appendSorted appends one record of type t per value of m, in key order,
// so equal states take byte-equal snapshots.
func appendSorted[M proto.Message](recs []record, t recordType, m map[string]M) []record {
	for _, k := range sortedKeys(m) {
		recs = appendRecord(recs, t, m[k])
	}
	return recs
}

// restorers is the table of record types; each domain file adds its own,
// beside its appliers.
var restorers = map[recordType]func(s *state, body []byte) error{}

// registerRecord makes records of type t restore by decoding a T (what
// names it in errors) and handing it to put.
func registerRecord[T any, M interface {
	*T
	proto.Message
}](t recordType, what string, put func(s *state, m M) error) {
	if _, dup := restorers[t]; dup {
		panic(fmt.Sprintf("raftstore: record type %d registered twice", t))
	}
	restorers[t] = func(s *state, body []byte) error {
		m, err := decodeRecord[T, M](what, body)
		if err != nil {
			return err
		}
		return put(s, m)
	}
}

// decodeRecord decodes one record body. Unlike a log entry, a snapshot that
// does not decode is an error to return: raft keeps the node's old state.
func decodeRecord[T any, M interface {
	*T
	proto.Message
}](what string, body []byte) (M, error) {
	m := M(new(T))
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("restore %s: %w", what, err)
	}
	return m, nil
}

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
	recs = appendRecord(recs, recApplied, &raftv1.AppliedIndex{Index: f.applied.Load()})
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
			// The applied index belongs to the fsm, not to the state.
			a, err := decodeRecord[raftv1.AppliedIndex]("applied index", body)
			if err != nil {
				return err
			}
			applied = a.GetIndex()
			continue
		}
		restore, ok := restorers[recordType(t)]
		if !ok {
			return fmt.Errorf("restore: unknown record type %d", t)
		}
		if err := restore(fresh, body); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.st = fresh
	f.mu.Unlock()
	f.setApplied(applied)
	return nil
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
