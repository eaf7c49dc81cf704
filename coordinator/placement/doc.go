// Package placement chooses the worker for one invocation from the
// coordinator's view of the cluster: each worker's last reported warm pool,
// cached code digests and free memory, plus its health.
//
// It owns that in-memory view and the choice only. It does no network I/O,
// speaks no gRPC and runs no gossip: the code that receives worker state
// streams and membership events calls Update, SetAvailable and Remove, and
// the invoke path calls Pick. Keeping it pure keeps Pick fast (no allocation,
// no blocking beyond one short lock) and testable without a cluster.
package placement
