// Command gustd is the gust daemon: `gustd dev` runs a coordinator and a
// worker in one process; `gustd coordinator` and `gustd worker` run the
// parts of a cluster.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/gustfaas/gust/internal/flagconf"
	"github.com/gustfaas/gust/internal/tracing"
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
		if os.Geteuid() == 0 {
			useSmallInit()
		}
	}
	err := rootCmd().Execute()
	flushTraces()
	if err != nil {
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
	pf := root.PersistentFlags()
	pf.String("otlp-endpoint", "", "send OpenTelemetry spans to this OTLP/gRPC collector, HOST:PORT (default: none; trace ids still reach functions)")
	pf.Bool("otlp-insecure", false, "send OTLP without TLS (a collector on loopback or a sidecar)")
	pf.String("pprof", "", "serve Go's profiler (net/http/pprof) on this address, for performance work (default: off)")
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
		if err := startTracing(c); err != nil {
			return err
		}
		if addr, _ := c.Flags().GetString("pprof"); addr != "" {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--pprof: %w", err)
			}
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
			go http.Serve(ln, mux)
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// flushTraces sends the spans still buffered; set by startTracing.
var flushTraces = func() {}

// startTracing installs the tracer provider --otlp-endpoint asks for.
func startTracing(c *cobra.Command) error {
	endpoint, _ := c.Flags().GetString("otlp-endpoint")
	insecure, _ := c.Flags().GetBool("otlp-insecure")
	name, _ := c.Flags().GetString("name")
	if name == "" {
		name = c.Name()
	}
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: endpoint, Insecure: insecure, Service: "gustd", Node: name})
	if err != nil {
		return err
	}
	flushTraces = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown(ctx)
	}
	return nil
}
