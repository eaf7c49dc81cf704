package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/requestid"
	"github.com/gustfaas/gust/internal/tenant"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
)

// Async defaults, as on Lambda (backoff shortened: retries come after 1 s, 2 s).
const (
	defaultMaxRetries  = 2
	defaultMaxEventAge = 6 * time.Hour
	minEventAge        = 60 * time.Second
	retryBackoff       = time.Second
	// An attempt waits this long for a concurrency slot before it counts
	// as throttled: the queue is not in a hurry, and a lease that is short
	// right now usually grows within a renewal.
	asyncAdmitWait = 2 * time.Second
	// Throttled and platform-failed attempts back off to at most this:
	// they did not run the function, and capacity returns when the burst
	// that took it ends.
	maxPlatformBackoff = 10 * time.Second
)

// Idempotency keys are scoped where they are stored. A key a caller sends
// is stored as "user/TENANT/KEY", TENANT being that of the function's
// stored name ("" for root's), and a schedule's tick as
// "schedule/NAME/TICK". So one tenant's key never meets another's (each
// would take the other's event, and learn which keys it used), and no
// caller can send a key that claims a schedule's tick before it fires.
const (
	userKeyPrefix     = "user/"
	scheduleKeyPrefix = "schedule/"
	// maxIdempotencyKey bounds a key: it is kept in Raft with its event.
	maxIdempotencyKey = 256
)

// userKey is the stored form of a key sent for an event of function.
func userKey(function, key string) string {
	if key == "" {
		return ""
	}
	t, _ := tenant.Split(function)
	return userKeyPrefix + t + "/" + key
}

// scheduleKey is the stored key of a schedule's tick.
func scheduleKey(schedule string, tick time.Time) string {
	return scheduleKeyPrefix + schedule + "/" + tick.UTC().Format(time.RFC3339Nano)
}

// callerKey is a stored key as its caller sent it.
func callerKey(stored string) string {
	if rest, ok := strings.CutPrefix(stored, userKeyPrefix); ok {
		if _, key, ok := strings.Cut(rest, "/"); ok { // tenant names have no '/'
			return key
		}
	}
	return stored
}

// InvokeAsync commits an event to Raft and returns its id: once this
// returns, the event survives the loss of any single node.
func (iv *invoker) InvokeAsync(ctx context.Context, req *gustv1.InvokeAsyncRequest) (string, error) {
	if len(req.GetPayload()) > iv.limits.MaxAsyncPayload {
		return "", apierr.New(apierr.RequestTooLarge, "event payload of %d bytes is over the %d byte limit", len(req.GetPayload()), iv.limits.MaxAsyncPayload)
	}
	if len(req.GetIdempotencyKey()) > maxIdempotencyKey {
		return "", apierr.New(apierr.InvalidParameterValue, "idempotency key of %d bytes is over the %d byte limit", len(req.GetIdempotencyKey()), maxIdempotencyKey)
	}
	if _, err := iv.fns.Get(ctx, req.GetFunction(), req.GetQualifier()); err != nil {
		return "", err
	}
	payload := req.GetPayload()
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	now := time.Now().UnixNano()
	inv := &gustv1.Invocation{Id: requestid.New(), Function: req.GetFunction(), Qualifier: req.GetQualifier(), Payload: payload,
		IdempotencyKey: userKey(req.GetFunction(), req.GetIdempotencyKey()), EnqueuedUnixNano: now, NextAttemptUnixNano: now}
	out, err := iv.enqueue.do(ctx, inv)
	if err != nil {
		return "", fmt.Errorf("enqueue event: %w", err)
	}
	iv.wakeDispatch()
	return out.GetId(), nil
}

// Batching of the async queue's Raft entries: up to this many events per
// entry, and this many entries in flight per coordinator (Raft pipelines
// them, and a batch gathers while the previous one commits).
const (
	maxEventBatch   = 256
	eventCommitters = 4
)

// commitEvents stores a batch of events in one Raft entry; each result is
// the stored event (an earlier one, for a repeated idempotency key).
func (iv *invoker) commitEvents(ctx context.Context, invs []*gustv1.Invocation) ([]*gustv1.Invocation, error) {
	out := &raftv1.Invocations{}
	// No read-your-writes wait: getInvocation catches up on a miss.
	if err := iv.fns.write.ApplyNoWait(ctx, raftstore.Command{Type: raftstore.CmdEnqueueEvents, Msg: &raftv1.EnqueueEvents{Invocations: invs}}, out); err != nil {
		return nil, err
	}
	return out.GetInvocations(), nil
}

