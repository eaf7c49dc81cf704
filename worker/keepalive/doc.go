// Package keepalive decides how long an idle sandbox stays loaded and
// whether to unload it and load a fresh one just before the next
// invocation is expected (pre-warming).
//
// It owns the per-function statistics that decision needs and nothing else:
// it starts, freezes and destroys no sandbox, reads no clock and does no
// I/O. The worker's pool tells it when an invocation arrives and when a
// sandbox goes idle, passing the time, and acts on the Window it gets back.
// Keeping it pure lets the trace-driven simulator (package sim) run the very
// same code over simulated hours in seconds.
package keepalive
