// Package admission enforces concurrency limits exactly, cluster-wide,
// with no network call per invocation.
//
// The Raft leader grants each coordinator a lease on a share of each pool
// (the account's unreserved pool, every reserved function's pool, every
// pool of a tenant with a limit of its own): so many slots, until a
// deadline. A coordinator admits an invocation only
// while it holds a free slot of a valid lease, by its own clock, with a
// safety margin. The leader never grants slots that another coordinator's
// lease still covers — until that lease has expired and every invocation
// admitted under it has reached its timeout — so the sum of what can run
// never exceeds the limit, even when coordinators die or are cut off.
//
// Shrinking is two-phase: a coordinator lowers its own cap before asking
// for less, so the leader never frees slots still in use. The package
// owns leases and their arithmetic; it does not place invocations, and it
// reaches Raft only through the Granter the coordinator gives it.
package admission
