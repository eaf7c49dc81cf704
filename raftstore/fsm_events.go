package raftstore

import (
	"fmt"
	"sort"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(CmdEnqueueEvent, applyEnqueueEvent)
	register(CmdStartAttempt, applyStartAttempt)
	register(CmdFinishAttempt, applyFinishAttempt)
	register(CmdPruneEvents, applyPruneEvents)
	register(CmdPutSchedule, applyPutSchedule)
	register(CmdDeleteSchedule, applyDeleteSchedule)
	register(CmdFireSchedule, applyFireSchedule)
}

// Event statuses.
const (
	EventQueued    = "queued"
	EventRunning   = "running"
	EventSucceeded = "succeeded"
	EventFailed    = "failed"
)

// eventState is the durable async queue and the schedules.
type eventState struct {
	events    map[string]*gustv1.Invocation
	byKey     map[string]string // idempotency key → id
	schedules map[string]*raftv1.Schedule
}

func newEventState() eventState {
	return eventState{events: map[string]*gustv1.Invocation{}, byKey: map[string]string{}, schedules: map[string]*raftv1.Schedule{}}
}

func (e *eventState) enqueue(inv *gustv1.Invocation) *gustv1.Invocation {
	if k := inv.GetIdempotencyKey(); k != "" {
		if id, ok := e.byKey[k]; ok {
			if prev, ok := e.events[id]; ok {
				return prev
			}
		}
		e.byKey[k] = inv.GetId()
	}
	inv.Status = EventQueued
	e.events[inv.GetId()] = inv
	return inv
}

func applyEnqueueEvent(s *state, body []byte) any {
	var c raftv1.EnqueueEvent
	mustUnmarshal(body, &c)
	return proto.Clone(s.events.enqueue(c.GetInvocation()))
}

func applyStartAttempt(s *state, body []byte) any {
	var c raftv1.StartAttempt
	mustUnmarshal(body, &c)
	inv, ok := s.events.events[c.GetId()]
	if !ok {
		return fmt.Errorf("event %s: %w", c.GetId(), ErrNotFound)
	}
	if inv.GetStatus() != EventQueued && inv.GetStatus() != EventRunning {
		return fmt.Errorf("event %s is %s: %w", c.GetId(), inv.GetStatus(), ErrInvalid)
	}
	inv.Status = EventRunning
	inv.Attempts++
	inv.RunningOn = c.GetCoordinator()
	inv.RunningSinceUnixNano = c.GetAtUnixNano()
	return proto.Clone(inv)
}

func applyFinishAttempt(s *state, body []byte) any {
	var c raftv1.FinishAttempt
	mustUnmarshal(body, &c)
	inv, ok := s.events.events[c.GetId()]
	if !ok {
		return fmt.Errorf("event %s: %w", c.GetId(), ErrNotFound)
	}
	inv.Status = c.GetStatus()
	inv.Result = c.GetResult()
	inv.Error = c.GetError()
	inv.ExecutedVersion = c.GetExecutedVersion()
	inv.RunningOn, inv.RunningSinceUnixNano = "", 0
	if c.GetStatus() == EventQueued {
		inv.NextAttemptUnixNano = c.GetNextAttemptUnixNano()
	} else {
		inv.FinishedUnixNano = c.GetAtUnixNano()
	}
	if then := c.GetThen(); then != nil {
		s.events.enqueue(then)
	}
	return proto.Clone(inv)
}

func applyPruneEvents(s *state, body []byte) any {
	var c raftv1.PruneEvents
	mustUnmarshal(body, &c)
	for id, inv := range s.events.events {
		if inv.GetFinishedUnixNano() > 0 && inv.GetFinishedUnixNano() < c.GetFinishedBeforeUnixNano() {
			delete(s.events.events, id)
			if k := inv.GetIdempotencyKey(); k != "" && s.events.byKey[k] == id {
				delete(s.events.byKey, k)
			}
		}
	}
	return nil
}

