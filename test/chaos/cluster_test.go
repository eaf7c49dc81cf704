package chaos_test

// The suite's cluster: test/proccluster's three coordinators and two
// workers, with the chaos suite's flags and log keeping.

import (
	"os"
	"testing"

	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/test/proccluster"
)

// bins holds gustd, the CLI and the e2e probe function (probe/bootstrap).
var bins proccluster.Binaries

type (
	node    = proccluster.Node
	cluster = proccluster.Cluster
	span    = proccluster.Span
)

func TestMain(m *testing.M) {
	if (mode() == "" && os.Getenv("GUST_SOAK") == "") || os.Geteuid() != 0 {
		os.Exit(m.Run()) // TestChaos skips (or fails under CI=true); nothing to build
	}
	os.Exit(proccluster.Main(m, &bins, proccluster.Function{Out: "probe/bootstrap", Pkg: "./test/e2e/testdata/probe"}))
}

// workerArgs are extra flags for every worker a test starts.
var workerArgs []string

// startCluster runs 3 coordinators and 2 workers; prepare may change a
// coordinator before it starts (index, node). Coordinators log with -v
// under GUST_CHAOS_VERBOSE; workers serve /metrics (the soak test reads
// it); a failed test's whole logs go to GUST_CHAOS_LOGDIR.
func startCluster(t *testing.T, prepare func(int, *node)) *cluster {
	return bins.StartCluster(t, proccluster.Options{
		Prepare: func(i int, n *node) {
			if n.Role == "worker" {
				n.HTTP = testutil.FreeAddr(t)
				n.Args = append(n.Args, "--http", n.HTTP)
				n.Args = append(n.Args, workerArgs...)
				return
			}
			if os.Getenv("GUST_CHAOS_VERBOSE") != "" {
				n.Args = append(n.Args, "-v")
			}
			if prepare != nil {
				prepare(i, n)
			}
		},
		LogTail: 3000,
		LogDir:  os.Getenv("GUST_CHAOS_LOGDIR"),
	})
}

// probeDir is the probe function's code, for gust fn deploy --code.
func probeDir() string { return bins.Path("probe") }
