// Package workerapi is the contract between a coordinator and a worker:
// what a coordinator asks a worker to do, what comes back, the errors a
// worker refuses with, and their one conversion to and from the wire
// (gust.node.v1.WorkerService).
//
// A coordinator holds a Worker: the worker implementation itself when both
// share a process (gustd dev), or a Client over gRPC when the worker runs
// on another host. Either way the request keeps its type from the
// coordinator to the worker, and a worker's refusal keeps its sentinel
// error: errors.Is(err, ErrDraining) holds on both sides of the link.
//
// Nothing here imports the worker implementation, so coordinators link no
// sandbox code.
package workerapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gustfaas/gust/internal/tenant"
)

// Worker is what a coordinator may ask of a worker.
type Worker interface {
	// Name is the worker's name, unique in its cluster.
	Name() string
	// Invoke runs one invocation. Function errors are results; errors are
	// the platform's: a refusal before the invocation started (ErrDraining,
	// ErrCapacity, ErrCode, ErrNoWarm), or a failure while it ran.
	Invoke(ctx context.Context, req InvokeRequest) (*InvokeResult, error)
	// WatchPool calls fn with the pool state whenever it changes, and at
	// least every second, until ctx ends, the link breaks or fn fails.
	WatchPool(ctx context.Context, fn func(PoolState) error) error
	// Sandboxes lists the live sandboxes, for operators.
	Sandboxes(ctx context.Context) ([]Sandbox, error)
	// Drain refuses new invocations from now on; in-flight ones finish.
	Drain(ctx context.Context) error
	// Provision keeps count initialised sandboxes of fn for hold
	// (provisioned concurrency), starting those it lacks.
	Provision(ctx context.Context, fn FunctionSpec, count int, hold time.Duration) (existing, started int, err error)
	// ReadLogs sends a function's retained log, in whole lines.
	ReadLogs(ctx context.Context, function string, opts LogOptions, send func([]byte) error) error
	// Usage sums the invocations run on the worker over [since, until).
	Usage(ctx context.Context, function string, since, until time.Time) (UsageReport, error)
	// Retire destroys a deleted function's sandboxes and says how many.
	Retire(ctx context.Context, function string) (int, error)
}

// Refusals. A worker returns them before an invocation starts, so the
// coordinator may place it on another worker.
var (
	// ErrDraining refuses new work while the worker shuts down.
	ErrDraining = errors.New("worker is draining")
	// ErrCapacity means no memory is left for another sandbox.
	ErrCapacity = errors.New("worker has no capacity")
	// ErrCode means the function's code could not be fetched or unpacked.
	ErrCode = errors.New("function code unavailable")
	// ErrInvalidFunction refuses a function spec whose name is not a
	// stored function name (see tenant.ValidStored) or whose code digest
	// is not a sha256: names become paths and keys on a worker.
	ErrInvalidFunction = errors.New("invalid function")
	// ErrNoWarm answers a WarmOnly request when no idle sandbox is left.
	ErrNoWarm = errors.New("no idle warm sandbox")
)

// Function error kinds, as Lambda reports them.
const (
	FunctionErrorHandled   = "Handled"
	FunctionErrorUnhandled = "Unhandled"
)

// FunctionSpec is what a worker needs to run one function version.
type FunctionSpec struct {
	// Name is the stored name (TENANT.NAME for a tenant's function): it
	// keys pools, logs and usage.
	Name string
	// DisplayName is the name the function sees as its own
	// (AWS_LAMBDA_FUNCTION_NAME, its ARN); empty means Name.
	DisplayName string
	Version     string
	Revision    uint64
	// Incarnation changes when the function is deleted and created again.
	Incarnation uint64
	CodeDigest  string
	Handler     string
	MemoryMB    int
	Timeout     time.Duration
	Env         map[string]string
}

// Validate refuses what no coordinator would send.
func (f FunctionSpec) Validate() error {
	if !tenant.ValidStored(f.Name) {
		return fmt.Errorf("%w: name %q", ErrInvalidFunction, f.Name)
	}
	if len(f.CodeDigest) != 64 || strings.Trim(f.CodeDigest, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: code digest %q is not a lowercase hex sha256", ErrInvalidFunction, f.CodeDigest)
	}
	return nil
}

// FunctionName is the name the function knows itself by.
func (f FunctionSpec) FunctionName() string {
	if f.DisplayName != "" {
		return f.DisplayName
	}
	return f.Name
}

