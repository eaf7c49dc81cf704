package raftstore

import (
	"container/list"
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
	register(CmdEnqueueEvents, applyEnqueueEvents)
	register(CmdStartAttempts, applyStartAttempts)
	register(CmdFinishAttempts, applyFinishAttempts)
	registerRecord(recEvent, "event", func(s *state, inv *gustv1.Invocation) error {
		s.events.restoreEvent(inv)
		return nil
	})
	registerRecord(recSchedule, "schedule", func(s *state, sc *raftv1.Schedule) error {
		s.events.schedules[sc.GetName()] = sc
		return nil
	})
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
	events map[string]*gustv1.Invocation
	// pending indexes the queued and running events in arrival order, so
	// the dispatcher finds the oldest ready ones without looking at every
	// event kept (finished ones stay for the retention time).
	pending   map[string]*list.Element // of *gustv1.Invocation in order
	order     *list.List
	byKey     map[string]string // idempotency key → id
	schedules map[string]*raftv1.Schedule
}

func newEventState() eventState {
	return eventState{events: map[string]*gustv1.Invocation{}, pending: map[string]*list.Element{}, order: list.New(),
		byKey: map[string]string{}, schedules: map[string]*raftv1.Schedule{}}
}

// index keeps pending in step with an event's status; a retried event keeps
// its place.
func (e *eventState) index(inv *gustv1.Invocation) {
	el, ok := e.pending[inv.GetId()]
	switch {
	case inv.GetStatus() == EventQueued || inv.GetStatus() == EventRunning:
		if ok {
			el.Value = inv
		} else {
			e.pending[inv.GetId()] = e.order.PushBack(inv)
		}
	case ok:
		e.order.Remove(el)
		delete(e.pending, inv.GetId())
	}
}

func (e *eventState) drop(id string) {
	if el, ok := e.pending[id]; ok {
		e.order.Remove(el)
		delete(e.pending, id)
	}
	delete(e.events, id)
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
	e.index(inv)
	return inv
}

func applyEnqueueEvent(s *state, body []byte) any {
	var c raftv1.EnqueueEvent
	mustUnmarshal(body, &c)
	if !validEvent(c.GetInvocation()) {
		return fmt.Errorf("enqueue: event without an id: %w", ErrInvalid)
	}
	return proto.Clone(s.events.enqueue(c.GetInvocation()))
}

// validEvent guards the appliers: a command that decodes but lacks what
// it needs is refused, never a panic on every replica.
func validEvent(inv *gustv1.Invocation) bool { return inv != nil && inv.GetId() != "" }

func applyEnqueueEvents(s *state, body []byte) any {
	var c raftv1.EnqueueEvents
	mustUnmarshal(body, &c)
	for _, inv := range c.GetInvocations() {
		if !validEvent(inv) {
			return fmt.Errorf("enqueue: event without an id: %w", ErrInvalid)
		}
	}
	out := &raftv1.Invocations{}
	for _, inv := range c.GetInvocations() {
		out.Invocations = append(out.Invocations, proto.Clone(s.events.enqueue(inv)).(*gustv1.Invocation))
	}
	return out
}

func applyStartAttempt(s *state, body []byte) any {
	var c raftv1.StartAttempt
	mustUnmarshal(body, &c)
	inv, err := s.events.start(c.GetId(), c.GetCoordinator(), c.GetAtUnixNano())
	if err != nil {
		return err
	}
	return proto.Clone(inv)
}

// applyStartAttempts starts every event of the batch that can start; the
// result lists those, so the dispatcher runs exactly what was recorded.
func applyStartAttempts(s *state, body []byte) any {
	var c raftv1.StartAttempts
	mustUnmarshal(body, &c)
	out := &raftv1.Invocations{}
	for _, id := range c.GetIds() {
		if inv, err := s.events.start(id, c.GetCoordinator(), c.GetAtUnixNano()); err == nil {
			out.Invocations = append(out.Invocations, proto.Clone(inv).(*gustv1.Invocation))
		}
	}
	return out
}

