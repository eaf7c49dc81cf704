// Package sim is a deterministic, trace-driven simulator of a gust cluster:
// a workload with the Azure Functions 2019 shapes, simulated workers whose
// pools follow worker/pool.go (idle sandboxes per version, busy ones,
// least-recently-used eviction, keep-alive expiry), the real
// coordinator/placement Placer against OpenWhisk-style hashing,
// least-loaded and random placement, and the worker/keepalive policies.
//
// It owns the simulated clock, workload and pools only. It must not
// re-implement placement or keep-alive: it drives the real packages so
// that what it measures is what the cluster would run. It starts no
// sandbox and does no I/O.
package sim
