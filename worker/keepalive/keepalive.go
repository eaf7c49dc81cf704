package keepalive

import "time"

// Policy is what the worker's pool needs from a keep-alive policy. fn is the
// pool key (one function version). Implementations are safe for concurrent
// use.
type Policy interface {
	// Arrived records that an invocation of fn arrived at now.
	Arrived(fn string, now time.Time)
	// Idle records that a sandbox of fn finished an invocation at now and
	// says what to do with it.
	Idle(fn string, now time.Time) Window
	// Forget drops what is known about fn, e.g. when it is deleted.
	Forget(fn string)
}

// Window is the decision for one sandbox that just went idle.
//
// With Prewarm zero the sandbox stays loaded for KeepAlive from now. With
// Prewarm positive it is unloaded now and a fresh one of the same function
// is loaded Prewarm from now, then kept for KeepAlive from that load: the
// next invocation is not expected before then, so holding memory through
// the gap would be waste.
type Window struct {
	Prewarm   time.Duration
	KeepAlive time.Duration
}

// Fixed keeps every idle sandbox for d and never pre-warms: what the worker
// does today (Config.KeepAlive), and the baseline the others are measured
// against.
func Fixed(d time.Duration) Policy { return fixed(d) }

type fixed time.Duration

// Arrived ignores the arrival: a fixed policy learns nothing.
func (fixed) Arrived(string, time.Time) {}

// Idle keeps the sandbox for the fixed length.
func (f fixed) Idle(string, time.Time) Window { return Window{KeepAlive: time.Duration(f)} }

// Forget has nothing to drop.
func (fixed) Forget(string) {}