func applyPutSchedule(s *state, body []byte) any {
	var c raftv1.PutSchedule
	mustUnmarshal(body, &c)
	sc := c.GetSchedule()
	if prev, ok := s.events.schedules[sc.GetName()]; ok {
		sc.Fired, sc.LastTickUnixNano = prev.GetFired(), prev.GetLastTickUnixNano()
	}
	s.events.schedules[sc.GetName()] = sc
	return proto.Clone(sc)
}

func applyDeleteSchedule(s *state, body []byte) any {
	var c raftv1.DeleteSchedule
	mustUnmarshal(body, &c)
	if _, ok := s.events.schedules[c.GetName()]; !ok {
		return fmt.Errorf("schedule %q: %w", c.GetName(), ErrNotFound)
	}
	delete(s.events.schedules, c.GetName())
	return nil
}

// applyFireSchedule records a tick and enqueues its event atomically; a
// tick at or before the last one recorded is ignored, so a new leader that
// fires the same tick again changes nothing.
func applyFireSchedule(s *state, body []byte) any {
	var c raftv1.FireSchedule
	mustUnmarshal(body, &c)
	sc, ok := s.events.schedules[c.GetName()]
	if !ok {
		return fmt.Errorf("schedule %q: %w", c.GetName(), ErrNotFound)
	}
	if c.GetTickUnixNano() <= sc.GetLastTickUnixNano() {
		return nil
	}
	sc.LastTickUnixNano = c.GetTickUnixNano()
	sc.Fired++
	s.events.enqueue(c.GetInvocation())
	return nil
}

func (e *eventState) snapshot(recs []record) []record {
	add := func(t recordType, m proto.Message) {
		body, err := proto.Marshal(m)
		if err != nil {
			panic(fmt.Sprintf("raftstore: marshal: %v", err))
		}
		recs = append(recs, record{t: t, body: body})
	}
	for _, id := range sortedKeys(e.events) {
		add(recEvent, e.events[id])
	}
	for _, n := range sortedKeys(e.schedules) {
		add(recSchedule, e.schedules[n])
	}
	return recs
}

func (e *eventState) restore(t recordType, body []byte) error {
	switch t {
	case recEvent:
		var inv gustv1.Invocation
		if err := proto.Unmarshal(body, &inv); err != nil {
			return fmt.Errorf("restore event: %w", err)
		}
		e.events[inv.GetId()] = &inv
		if k := inv.GetIdempotencyKey(); k != "" {
			e.byKey[k] = inv.GetId()
		}
	case recSchedule:
		var sc raftv1.Schedule
		if err := proto.Unmarshal(body, &sc); err != nil {
			return fmt.Errorf("restore schedule: %w", err)
		}
		e.schedules[sc.GetName()] = &sc
	}
	return nil
}

// Event returns a copy of one event.
func (s *Store) Event(id string) (*gustv1.Invocation, error) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	inv, ok := s.fsm.st.events.events[id]
	if !ok {
		return nil, fmt.Errorf("invocation %s: %w", id, ErrNotFound)
	}
	return proto.Clone(inv).(*gustv1.Invocation), nil
}

// PendingEvents returns copies of queued and running events, oldest first.
func (s *Store) PendingEvents() []*gustv1.Invocation {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	var out []*gustv1.Invocation
	for _, inv := range s.fsm.st.events.events {
		if inv.GetStatus() == EventQueued || inv.GetStatus() == EventRunning {
			out = append(out, proto.Clone(inv).(*gustv1.Invocation))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetEnqueuedUnixNano() < out[j].GetEnqueuedUnixNano() })
	return out
}

// Schedules returns copies of every schedule, sorted by name.
func (s *Store) Schedules() []*raftv1.Schedule {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	out := make([]*raftv1.Schedule, 0, len(s.fsm.st.events.schedules))
	for _, n := range sortedKeys(s.fsm.st.events.schedules) {
		out = append(out, proto.Clone(s.fsm.st.events.schedules[n]).(*raftv1.Schedule))
	}
	return out
}
