package sim

import (
	"fmt"
	"time"

	"github.com/gustfaas/gust/worker/keepalive"
)

// Config is one simulated cluster and workload.
type Config struct {
	// Seed fixes the workload and every random choice: equal seeds give
	// equal results (wall-clock latencies aside).
	Seed uint64
	// Apps is how many apps (function versions) the workload has.
	Apps int
	// Workers is how many workers the cluster has.
	Workers int
	// WorkerMemoryMB is each worker's sandbox memory; every combination
	// runs on the same, so comparisons are at equal memory.
	WorkerMemoryMB int64
	// Warmup is simulated from an empty cluster before anything is
	// counted, so pools reach their steady state. The default outlasts the
	// longest keep-alive the hybrid policy gives (4 h 24 min).
	Warmup time.Duration
	// Measure is the simulated time counted after Warmup.
	Measure time.Duration
	// TimerShare is the share of apps invoked by a timer (Azure 2019:
	// 15.6% of functions have timer triggers); the rest are Poisson.
	TimerShare float64
	// ColdStart is added to the busy time of an invocation that starts a
	// sandbox (runtime init).
	ColdStart time.Duration
	// MaxDuration caps one execution (Lambda's 15 minutes).
	MaxDuration time.Duration
	// MaxMemoryMB caps an app's memory; so does WorkerMemoryMB.
	MaxMemoryMB int64
	// Check verifies the touched worker's memory after every event and
	// every worker's pools in full every few thousand events and at the
	// end: slow, for tests.
	Check bool
}

// DefaultConfig is the simulation RESULTS.md reports.
func DefaultConfig() Config {
	return Config{
		Seed:           1,
		Apps:           2000,
		Workers:        1000,
		WorkerMemoryMB: 2048,
		Warmup:         4*time.Hour + 30*time.Minute,
		Measure:        time.Hour,
		TimerShare:     0.156,
		ColdStart:      250 * time.Millisecond,
		MaxDuration:    15 * time.Minute,
		MaxMemoryMB:    4096,
	}
}

// ShortConfig is a small cluster for tests: seconds, not minutes.
func ShortConfig() Config {
	c := DefaultConfig()
	c.Apps, c.Workers, c.WorkerMemoryMB = 200, 50, 1024
	c.Warmup, c.Measure = 20*time.Minute, 30*time.Minute
	return c
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Apps <= 0 {
		c.Apps = d.Apps
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.WorkerMemoryMB <= 0 {
		c.WorkerMemoryMB = d.WorkerMemoryMB
	}
	if c.Measure <= 0 {
		c.Measure = d.Measure
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = d.MaxDuration
	}
	if c.MaxMemoryMB <= 0 {
		c.MaxMemoryMB = d.MaxMemoryMB
	}
	return c
}

// KeepAlive names a keep-alive policy and how the cluster uses it.
type KeepAlive struct {
	Name string
	// New returns a fresh policy.
	New func() keepalive.Policy
	// PerWorker gives each worker its own policy, seeing only the
	// invocations placed on it; otherwise one policy sees the cluster.
	PerWorker bool
	// Trained feeds a cluster-wide policy each app's synthetic past (up to
	// a week) before the run, as a policy that has been running would
	// have seen it.
	Trained bool
}

// FixedKeepAlive is the worker's policy today.
func FixedKeepAlive(d time.Duration) KeepAlive {
	return KeepAlive{Name: "fixed " + d.String(), New: func() keepalive.Policy { return keepalive.Fixed(d) }}
}

// HybridKeepAlive is the hybrid histogram policy with the paper's
// parameters and floor as its MinKeepAlive (0: the paper's policy), one
// policy for the cluster, trained on each app's past.
func HybridKeepAlive(floor time.Duration) KeepAlive {
	name := "hybrid"
	if floor > 0 {
		name += ", floor " + floor.String()
	}
	return KeepAlive{
		Name: name,
		New: func() keepalive.Policy {
			cfg := keepalive.DefaultHistogramConfig()
			cfg.MinKeepAlive = floor
			return keepalive.NewHybridHistogram(cfg)
		},
		Trained: true,
	}
}

// AdaptiveKeepAlive is keepalive.Adaptive(k), the hybrid histogram with k
// as its floor and fallback and 6·k as its cap, trained like the hybrid.
func AdaptiveKeepAlive(k time.Duration) KeepAlive {
	return KeepAlive{
		Name:    fmt.Sprintf("adaptive (hybrid, floor %s, cap %s)", k, 6*k),
		New:     func() keepalive.Policy { return keepalive.Adaptive(k) },
		Trained: true,
	}
}

// PerWorkerUntrained is k with one policy per worker, each starting empty
// and seeing only the invocations placed on its worker: what a worker that
// adopts the package on its own has on its first day.
func (k KeepAlive) PerWorkerUntrained() KeepAlive {
	k.Name += " (per worker, untrained)"
	k.PerWorker, k.Trained = true, false
	return k
}

// Combo is one run: a placement policy with a keep-alive policy.
type Combo struct {
	Placement string // one of Placements
	KeepAlive KeepAlive
}
