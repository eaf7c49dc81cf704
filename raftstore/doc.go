// Package raftstore is the replicated state of a gust cluster: functions
// (and later versions, aliases, quotas, async events, schedules) held in a
// hashicorp/raft state machine on disk.
//
// Commands in the log are typed and append-only: one byte of type, then a
// protobuf message. Each domain registers its appliers, and the restorers
// of its snapshot records, in its own file (fsm_functions.go, …). Nothing that changes per invocation goes through
// here. The package knows nothing of gRPC, workers or sandboxes.
package raftstore