// PoolKey identifies a function version's code and configuration: a
// sandbox is reused only for exactly what it was started with, and
// placement keys its view of warm sandboxes the same way. The incarnation
// tells a function deleted and created again from the old one; the hash
// covers the code digest and every setting the sandbox was made with, so
// no request can steer an invocation into a sandbox made for other code
// or another environment by naming the right revision.
func PoolKey(fn FunctionSpec) string {
	// Lengths before values, so no value can pass for two; built by hand,
	// as this runs on every invocation (placement and worker).
	b := make([]byte, 0, 256)
	field := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	field(fn.CodeDigest)
	field(fn.Handler)
	b = strconv.AppendInt(b, int64(fn.MemoryMB), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(fn.Timeout), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(fn.Env)), 10)
	keys := make([]string, 0, len(fn.Env))
	for k := range fn.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k)
		field(fn.Env[k])
	}
	sum := sha256.Sum256(b)
	return fn.Name + "\x00" + fn.Version + "\x00" + strconv.FormatUint(fn.Revision, 10) + "\x00" +
		strconv.FormatUint(fn.Incarnation, 10) + "\x00" + hex.EncodeToString(sum[:12])
}

// InvokeRequest is one synchronous invocation.
type InvokeRequest struct {
	Function      FunctionSpec
	RequestID     string
	Payload       []byte
	ClientContext string
	// TraceID is the X-Ray trace header the function sees; empty lets the
	// worker make one from the caller's span.
	TraceID string
	// LogTail asks for the last 4 KB of the invocation's log.
	LogTail bool
	// WarmOnly refuses (ErrNoWarm) rather than cold-start: a coordinator
	// that saw an idle sandbox here lost a race for it and will place again.
	WarmOnly bool
	// OnStart, if set, is called once the invocation has a sandbox, before
	// it is delivered: after that, the invocation must not be placed again.
	OnStart func(sandbox string, cold bool)
}

// InvokeResult is what happened. Function errors are results, not errors.
type InvokeResult struct {
	RequestID       string
	ExecutedVersion string
	Worker          string
	Sandbox         string
	ColdStart       bool
	// ColdStartReason says why, when ColdStart (see gust.v1.InvokeResponse).
	ColdStartReason string
	Duration        time.Duration
	InitDuration    time.Duration
	BilledMs        int64
	MaxMemoryMB     int64
	// FunctionError is "", Handled or Unhandled.
	FunctionError string
	// Payload is the response, or the error object when FunctionError is set.
	Payload []byte
	LogTail string
}

// PoolState is a snapshot of a worker's pool, for placement.
type PoolState struct {
	MemoryMB int64
	// FreeMemoryMB counts idle sandboxes' memory as free: they are
	// evicted, least recently used first, when a new sandbox needs room.
	FreeMemoryMB int64
	Draining     bool
	// Idle and Busy count sandboxes per pool key.
	Idle, Busy map[string]int32
	// Digests are the code digests cached on the worker.
	Digests []string
}

// Sandboxes counts the sandboxes of every pool key.
func (s PoolState) Sandboxes() (idle, busy int64) {
	for _, n := range s.Idle {
		idle += int64(n)
	}
	for _, n := range s.Busy {
		busy += int64(n)
	}
	return idle, busy
}

// Sandbox describes one live sandbox.
type Sandbox struct {
	ID       string
	Worker   string
	Function string
	MemoryMB int
	State    string // idle, frozen or busy
	LastUsed time.Time
}

// LogOptions say which part of a function's log to read.
type LogOptions struct {
	// Follow goes on with what is written later, until ctx ends.
	Follow bool
	// Since, if set, keeps only lines written at or after it.
	Since time.Time
	// Timestamps keeps each line's time prefix.
	Timestamps bool
}

// Usage is one function's invocations and billed time in a window.
type Usage struct {
	Function string
	Requests int64
	BilledMs int64
	// BilledMBMs is billed ms × memory MB; GB-seconds = BilledMBMs / 1024 / 1000.
	BilledMBMs int64
}

// GBSeconds is the billed GB-seconds, as Lambda bills them.
func (u Usage) GBSeconds() float64 { return float64(u.BilledMBMs) / 1024 / 1000 }

// UsageReport is a worker's answer to a usage request.
type UsageReport struct {
	Functions []Usage
	// RetainedSince is the start of what the worker still keeps; zero if
	// it keeps everything asked for.
	RetainedSince time.Time
}
