package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gustfaas/gust/coordinator"
	"github.com/gustfaas/gust/internal/flagconf"
	"github.com/gustfaas/gust/node"
	"github.com/gustfaas/gust/worker"
	"github.com/spf13/cobra"
)

// nodeFlags are shared by coordinators and workers.
type nodeFlags struct {
	name, dataDir, grpcAddr, gossipAddr string
	advertise                           string
	join                                []string
	fastGossip, verbose                 bool
	drain                               time.Duration
	sec                                 securityFlags // --tls-*, --gossip-key
	auth                                bool          // coordinators only: --auth
}

func (n *nodeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&n.name, "name", "", "unique node name (required)")
	f.StringVar(&n.dataDir, "data-dir", "", "directory for this node's state (required, created)")
	f.StringVar(&n.grpcAddr, "grpc", "", "gRPC listen address (required)")
	f.StringVar(&n.gossipAddr, "gossip", "", "gossip listen address, TCP and UDP (required)")
	f.StringSliceVar(&n.join, "join", nil, "gossip addresses of members already running, ADDR[,ADDR…]")
	f.StringVar(&n.advertise, "advertise", "", "the host other nodes reach this one at, with each listener's port "+
		"(default: each address's own host, which then may not be 0.0.0.0)")
	f.BoolVar(&n.fastGossip, "gossip-fast", false, "short gossip timings, for loopback clusters and tests")
	f.DurationVar(&n.drain, "drain-timeout", 60*time.Second, "on SIGTERM, how long in-flight invocations may run on")
	f.BoolVarP(&n.verbose, "verbose", "v", false, "debug logging")
	n.sec.register(f)
}

// check reports missing required flags. Not cobra's MarkFlagRequired: it
// runs before flags are filled from GUST_<FLAG> and --config.
func (n *nodeFlags) check() error {
	for flag, v := range map[string]string{"name": n.name, "data-dir": n.dataDir, "grpc": n.grpcAddr, "gossip": n.gossipAddr} {
		if v == "" {
			return fmt.Errorf("--%s is required (or %s)", flag, flagconf.EnvName(flag))
		}
	}
	return nil
}

func (n *nodeFlags) logger() *slog.Logger {
	level := slog.LevelInfo
	if n.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", n.name)
}

func coordinatorCmd() *cobra.Command {
	var (
		n                  nodeFlags
		httpAddr, raftAddr string
		bootstrap          bool
		unreservedMin      int
	)
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run a coordinator: Raft-replicated state, the gRPC and HTTP front door, placement",
		Example: `  gustd coordinator --name c1 --data-dir /var/lib/gust/c1 --grpc 127.0.0.1:7070 --http 127.0.0.1:7080 \
    --raft 127.0.0.1:7090 --gossip 127.0.0.1:7946 --bootstrap
  gustd coordinator --name c2 --data-dir /var/lib/gust/c2 --grpc 127.0.0.1:7071 --http 127.0.0.1:7081 \
    --raft 127.0.0.1:7091 --gossip 127.0.0.1:7947 --join 127.0.0.1:7946`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := n.check(); err != nil {
				return err
			}
			if bootstrap == (len(n.join) > 0) {
				return fmt.Errorf("give exactly one of --bootstrap (first coordinator) or --join ADDR")
			}
			if httpAddr == "" || raftAddr == "" {
				return fmt.Errorf("--http and --raft are required")
			}
			return runCoordinator(n.logger(), n, httpAddr, raftAddr, bootstrap, unreservedMin)
		},
	}
	n.register(cmd)
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP listen address (required)")
	cmd.Flags().StringVar(&raftAddr, "raft", "", "Raft listen address (required)")
	cmd.Flags().BoolVar(&bootstrap, "bootstrap", false, "start a new cluster with this coordinator as its first voter")
	cmd.Flags().BoolVar(&n.auth, "auth", false, "require an API token on every call and keep tenants apart (give it to every coordinator); "+
		"the bootstrapping one writes the root token to DATA_DIR/root.token at first start")
	cmd.Flags().IntVar(&unreservedMin, "unreserved-min", coordinator.DefaultLimits().UnreservedMin,
		"concurrency that reservations must leave unreserved (or the whole limit, if smaller)")
	withConfig(cmd)
	return cmd
}