// commitFinishes records a batch of attempt outcomes in one Raft entry.
func (iv *invoker) commitFinishes(ctx context.Context, fins []*raftv1.FinishAttempt) ([]struct{}, error) {
	if err := iv.fns.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdFinishAttempts, Msg: &raftv1.FinishAttempts{Attempts: fins}}, nil); err != nil {
		return nil, err
	}
	return make([]struct{}, len(fins)), nil
}

func (iv *invoker) wakeDispatch() {
	select {
	case iv.wake <- struct{}{}:
	default:
	}
}

// GetInvocation reads an event from the local replica, catching up on a miss.
func (iv *invoker) GetInvocation(ctx context.Context, id string) (*gustv1.Invocation, error) {
	inv, err := iv.fns.store.Event(id)
	if errors.Is(err, raftstore.ErrNotFound) && iv.fns.write.CatchUp(ctx) == nil {
		inv, err = iv.fns.store.Event(id)
	}
	if errors.Is(err, raftstore.ErrNotFound) {
		return nil, apierr.New(apierr.ResourceNotFound, "invocation not found: %s", id)
	}
	if err != nil {
		return nil, err
	}
	inv.IdempotencyKey = callerKey(inv.GetIdempotencyKey())
	return inv, nil
}

// dispatcher runs queued events on the leader: at least once, with retries
// and backoff, then the on-failure function. Events a previous leader left
// running are started again (their outcome was never committed). Starts
// and finishes are batched: one Raft entry starts every event ready on a
// tick, and concurrent finishes share entries.
type dispatcher struct {
	name string
	// base is the coordinator's lifetime: attempts started while leading
	// run to their end even if leadership moves meanwhile.
	base    context.Context
	iv      *invoker
	log     *slog.Logger
	mu      sync.Mutex
	running map[string]bool
	slots   chan struct{} // bounds attempts in flight on this leader
	finish  *groupCommit[*raftv1.FinishAttempt, struct{}]
}

// maxDispatch bounds concurrent attempts on the leader.
const maxDispatch = 64

// loop starts ready events and prunes finished ones while this
// coordinator leads (run by the leader supervisor).
func (d *dispatcher) loop(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	prune := time.NewTicker(10 * time.Second)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.iv.wake:
		case <-prune.C:
			before := time.Now().Add(-d.iv.limits.AsyncResultRetention).UnixNano()
			d.iv.fns.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdPruneEvents, Msg: &raftv1.PruneEvents{FinishedBeforeUnixNano: before}}, nil)
			continue
		}
		d.startReady(ctx)
	}
}

// startReady starts, in one Raft entry, as many ready events as there are
// free slots, then runs each.
func (d *dispatcher) startReady(ctx context.Context) {
	free := cap(d.slots) - len(d.slots)
	if free == 0 {
		return // at capacity: a finishing attempt wakes the loop
	}
	d.mu.Lock()
	ready := d.iv.fns.store.ReadyEvents(time.Now().UnixNano(), free, func(id string) bool { return d.running[id] })
	d.mu.Unlock()
	if len(ready) == 0 {
		return
	}
	ids := make([]string, len(ready))
	for i, inv := range ready {
		ids[i] = inv.GetId()
	}
	out := &raftv1.Invocations{}
	err := d.iv.fns.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdStartAttempts,
		Msg: &raftv1.StartAttempts{Ids: ids, Coordinator: d.name, AtUnixNano: time.Now().UnixNano()}}, out)
	if err != nil {
		return // lost leadership or shutting down: the next leader starts them
	}
	for _, inv := range out.GetInvocations() {
		d.slots <- struct{}{} // cannot block: only this loop takes slots
		d.mu.Lock()
		d.running[inv.GetId()] = true
		d.mu.Unlock()
		go d.run(d.base, inv)
	}
}

func (d *dispatcher) run(ctx context.Context, inv *gustv1.Invocation) {
	defer func() {
		d.mu.Lock()
		delete(d.running, inv.GetId())
		d.mu.Unlock()
		<-d.slots
		d.iv.wakeDispatch()
	}()
	d.attempt(ctx, inv)
}

