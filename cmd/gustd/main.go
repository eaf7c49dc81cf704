// Command gustd is the gust daemon: `gustd dev` runs a coordinator and a
// worker in one process; `gustd coordinator` and `gustd worker` run the
// parts of a cluster.
package main

import (
	"fmt"
	"os"

	"github.com/gustfaas/gust/internal/flagconf"
	"github.com/gustfaas/gust/sandbox"
	"github.com/spf13/cobra"
)

func main() {
	// libcontainer re-executes this binary as a sandbox's init.
	sandbox.MaybeInit()
	if len(os.Args) > 1 && (os.Args[1] == "dev" || os.Args[1] == "worker") {
		// Run from a sealed copy, so no sandbox has to clone the binary.
		if err := sandbox.SealSelf(); err != nil {
			fmt.Fprintln(os.Stderr, "gustd: warning:", err)
		}
	}
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gustd:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gustd",
		Short:         "The gust daemon: coordinators and workers of a self-hosted FaaS cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(devCmd(), coordinatorCmd(), workerCmd(), caCmd(), keygenCmd())
	return root
}

// withConfig adds --config and fills unset flags from env and file before run.
func withConfig(cmd *cobra.Command) {
	cmd.Flags().String("config", "", "read settings from this YAML or JSON file (keys are flag names)")
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		path, _ := c.Flags().GetString("config")
		if path == "" {
			path = os.Getenv(flagconf.EnvName("config"))
		}
		if err := flagconf.Apply(c.Flags(), path); err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}
