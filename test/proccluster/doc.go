// Package proccluster runs gust clusters of real gustd processes on
// loopback for the tests under test/ (test/cluster, test/chaos): it builds
// the binaries, starts coordinators and workers on free ports with
// temporary data dirs, kills, stops and restarts them, drives the gust CLI,
// and waits for the cluster to be whole. It is for tests only: its helpers
// take a testing.TB and fail the test on setup errors. A cluster inside one
// test process is test/testcluster's; this package is for tests that
// need separate processes (kill -9, SIGSTOP, restarts with the same data
// dir).
package proccluster