func (e *eventState) start(id, coordinator string, at int64) (*gustv1.Invocation, error) {
	inv, ok := e.events[id]
	if !ok {
		return nil, fmt.Errorf("event %s: %w", id, ErrNotFound)
	}
	if inv.GetStatus() != EventQueued && inv.GetStatus() != EventRunning {
		return nil, fmt.Errorf("event %s is %s: %w", id, inv.GetStatus(), ErrInvalid)
	}
	inv.Status = EventRunning
	inv.Attempts++
	if inv.Attempts == 1 {
		inv.FirstStartedUnixNano = at
	}
	inv.RunningOn = coordinator
	inv.RunningSinceUnixNano = at
	e.index(inv)
	return inv, nil
}

func applyFinishAttempt(s *state, body []byte) any {
	var c raftv1.FinishAttempt
	mustUnmarshal(body, &c)
	inv, err := s.events.finish(&c)
	if err != nil {
		return err
	}
	return proto.Clone(inv)
}

func applyFinishAttempts(s *state, body []byte) any {
	var c raftv1.FinishAttempts
	mustUnmarshal(body, &c)
	for _, f := range c.GetAttempts() {
		s.events.finish(f) // an event pruned meanwhile has nothing to record
	}
	return nil
}

func (e *eventState) finish(c *raftv1.FinishAttempt) (*gustv1.Invocation, error) {
	inv, ok := e.events[c.GetId()]
	if !ok {
		return nil, fmt.Errorf("event %s: %w", c.GetId(), ErrNotFound)
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
	e.index(inv)
	if then := c.GetThen(); validEvent(then) {
		e.enqueue(then)
	}
	return inv, nil
}

func applyPruneEvents(s *state, body []byte) any {
	var c raftv1.PruneEvents
	mustUnmarshal(body, &c)
	for id, inv := range s.events.events {
		if inv.GetFinishedUnixNano() > 0 && inv.GetFinishedUnixNano() < c.GetFinishedBeforeUnixNano() {
			s.events.drop(id)
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
	if sc.GetName() == "" {
		return fmt.Errorf("schedule without a name: %w", ErrInvalid)
	}
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
	if !validEvent(c.GetInvocation()) {
		return fmt.Errorf("schedule %q tick without an event: %w", c.GetName(), ErrInvalid)
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
	// Oldest first, so a restored replica rebuilds the queue's order.
	ids := sortedKeys(e.events)
	sort.SliceStable(ids, func(i, j int) bool {
		return e.events[ids[i]].GetEnqueuedUnixNano() < e.events[ids[j]].GetEnqueuedUnixNano()
	})
	for _, id := range ids {
		recs = appendRecord(recs, recEvent, e.events[id])
	}
	return appendSorted(recs, recSchedule, e.schedules)
}

// restoreEvent adds one event from a snapshot, with its indexes.
func (e *eventState) restoreEvent(inv *gustv1.Invocation) {
	e.events[inv.GetId()] = inv
	e.index(inv)
	if k := inv.GetIdempotencyKey(); k != "" {
		e.byKey[k] = inv.GetId()
	}
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

// ReadyEvents returns copies of at most limit events the dispatcher may
// start now, oldest first: queued ones due by now, and running ones that
// skip does not claim (a previous leader's attempts, whose outcome was never
// committed). It looks only at pending events, never the finished ones.
func (s *Store) ReadyEvents(now int64, limit int, skip func(id string) bool) []*gustv1.Invocation {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	var out []*gustv1.Invocation
	for el := s.fsm.st.events.order.Front(); el != nil && len(out) < limit; el = el.Next() {
		inv := el.Value.(*gustv1.Invocation)
		if inv.GetStatus() == EventQueued && inv.GetNextAttemptUnixNano() > now {
			continue
		}
		if skip != nil && skip(inv.GetId()) {
			continue
		}
		out = append(out, proto.Clone(inv).(*gustv1.Invocation))
	}
	return out
}

// PendingCount is how many events are queued or running.
func (s *Store) PendingCount() int {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return len(s.fsm.st.events.pending)
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
