package sandbox

import (
	"errors"
	"io"
	"time"
)

// RuntimeAPIAddr is where a sandboxed process finds the Runtime API: inside
// its own network namespace, so nothing else can reach it.
const RuntimeAPIAddr = "127.0.0.1:9001"

// Identity of the function's process. Each sandbox runs as a host uid of
// its own, from UIDBase, which its /etc/passwd names sbx_user1051 (Lambda's
// user), in group GID. The kernel keeps some limits per user (inotify
// instances, queued signals, message queue bytes): with one uid for every
// sandbox, one function could use them up for all the others. The range is
// above those that useradd, systemd and subordinate-uid setups hand out.
const (
	UIDBase  = 2_000_000_000
	UIDCount = 65536
	GID      = 990
)

// IsSandboxUID reports whether a host uid is one that sandboxes run as.
func IsSandboxUID(uid int) bool { return uid >= UIDBase && uid < UIDBase+UIDCount }

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
