package workerapi

import (
	"sort"
	"time"

	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
)

// The conversions to and from gust.node.v1. Durations cross the wire in
// whole units (timeouts in ms, run times in µs) and are time.Duration on
// both sides.

func specToWire(f FunctionSpec) *nodev1.FunctionSpec {
	return &nodev1.FunctionSpec{
		Name: f.Name, DisplayName: f.DisplayName, Version: f.Version, Revision: f.Revision, Incarnation: f.Incarnation,
		CodeDigest: f.CodeDigest, Handler: f.Handler, MemoryMb: int32(f.MemoryMB), TimeoutMs: f.Timeout.Milliseconds(),
		Environment: f.Env,
	}
}

func specFromWire(f *nodev1.FunctionSpec) FunctionSpec {
	return FunctionSpec{
		Name: f.GetName(), DisplayName: f.GetDisplayName(), Version: f.GetVersion(), Revision: f.GetRevision(),
		Incarnation: f.GetIncarnation(), CodeDigest: f.GetCodeDigest(), Handler: f.GetHandler(), MemoryMB: int(f.GetMemoryMb()),
		Timeout: time.Duration(f.GetTimeoutMs()) * time.Millisecond, Env: f.GetEnvironment(),
	}
}

func requestToWire(r InvokeRequest) *nodev1.InvokeRequest {
	return &nodev1.InvokeRequest{
		Function: specToWire(r.Function), RequestId: r.RequestID, Payload: r.Payload, ClientContext: r.ClientContext,
		TraceId: r.TraceID, LogTail: r.LogTail, WarmOnly: r.WarmOnly,
	}
}

func requestFromWire(r *nodev1.InvokeRequest) InvokeRequest {
	return InvokeRequest{
		Function: specFromWire(r.GetFunction()), RequestID: r.GetRequestId(), Payload: r.GetPayload(),
		ClientContext: r.GetClientContext(), TraceID: r.GetTraceId(), LogTail: r.GetLogTail(), WarmOnly: r.GetWarmOnly(),
	}
}

func resultToWire(r *InvokeResult) *nodev1.InvokeResult {
	return &nodev1.InvokeResult{
		RequestId: r.RequestID, ExecutedVersion: r.ExecutedVersion, Worker: r.Worker, Sandbox: r.Sandbox,
		ColdStart: r.ColdStart, ColdStartReason: r.ColdStartReason, DurationUs: r.Duration.Microseconds(),
		InitDurationUs: r.InitDuration.Microseconds(), BilledMs: r.BilledMs, MaxMemoryMb: r.MaxMemoryMB,
		FunctionError: r.FunctionError, Payload: r.Payload, LogTail: r.LogTail,
	}
}

func resultFromWire(r *nodev1.InvokeResult) *InvokeResult {
	return &InvokeResult{
		RequestID: r.GetRequestId(), ExecutedVersion: r.GetExecutedVersion(), Worker: r.GetWorker(), Sandbox: r.GetSandbox(),
		ColdStart: r.GetColdStart(), ColdStartReason: r.GetColdStartReason(),
		Duration: time.Duration(r.GetDurationUs()) * time.Microsecond, InitDuration: time.Duration(r.GetInitDurationUs()) * time.Microsecond,
		BilledMs: r.GetBilledMs(), MaxMemoryMB: r.GetMaxMemoryMb(), FunctionError: r.GetFunctionError(), Payload: r.GetPayload(),
		LogTail: r.GetLogTail(),
	}
}

func stateToWire(worker string, seq uint64, st PoolState) *nodev1.WatchPoolResponse {
	out := &nodev1.WatchPoolResponse{
		Worker: worker, Seq: seq, MemoryMb: st.MemoryMB, FreeMemoryMb: st.FreeMemoryMB,
		Draining: st.Draining, CachedDigests: st.Digests,
	}
	keys := map[string]bool{}
	for k := range st.Idle {
		keys[k] = true
	}
	for k := range st.Busy {
		keys[k] = true
	}
	for k := range keys {
		out.Entries = append(out.Entries, &nodev1.PoolEntry{Key: k, Idle: st.Idle[k], Busy: st.Busy[k]})
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].Key < out.Entries[j].Key })
	return out
}

func stateFromWire(m *nodev1.WatchPoolResponse) PoolState {
	st := PoolState{MemoryMB: m.GetMemoryMb(), FreeMemoryMB: m.GetFreeMemoryMb(), Draining: m.GetDraining(),
		Digests: m.GetCachedDigests(), Idle: map[string]int32{}, Busy: map[string]int32{}}
	for _, e := range m.GetEntries() {
		if e.GetIdle() > 0 {
			st.Idle[e.GetKey()] = e.GetIdle()
		}
		if e.GetBusy() > 0 {
			st.Busy[e.GetKey()] = e.GetBusy()
		}
	}
	return st
}

func sandboxesToWire(list []Sandbox) []*nodev1.Sandbox {
	out := make([]*nodev1.Sandbox, 0, len(list))
	for _, sb := range list {
		out = append(out, &nodev1.Sandbox{Id: sb.ID, Worker: sb.Worker, Function: sb.Function, MemoryMb: int32(sb.MemoryMB),
			State: sb.State, LastUsedUnixMs: sb.LastUsed.UnixMilli()})
	}
	return out
}

func sandboxesFromWire(list []*nodev1.Sandbox) []Sandbox {
	out := make([]Sandbox, 0, len(list))
	for _, sb := range list {
		out = append(out, Sandbox{ID: sb.GetId(), Worker: sb.GetWorker(), Function: sb.GetFunction(), MemoryMB: int(sb.GetMemoryMb()),
			State: sb.GetState(), LastUsed: time.UnixMilli(sb.GetLastUsedUnixMs())})
	}
	return out
}

// unixMs is t in ms since the epoch, 0 for the zero time.
func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromUnixMs is unixMs's inverse.
func fromUnixMs(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func usageToWire(r UsageReport) *nodev1.FunctionUsageResponse {
	out := &nodev1.FunctionUsageResponse{RetainedSinceUnixMs: unixMs(r.RetainedSince)}
	for _, u := range r.Functions {
		out.Functions = append(out.Functions, &nodev1.FunctionUsage{
			Function: u.Function, Requests: u.Requests, BilledMs: u.BilledMs, BilledMbMs: u.BilledMBMs})
	}
	return out
}

func usageFromWire(m *nodev1.FunctionUsageResponse) UsageReport {
	out := UsageReport{RetainedSince: fromUnixMs(m.GetRetainedSinceUnixMs())}
	for _, u := range m.GetFunctions() {
		out.Functions = append(out.Functions, Usage{Function: u.GetFunction(), Requests: u.GetRequests(),
			BilledMs: u.GetBilledMs(), BilledMBMs: u.GetBilledMbMs()})
	}
	return out
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
