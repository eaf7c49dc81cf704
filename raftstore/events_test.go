package raftstore

import (
	"context"
	"testing"
	"time"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

func event(id string, enqueued int64, key string) *gustv1.Invocation {
	return &gustv1.Invocation{Id: id, Function: "f", Payload: []byte(`{}`), IdempotencyKey: key,
		EnqueuedUnixNano: enqueued, NextAttemptUnixNano: enqueued}
}

func readyIDs(s *Store, now int64, limit int, skip func(string) bool) []string {
	var ids []string
	for _, inv := range s.ReadyEvents(now, limit, skip) {
		ids = append(ids, inv.GetId())
	}
	return ids
}

func TestEventBatchesStartFinishAndRoundTrip(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()

	// One entry stores a batch; a repeated idempotency key in the same
	// batch gets the first event back.
	res, idx, err := s.ApplyIndexed(ctx, Command{Type: CmdEnqueueEvents, Msg: &raftv1.EnqueueEvents{Invocations: []*gustv1.Invocation{
		event("e1", 1, ""), event("e2", 2, "k"), event("e3", 3, "k"), event("e4", 4, ""),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got := res.(*raftv1.Invocations).GetInvocations()
	if len(got) != 4 || got[2].GetId() != "e2" || got[0].GetStatus() != EventQueued {
		t.Fatalf("batch results %v", got)
	}
	if s.AppliedIndex() < idx {
		t.Fatalf("applied index %d below the batch's %d", s.AppliedIndex(), idx)
	}
	if n := s.PendingCount(); n != 3 {
		t.Fatalf("%d pending, want 3 (e3 was the same event as e2)", n)
	}

	// Ready: oldest first, bounded, skipping claimed ids; a future retry is not ready.
	if ids := readyIDs(s, 10, 2, nil); len(ids) != 2 || ids[0] != "e1" || ids[1] != "e2" {
		t.Fatalf("ready %v", ids)
	}
	if ids := readyIDs(s, 10, 10, func(id string) bool { return id == "e1" }); len(ids) != 2 || ids[0] != "e2" {
		t.Fatalf("ready with e1 claimed %v", ids)
	}

	// StartAttempts starts what can start and skips the rest.
	res, err = s.Apply(ctx, Command{Type: CmdStartAttempts, Msg: &raftv1.StartAttempts{Ids: []string{"e1", "e2", "nope"}, Coordinator: "c1", AtUnixNano: 5}})
	if err != nil {
		t.Fatal(err)
	}
	started := res.(*raftv1.Invocations).GetInvocations()
	if len(started) != 2 || started[0].GetStatus() != EventRunning || started[0].GetAttempts() != 1 || started[1].GetRunningOn() != "c1" {
		t.Fatalf("started %v", started)
	}

	// FinishAttempts: e1 succeeds, e2 is queued again for later.
	if _, err := s.Apply(ctx, Command{Type: CmdFinishAttempts, Msg: &raftv1.FinishAttempts{Attempts: []*raftv1.FinishAttempt{
		{Id: "e1", Status: EventSucceeded, Result: []byte(`"ok"`), AtUnixNano: 6},
		{Id: "e2", Status: EventQueued, Error: "function error: Handled", AtUnixNano: 6, NextAttemptUnixNano: 100},
		{Id: "gone", Status: EventSucceeded, AtUnixNano: 6},
	}}}); err != nil {
		t.Fatal(err)
	}
	if ids := readyIDs(s, 50, 10, nil); len(ids) != 1 || ids[0] != "e4" {
		t.Fatalf("ready at 50: %v (e2 retries at 100)", ids)
	}
	if ids := readyIDs(s, 100, 10, nil); len(ids) != 2 || ids[0] != "e2" {
		t.Fatalf("ready at 100: %v", ids)
	}
	if _, err := s.Apply(ctx, Command{Type: CmdStartAttempts, Msg: &raftv1.StartAttempts{Ids: []string{"e1"}, Coordinator: "c1"}}); err != nil {
		t.Fatal(err)
	} else if e1, _ := s.Event("e1"); e1.GetStatus() != EventSucceeded || e1.GetAttempts() != 1 {
		t.Fatalf("a finished event was started again: %v", e1)
	}

	// Snapshot round trip: events, the pending index, idempotency keys and
	// the applied index all survive.
	want, _ := s.Event("e2")
	restored := roundTrip(t, s)
	if got, err := restored.Event("e2"); err != nil || !proto.Equal(got, want) {
		t.Fatalf("restored e2 %v %v, want %v", got, err, want)
	}
	if restored.PendingCount() != 2 || restored.AppliedIndex() != s.AppliedIndex() {
		t.Fatalf("restored pending %d applied %d, want 2 and %d", restored.PendingCount(), restored.AppliedIndex(), s.AppliedIndex())
	}
	dup := restored.fsm.st.events.enqueue(event("e5", 7, "k"))
	if dup.GetId() != "e2" {
		t.Fatalf("idempotency key lost in the snapshot: got %s", dup.GetId())
	}

	// Prune drops finished events and never a pending one.
	if _, err := s.Apply(ctx, Command{Type: CmdPruneEvents, Msg: &raftv1.PruneEvents{FinishedBeforeUnixNano: 1000}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Event("e1"); err == nil {
		t.Fatal("finished e1 survived the prune")
	}
	if s.PendingCount() != 2 {
		t.Fatalf("pending after prune %d", s.PendingCount())
	}
}

func TestWaitApplied(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next := s.AppliedIndex() + 1
	done := make(chan error, 1)
	go func() { done <- s.WaitApplied(ctx, next) }()
	select {
	case err := <-done:
		t.Fatalf("returned before the index was applied: %v", err)
	default:
	}
	putFn(t, s, "a", "d1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := s.WaitApplied(short, s.AppliedIndex()+100); err == nil {
		t.Fatal("waiting for an index never written returned nil")
	}
}