func runCoordinator(log *slog.Logger, n nodeFlags, httpAddr, raftAddr string, bootstrap bool, unreservedMin int) error {
	creds, gossipKey, err := n.sec.load()
	if err != nil {
		return err
	}
	c, err := node.StartCoordinator(node.CoordinatorConfig{
		Name: n.name, DataDir: n.dataDir, GRPCAddr: n.grpcAddr, HTTPAddr: httpAddr, RaftAddr: raftAddr,
		GossipAddr: n.gossipAddr, Advertise: n.advertise, Join: n.join, Bootstrap: bootstrap, FastGossip: n.fastGossip, Logger: log,
		TLS: creds, GossipKey: gossipKey, ClusterSecret: n.sec.secret(),
		UnreservedMin: unreservedMin, Auth: n.auth,
	})
	if err != nil {
		return err
	}
	waitForSignal(log, c.Failed())
	ctx, cancel := context.WithTimeout(context.Background(), n.drain)
	defer cancel()
	c.Stop(ctx)
	log.Info("stopped")
	return nil
}

func workerCmd() *cobra.Command {
	var (
		n                                 nodeFlags
		memoryMB, maxSandboxes, stemCells int
		keepAlive                         time.Duration
	)
	var logRetentionMB int
	var httpAddr string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker: sandboxes, warm pool and code cache",
		Example: `  gustd worker --name w1 --data-dir /var/lib/gust/w1 --grpc 127.0.0.1:7100 \
    --gossip 127.0.0.1:7950 --join 127.0.0.1:7946,127.0.0.1:7947 --memory-mb 8192`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := n.check(); err != nil {
				return err
			}
			if len(n.join) == 0 {
				return fmt.Errorf("--join ADDR[,ADDR…] is required: the gossip address of a coordinator")
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("gustd worker runs sandboxes and must run as root")
			}
			wcfg := worker.DefaultConfig()
			wcfg.MemoryMB, wcfg.MaxSandboxes, wcfg.KeepAlive, wcfg.StemCells = memoryMB, maxSandboxes, keepAlive, stemCells
			wcfg.LogRetentionMB = logRetentionMB
			return runWorker(n.logger(), n, wcfg, httpAddr)
		},
	}
	n.register(cmd)
	f := cmd.Flags()
	f.IntVar(&memoryMB, "memory-mb", 0, "memory for sandboxes, MB (0: 80% of the host)")
	f.IntVar(&maxSandboxes, "max-sandboxes", 0, "bound on live sandboxes (0: memory only)")
	f.DurationVar(&keepAlive, "keep-alive", worker.DefaultConfig().KeepAlive, "how long an idle sandbox stays warm")
	f.IntVar(&stemCells, "stem-cells", -1, stemCellsUsage)
	f.IntVar(&logRetentionMB, "log-retention-mb", worker.DefaultConfig().LogRetentionMB, "bound on each function's retained log on a worker, MB (gust logs)")
	f.StringVar(&httpAddr, "http", "", "serve /metrics and /healthz on this address (default: off)")
	withConfig(cmd)
	return cmd
}

func runWorker(log *slog.Logger, n nodeFlags, wcfg worker.Config, httpAddr string) error {
	wcfg.Name, wcfg.DataDir, wcfg.Logger = n.name, n.dataDir, log
	wcfg.StemCells = stemCellsConfig(wcfg.StemCells)
	creds, gossipKey, err := n.sec.load()
	if err != nil {
		return err
	}
	w, err := node.StartWorker(node.WorkerConfig{
		Worker: wcfg, GRPCAddr: n.grpcAddr, GossipAddr: n.gossipAddr, Advertise: n.advertise, Join: n.join, FastGossip: n.fastGossip,
		TLS: creds, GossipKey: gossipKey, ClusterSecret: n.sec.secret(), HTTPAddr: httpAddr,
	})
	if err != nil {
		return err
	}
	waitForSignal(log, w.Failed())
	ctx, cancel := context.WithTimeout(context.Background(), n.drain)
	defer cancel()
	err = w.Stop(ctx)
	log.Info("stopped")
	return err
}

// waitForSignal blocks until SIGTERM/SIGINT or a server error.
func waitForSignal(log *slog.Logger, serveErr <-chan error) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigs:
		log.Info("draining", "signal", sig.String())
	case err := <-serveErr:
		log.Error("server stopped", "err", err)
	}
}

const stemCellsUsage = "generic sandboxes kept created ahead for cold starts (-1: one per 128 MB of --memory-mb, 8 to 128; 0: none)"

// stemCellsConfig maps --stem-cells to worker.Config.StemCells, whose 0
// means the default and negative none.
func stemCellsConfig(flag int) int {
	switch {
	case flag < 0:
		return 0
	case flag == 0:
		return -1
	}
	return flag
}
