// Package gossip owns cluster membership for gust: which nodes exist, which
// of them are alive, and what each one is (coordinator or worker, its gRPC,
// Raft and HTTP addresses, its memory capacity). Every gust process runs one
// Node, built on hashicorp/memberlist (SWIM gossip over TCP and UDP).
//
// It must not touch Raft or gRPC. Gossip only says "coordinator c2 is alive
// and its Raft address is X"; turning that into a Raft voter or a gRPC
// connection is the caller's decision (the coordinator's reconcile loop).
// Keeping gossip ignorant of both lets it run identically in coordinators and
// workers and keeps failure detection independent of the data paths it
// reports on.
//
// Two things memberlist does not offer are added here:
//
//   - Node states. memberlist's public API neither reports a member as
//     suspect nor tells dead from left (Node.State is never filled in for the
//     local view, and Members omits dead and left nodes). The package
//     therefore reads memberlist's own node table every ~100 ms (and at once
//     after any memberlist event) through memberlist's push/pull stream
//     protocol, handed to it in-process over a net.Pipe, with an empty
//     non-join request so nothing is merged back. Members is that table;
//     Events are the differences between two consecutive reads. This ties
//     the package to the memberlist wire format of the pinned version
//     (including its stream encryption, used with Config.SecretKey) and
//     rules out memberlist labels, which gust does not use.
//   - Joining and rejoining. Start retries the Join addresses in the
//     background with backoff so nodes can start in any order. A node
//     restarted at a new address keeps pushing its state until every peer
//     has dropped the old address. Once joined, members seen dead are
//     re-contacted for a while (as Serf does) so a seed restarted without
//     Join addresses is found again, a member that comes back gets a full
//     push/pull at once (memberlist would leave it knowing nobody until the
//     next anti-entropy round), and the Join addresses are retried whenever
//     no other member is alive.
//
// Names identify nodes. A restarted node keeps its name and rejoins (at the
// same or a new address); a second live process using a name that is
// already taken makes Start fail with ErrNameConflict.
package gossip
