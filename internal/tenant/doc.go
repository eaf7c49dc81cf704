// Package tenant names what belongs to a tenant. It owns the mapping between
// the names a tenant uses and the names the cluster stores; it must not know
// about tokens or transports.
//
// A tenant's function is stored as "TENANT.NAME". '.' is allowed in neither
// a tenant's nor a function's name, so the split is unambiguous and one
// tenant can never spell another's function. Everything downstream of the
// API edge (Raft, workers, warm pools, logs, metrics, async events,
// schedules, quotas) keys on the stored name and needs no change; the edge
// adds the prefix to what a tenant sends and removes it from what it gets
// back. The root tenant ("") stores names as given: what existed before
// --auth was turned on is root's.
package tenant