// attempt runs one attempt and commits its outcome.
func (d *dispatcher) attempt(ctx context.Context, inv *gustv1.Invocation) {
	fn, err := d.iv.fns.Get(ctx, inv.GetFunction(), inv.GetQualifier())
	var res *gustv1.InvokeResponse
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, fn.GetConfig().GetTimeout().AsDuration()+30*time.Second)
		res, err = d.iv.invokeWaiting(rctx, &gustv1.InvokeRequest{Function: inv.GetFunction(), Qualifier: inv.GetQualifier(), Payload: inv.GetPayload()}, asyncAdmitWait)
		cancel()
	}
	if ctx.Err() != nil {
		return // shutting down: the next leader starts it again
	}
	now := time.Now()
	fin := &raftv1.FinishAttempt{Id: inv.GetId(), AtUnixNano: now.UnixNano()}
	cfg := fn.GetConfig()
	maxRetries := int32(defaultMaxRetries)
	if cfg != nil && cfg.MaxRetries != nil {
		maxRetries = cfg.GetMaxRetries()
	}
	maxAge := defaultMaxEventAge
	if cfg.GetMaxEventAge() != nil {
		maxAge = cfg.GetMaxEventAge().AsDuration()
	}
	age := now.Sub(time.Unix(0, inv.GetEnqueuedUnixNano()))
	var apiErr *apierr.Error
	switch {
	case err == nil && res.GetFunctionError() == "":
		fin.Status, fin.Result, fin.ExecutedVersion = raftstore.EventSucceeded, res.GetPayload(), res.GetExecutedVersion()
	case err != nil && errors.As(err, &apiErr) && apiErr.Name == apierr.ResourceNotFound:
		fin.Status, fin.Error = raftstore.EventFailed, err.Error() // the function is gone: no retry helps
	case err != nil && age < maxAge:
		// Throttled or the platform failed: retry until the event is too old,
		// without spending the function's retries.
		fin.Status, fin.Error = raftstore.EventQueued, err.Error()
		fin.NextAttemptUnixNano = now.Add(min(backoff(inv.GetAttempts()), maxPlatformBackoff)).UnixNano()
	case err != nil:
		fin.Status, fin.Error = raftstore.EventFailed, fmt.Sprintf("event older than %s: %v", maxAge, err)
	case inv.GetAttempts() <= maxRetries && age < maxAge:
		fin.Status, fin.Result, fin.ExecutedVersion = raftstore.EventQueued, res.GetPayload(), res.GetExecutedVersion()
		fin.Error = "function error: " + res.GetFunctionError()
		fin.NextAttemptUnixNano = now.Add(backoff(inv.GetAttempts())).UnixNano()
	default:
		fin.Status, fin.Result, fin.ExecutedVersion = raftstore.EventFailed, res.GetPayload(), res.GetExecutedVersion()
		fin.Error = "function error: " + res.GetFunctionError()
	}
	if fin.Status == raftstore.EventFailed && cfg.GetOnFailure() != "" {
		fin.Then = d.destination(inv, cfg.GetOnFailure(), res, fin, now)
	}
	if _, err := d.finish.do(context.WithoutCancel(ctx), fin); err != nil {
		// Not recorded: the event stays running, and the next leader (or
		// this one, after a restart) starts it again.
		d.log.Warn("record async attempt", "id", inv.GetId(), "err", err)
	}
	// Each attempt's outcome, to follow an event that takes long to finish.
	var retryIn time.Duration
	if fin.GetStatus() == raftstore.EventQueued {
		retryIn = time.Until(time.Unix(0, fin.GetNextAttemptUnixNano())).Round(time.Millisecond)
	}
	d.log.Debug("async attempt", "id", inv.GetId(), "function", inv.GetFunction(), "attempt", inv.GetAttempts(),
		"status", fin.GetStatus(), "error", fin.GetError(), "retry_in", retryIn)
}

func backoff(attempts int32) time.Duration {
	d := retryBackoff << max(attempts-1, 0)
	return min(d, time.Minute)
}

// destination builds the on-failure event in Lambda's destination record format.
func (d *dispatcher) destination(inv *gustv1.Invocation, target string, res *gustv1.InvokeResponse, fin *raftv1.FinishAttempt, now time.Time) *gustv1.Invocation {
	rawOrString := func(b []byte) json.RawMessage {
		if json.Valid(b) {
			return b
		}
		s, _ := json.Marshal(string(b))
		return s
	}
	record := map[string]any{
		"version":   "1.0",
		"timestamp": now.UTC().Format(time.RFC3339Nano),
		"requestContext": map[string]any{
			"requestId": inv.GetId(), "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:" + tenant.Bare(inv.GetFunction()),
			"condition": "RetriesExhausted", "approximateInvokeCount": inv.GetAttempts(),
		},
		"requestPayload": rawOrString(inv.GetPayload()),
		"responseContext": map[string]any{
			"statusCode": 200, "executedVersion": res.GetExecutedVersion(), "functionError": res.GetFunctionError(),
		},
		"responsePayload": rawOrString(fin.GetResult()),
	}
	if res == nil {
		record["responseContext"] = map[string]any{"error": fin.GetError()}
	}
	payload, _ := json.Marshal(record)
	return &gustv1.Invocation{Id: requestid.New(), Function: target, Payload: payload,
		EnqueuedUnixNano: now.UnixNano(), NextAttemptUnixNano: now.UnixNano()}
}
