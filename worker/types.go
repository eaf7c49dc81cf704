package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gustfaas/gust/internal/tenant"
)

// Sentinel errors; servers map them to API errors.
var (
	// ErrDraining refuses new work while the worker shuts down.
	ErrDraining = errors.New("worker is draining")
	// ErrCapacity means no memory is left for another sandbox.
	ErrCapacity = errors.New("worker has no capacity")
	// ErrCode means the function's code could not be fetched or unpacked.
	ErrCode = errors.New("function code unavailable")
	// ErrInvalidFunction refuses a function spec whose name is not a
	// stored function name (see tenant.ValidStored) or whose code digest
	// is not a sha256: names become paths and keys here.
	ErrInvalidFunction = errors.New("invalid function")
	// ErrNoWarm answers a WarmOnly request when no idle sandbox is left.
	ErrNoWarm = errors.New("no idle warm sandbox")
)

// Function error kinds, as Lambda reports them.
const (
	FunctionErrorHandled   = "Handled"
	FunctionErrorUnhandled = "Unhandled"
)

// CodeSource hands out code zips by digest; the worker verifies them.
type CodeSource interface {
	OpenCode(ctx context.Context, digest string) (io.ReadCloser, error)
}

// FunctionSpec is what the worker needs to run one function version.
type FunctionSpec struct {
	Name     string
	Version  string
	Revision uint64
	// Incarnation changes when the function is deleted and created again.
	Incarnation uint64
	CodeDigest  string
	Handler     string
	MemoryMB    int
	Timeout     time.Duration
	Env         map[string]string
}

// check refuses what no coordinator would send.
func (f FunctionSpec) check() error {
	if !tenant.ValidStored(f.Name) {
		return fmt.Errorf("%w: name %q", ErrInvalidFunction, f.Name)
	}
	if len(f.CodeDigest) != 64 || strings.Trim(f.CodeDigest, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: code digest %q is not a lowercase hex sha256", ErrInvalidFunction, f.CodeDigest)
	}
	return nil
}

// InvokeRequest is one synchronous invocation.
type InvokeRequest struct {
	Function      FunctionSpec
	RequestID     string
	Payload       []byte
	ClientContext string
	TraceID       string
	// LogTail asks for the last 4 KB of the invocation's log.
	LogTail bool
	// WarmOnly refuses (ErrNoWarm) rather than cold-start: a coordinator
	// that saw an idle sandbox here lost a race for it and will place again.
	WarmOnly bool
	// OnStart, if set, is called once the invocation has a sandbox, before
	// it is delivered: after that, the invocation must not be placed again.
	OnStart func(sandbox string, cold bool)

	redelivered bool // once: sent again after a sandbox died before taking it
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
