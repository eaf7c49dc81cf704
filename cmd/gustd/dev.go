package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gustfaas/gust/coordinator"
	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/raftstore"
	"github.com/gustfaas/gust/worker"
	"github.com/prometheus/client_golang/prometheus"
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
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	store, err := raftstore.Open(raftstore.Config{
		NodeID: "dev", DataDir: filepath.Join(dataDir, "raft"), Bootstrap: true,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer store.Close()

	ccfg := coordinator.DefaultConfig()
	if ccfg.TLS, _, err = o.sec.load(); err != nil {
		return err
	}
	ccfg.GRPCAddr, ccfg.HTTPAddr, ccfg.Logger, ccfg.NoQuotas, ccfg.Auth = o.grpcAddr, o.httpAddr, log, o.noQuotas, o.auth
	// In one process the worker reads code straight from the coordinator's store.
	code, err := codestore.Open(filepath.Join(dataDir, "code"), ccfg.Limits.Code)
	if err != nil {
		return err
	}
	wcfg := worker.DefaultConfig()
	wcfg.Name, wcfg.DataDir, wcfg.Logger, wcfg.Code = "dev", filepath.Join(dataDir, "worker"), log, code
	wcfg.KeepAlive, wcfg.MemoryMB, wcfg.MaxSandboxes, wcfg.StemCells = o.keepAlive, o.memoryMB, o.maxSandboxes, o.stemCells
	wcfg.LogRetentionMB = o.logRetentionMB
	wcfg.StemCells = stemCellsConfig(wcfg.StemCells)
	w, err := worker.New(wcfg)
	if err != nil {
		return err
	}
	router := coordinator.NewRouter(log)
	router.AddLocal(w)
	coord, err := coordinator.New(ccfg, coordinator.Deps{Store: store, Code: code, Router: router, Metrics: []prometheus.Collector{w.Collector()}})
	if err != nil {
		w.Close(context.Background())
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = store.WaitLeader(ctx)
	cancel()
	if err != nil {
		return err
	}
	// Replay the log before serving reads, so a restart never lists less
	// than was acknowledged before it.
	if err := store.Barrier(); err != nil {
		return err
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	err = coord.EnsureRootToken(ctx, dataDir)
	cancel()
	if err != nil {
		return err
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	serveErr := make(chan error, 1)
	go func() { serveErr <- coord.Serve() }()
	log.Info("gustd dev ready", "grpc", coord.GRPCAddr(), "http", coord.HTTPAddr(), "data_dir", dataDir)

	select {
	case sig := <-sigs:
		log.Info("draining", "signal", sig.String())
	case err := <-serveErr:
		log.Error("server stopped", "err", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	coord.Shutdown(ctx)
	if err := w.Close(ctx); err != nil {
		log.Warn("worker shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}
