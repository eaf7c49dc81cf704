// Package loopback brings up the loopback interface of a fresh network
// namespace, which the kernel creates down. The sandbox (every sandbox's
// own namespace) and internal/testutil (a test's) both need it; it is a
// leaf so that neither pulls the other's dependencies in.
package loopback
