// Package worker is the node agent that runs invocations: it keeps the code
// cache, the warm pool of sandboxes per function version, and a Runtime API
// server per sandbox; it enforces timeouts, detects crashes and OOM kills,
// freezes idle sandboxes and reaps what a crashed run left.
//
// It does not decide where invocations go (the coordinator does) and never
// touches libcontainer directly (package sandbox does).
package worker
