// Package leader runs the coordinator's leader-only loops (the async
// dispatcher, the scheduler, provisioning, membership, quota grants) while,
// and only while, this node leads the Raft cluster.
//
// It owns starting and stopping those loops on leadership changes. It knows
// nothing of Raft, the coordinator or what the loops do: it is given the
// current leadership, a channel of changes and the loops. It must not
// import coordinator or worker packages.
package leader
