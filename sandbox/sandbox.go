package sandbox

import (
	"errors"
	"io"
	"time"
)

// RuntimeAPIAddr is where a sandboxed process finds the Runtime API: inside
// its own network namespace, so nothing else can reach it.
const RuntimeAPIAddr = "127.0.0.1:9001"

// Identity of the function's process, as on Lambda (sbx_user1051).
const (
	UID = 993
	GID = 990
)

// ErrNotSupported is returned where sandboxes cannot run (not Linux, not root).
var ErrNotSupported = errors.New("sandboxes are not supported here")

// Spec describes one sandbox.
type Spec struct {
	// ID names the sandbox; letters, digits, '-' and '_'.
	ID string
	// CodeDir is a host directory mounted read-only at /var/task.
	CodeDir string
	// MemoryMB is the memory limit; CPU shares are proportional to it.
	MemoryMB int
	// TmpMB bounds the writable /tmp.
	TmpMB int
	// PidsLimit bounds processes and threads together.
	PidsLimit int64
	// Args is the command; default /var/task/bootstrap.
	Args []string
	// Env is the process environment, KEY=VALUE.
	Env []string
	// Stdout and Stderr receive the process output.
	Stdout, Stderr io.Writer

	// background gives the sandbox the least CPU weight there is, for a
	// stem cell made ahead: its creation yields to running functions.
	background bool
}

// Stats is a snapshot of a sandbox's resource use.
type Stats struct {
	// MemoryPeakBytes is the highest memory use seen.
	MemoryPeakBytes uint64
	// OOMKills counts processes the kernel killed for memory.
	OOMKills uint64
}

// Exit describes how a sandbox's main process ended.
type Exit struct {
	// Code is the exit status, or -1 when killed by a signal.
	Code int
	// Signal is the signal that killed it, or 0.
	Signal string
	// OOM is set when the kernel's OOM killer acted in the sandbox.
	OOM bool
	// At is when the exit was observed.
	At time.Time
}
