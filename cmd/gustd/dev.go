package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/gustfaas/gust/coordinator"
	"github.com/gustfaas/gust/node"
	"github.com/gustfaas/gust/worker"
	"github.com/spf13/cobra"
)

func devCmd() *cobra.Command {
	var (
		dataDir, grpcAddr, httpAddr       string
		keepAlive, drain                  time.Duration
		memoryMB, maxSandboxes, stemCells int
		verbose, noQuotas, auth           bool
	)
	sec := securityFlags{noGossip: true}
	var logRetentionMB int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a coordinator and a worker in one process (the embedded default)",
		Example: `  # as root, on a fresh machine:
  sudo gustd dev
  gust fn deploy hello --code ./bootstrap-folder
  gust invoke hello --payload '{"name":"gust"}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return runDev(log, devOptions{
				dataDir: dataDir, grpcAddr: grpcAddr, httpAddr: httpAddr, keepAlive: keepAlive, sec: sec,
				drain: drain, memoryMB: memoryMB, maxSandboxes: maxSandboxes, stemCells: stemCells, logRetentionMB: logRetentionMB, noQuotas: noQuotas, auth: auth,
			})
		},
	}
	def := coordinator.DefaultConfig()
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "./.gust", "directory for Raft state, code and sandboxes (created)")
	f.StringVar(&grpcAddr, "grpc", def.GRPCAddr, "gRPC listen address")
	f.StringVar(&httpAddr, "http", def.HTTPAddr, "HTTP listen address")
	f.DurationVar(&keepAlive, "keep-alive", worker.DefaultConfig().KeepAlive, "how long an idle sandbox stays warm")
	f.DurationVar(&drain, "drain-timeout", 60*time.Second, "on SIGTERM, how long in-flight invocations may run on")
	f.IntVar(&memoryMB, "memory-mb", 0, "memory for sandboxes, MB (0: 80% of the host)")
	f.IntVar(&maxSandboxes, "max-sandboxes", 0, "bound on live sandboxes (0: memory only)")
	f.IntVar(&stemCells, "stem-cells", -1, stemCellsUsage)
	f.IntVar(&logRetentionMB, "log-retention-mb", worker.DefaultConfig().LogRetentionMB, "bound on each function's retained log on a worker, MB (gust logs)")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	sec.register(f)
	f.BoolVar(&noQuotas, "no-quotas", false, "do not enforce concurrency quotas (only to measure their cost)")
	_ = f.MarkHidden("no-quotas")
	f.BoolVar(&auth, "auth", false, "require an API token on every call and keep tenants apart; the first start writes the root token to DATA_DIR/root.token")
	withConfig(cmd)
	return cmd
}

type devOptions struct {
	dataDir, grpcAddr, httpAddr string
	sec                         securityFlags // --tls-*: the gRPC and HTTP fronts over TLS
	keepAlive, drain            time.Duration
	memoryMB, maxSandboxes      int
	stemCells                   int
	noQuotas                    bool
	auth                        bool
	logRetentionMB              int
}

func runDev(log *slog.Logger, o devOptions) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("gustd dev runs sandboxes and must run as root")
	}
	creds, _, err := o.sec.load()
	if err != nil {
		return err
	}
	wcfg := worker.DefaultConfig()
	wcfg.KeepAlive, wcfg.MemoryMB, wcfg.MaxSandboxes = o.keepAlive, o.memoryMB, o.maxSandboxes
	wcfg.LogRetentionMB = o.logRetentionMB
	wcfg.StemCells = stemCellsConfig(o.stemCells)
	d, err := node.StartDev(node.DevConfig{
		DataDir: o.dataDir, GRPCAddr: o.grpcAddr, HTTPAddr: o.httpAddr, TLS: creds, Auth: o.auth, NoQuotas: o.noQuotas,
		Worker: wcfg, Logger: log,
	})
	if err != nil {
		return err
	}
	waitForSignal(log, d.Failed())
	ctx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		log.Warn("worker shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}
