package worker

import (
	"log/slog"
	"time"

	"github.com/gustfaas/gust/worker/keepalive"
)

// Config configures a Worker.
type Config struct {
	// Name is the worker's --name, reported in every result.
	Name string
	// DataDir holds the code cache, the runtime rootfs and sandbox state.
	DataDir string
	// MemoryMB is the memory the worker may give sandboxes; 0 means 80% of
	// the host's memory.
	MemoryMB int
	// MaxSandboxes bounds live sandboxes; 0 means no bound beyond memory.
	MaxSandboxes int
	// KeepAlive is how long an idle sandbox stays warm under the fixed
	// policy, and the hybrid policy's fallback while it knows too little.
	KeepAlive time.Duration
	// KeepAlivePolicy decides each idle sandbox's keep-alive (and whether
	// to unload it and pre-warm a fresh one later); nil means
	// keepalive.Adaptive(KeepAlive), the policy the simulation adopted.
	KeepAlivePolicy keepalive.Policy
	// FreezeAfter is how long a sandbox idles before it is frozen; hot
	// sandboxes stay thawed so back-to-back invokes skip the thaw.
	FreezeAfter time.Duration
	// InitTimeout bounds a runtime's initialisation, as on Lambda.
	InitTimeout time.Duration
	// TmpMB is the size of each sandbox's /tmp.
	TmpMB int
	// StemCells is how many generic sandboxes to keep created ahead, so a
	// cold start assigns one instead of creating a container; 0 means the
	// default (DefaultStemCells), negative means none.
	StemCells int
	// LogRetentionMB bounds each function's retained log on this worker
	// (DATA/logs/NAME.log and its one rotated part, each at most half).
	LogRetentionMB int
	// UsageRetention is how long the per-minute usage rollup that gust
	// cost reads is kept.
	UsageRetention time.Duration
	// Region is reported to functions as AWS_REGION.
	Region string
	// Code fetches code zips by digest.
	Code CodeSource
	// Logger receives the worker's logs.
	Logger *slog.Logger
}

// DefaultStemCells is the stock of stem cells a worker with memoryMB for
// sandboxes keeps: one per 128 MB, 8 to 128. A stem cell costs about 2.3 MB
// (its waiting init) and no CPU, under 2% of the memory it stands for; a
// stock of 128 takes a burst of 100 fresh functions at once with no
// container created while they wait (232–234/s on 2 CPUs), where 32 served
// 79–82/s.
func DefaultStemCells(memoryMB int) int {
	return min(max(memoryMB/128, 8), 128)
}

// DefaultConfig returns Lambda-like defaults.
func DefaultConfig() Config {
	return Config{
		Name:        "worker",
		KeepAlive:   10 * time.Minute,
		FreezeAfter: 500 * time.Millisecond,
		InitTimeout: 10 * time.Second,
		TmpMB:       512,
		Region:      "us-east-1",
		// 32 MB of log and 14 days of usage per function.
		LogRetentionMB: 32,
		UsageRetention: 14 * 24 * time.Hour,
	}
}
