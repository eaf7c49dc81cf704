package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gustfaas/gust/coordinator"
	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/internal/flagconf"
	"github.com/gustfaas/gust/internal/gossip"
	"github.com/gustfaas/gust/raftstore"
	"github.com/gustfaas/gust/worker"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// nodeFlags are shared by coordinators and workers.
type nodeFlags struct {
	name, dataDir, grpcAddr, gossipAddr string
	join                                []string
	fastGossip, verbose                 bool
	drain                               time.Duration
}

func (n *nodeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&n.name, "name", "", "unique node name (required)")
	f.StringVar(&n.dataDir, "data-dir", "", "directory for this node's state (required, created)")
	f.StringVar(&n.grpcAddr, "grpc", "", "gRPC listen address (required)")
	f.StringVar(&n.gossipAddr, "gossip", "", "gossip listen address, TCP and UDP (required)")
	f.StringSliceVar(&n.join, "join", nil, "gossip addresses of members already running, ADDR[,ADDR…]")
	f.BoolVar(&n.fastGossip, "gossip-fast", false, "short gossip timings, for loopback clusters and tests")
	f.DurationVar(&n.drain, "drain-timeout", 60*time.Second, "on SIGTERM, how long in-flight invocations may run on")
	f.BoolVarP(&n.verbose, "verbose", "v", false, "debug logging")
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

// members adapts the gossip view to the coordinator's Membership.
type members struct{ n *gossip.Node }

func (m members) Members() []coordinator.Member {
	var out []coordinator.Member
	for _, g := range m.n.Members() {
		out = append(out, coordinator.Member{Name: g.Name, Role: g.Meta.Role, Status: string(g.Status),
			GRPC: g.Meta.GRPC, Raft: g.Meta.Raft, GossipAddr: g.Addr, MemoryMB: g.Meta.MemoryMB})
	}
	return out
}

func coordinatorCmd() *cobra.Command {
	var (
		n                  nodeFlags
		httpAddr, raftAddr string
		bootstrap          bool
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
			return runCoordinator(n.logger(), n, httpAddr, raftAddr, bootstrap)
		},
	}
	n.register(cmd)
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP listen address (required)")
	cmd.Flags().StringVar(&raftAddr, "raft", "", "Raft listen address (required)")
	cmd.Flags().BoolVar(&bootstrap, "bootstrap", false, "start a new cluster with this coordinator as its first voter")
	withConfig(cmd)
	return cmd
}

func runCoordinator(log *slog.Logger, n nodeFlags, httpAddr, raftAddr string, bootstrap bool) error {
	dataDir, err := filepath.Abs(n.dataDir)
	if err != nil {
		return err
	}
	store, err := raftstore.Open(raftstore.Config{
		NodeID: n.name, DataDir: filepath.Join(dataDir, "raft"), BindAddr: raftAddr, Bootstrap: bootstrap, Logger: log,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	ccfg := coordinator.DefaultConfig()
	ccfg.Name, ccfg.GRPCAddr, ccfg.HTTPAddr, ccfg.Logger = n.name, n.grpcAddr, httpAddr, log
	code, err := codestore.Open(filepath.Join(dataDir, "code"), ccfg.Limits.Code)
	if err != nil {
		return err
	}
	g, err := gossip.Start(gossip.Config{
		Name: n.name, BindAddr: n.gossipAddr, Join: n.join, Fast: n.fastGossip, Logger: log,
		Meta: gossip.Meta{Role: coordinator.RoleCoordinator, GRPC: n.grpcAddr, Raft: raftAddr, HTTP: httpAddr},
	})
	if err != nil {
		return err
	}
	router := coordinator.NewRouter(log)
	coord, err := coordinator.New(ccfg, coordinator.Deps{Store: store, Code: code, Router: router, Members: members{g}})
	if err != nil {
		g.Shutdown()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- coord.Serve() }()
	log.Info("coordinator ready", "grpc", coord.GRPCAddr(), "http", coord.HTTPAddr(), "raft", raftAddr, "gossip", g.LocalAddr())
	waitForSignal(log, serveErr)
	ctx, cancel := context.WithTimeout(context.Background(), n.drain)
	defer cancel()
	coord.Shutdown(ctx)
	g.Leave(2 * time.Second)
	log.Info("stopped")
	return nil
}

func workerCmd() *cobra.Command {
	var (
		n                      nodeFlags
		memoryMB, maxSandboxes int
		keepAlive              time.Duration
	)
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
			return runWorker(n.logger(), n, memoryMB, maxSandboxes, keepAlive)
		},
	}
	n.register(cmd)
	f := cmd.Flags()
	f.IntVar(&memoryMB, "memory-mb", 0, "memory for sandboxes, MB (0: 80% of the host)")
	f.IntVar(&maxSandboxes, "max-sandboxes", 0, "bound on live sandboxes (0: memory only)")
	f.DurationVar(&keepAlive, "keep-alive", worker.DefaultConfig().KeepAlive, "how long an idle sandbox stays warm")
	withConfig(cmd)
	return cmd
}

func runWorker(log *slog.Logger, n nodeFlags, memoryMB, maxSandboxes int, keepAlive time.Duration) error {
	dataDir, err := filepath.Abs(n.dataDir)
	if err != nil {
		return err
	}
	var g *gossip.Node
	wcfg := worker.DefaultConfig()
	wcfg.Name, wcfg.DataDir, wcfg.Logger = n.name, dataDir, log
	wcfg.MemoryMB, wcfg.MaxSandboxes, wcfg.KeepAlive = memoryMB, maxSandboxes, keepAlive
	wcfg.Code = worker.RemoteCode{Coordinators: func() []string {
		var out []string
		for _, m := range g.Members() {
			if m.Meta.Role == coordinator.RoleCoordinator && m.Status == gossip.StatusAlive {
				out = append(out, m.Meta.GRPC)
			}
		}
		return out
	}}
	w, err := worker.New(wcfg)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	(&worker.GRPCServer{W: w}).Register(gs)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	ln, err := net.Listen("tcp", n.grpcAddr)
	if err != nil {
		w.Close(context.Background())
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- gs.Serve(ln) }()
	g, err = gossip.Start(gossip.Config{
		Name: n.name, BindAddr: n.gossipAddr, Join: n.join, Fast: n.fastGossip, Logger: log,
		Meta: gossip.Meta{Role: coordinator.RoleWorker, GRPC: ln.Addr().String(), MemoryMB: int64(w.State().MemoryMB)},
	})
	if err != nil {
		gs.Stop()
		w.Close(context.Background())
		return err
	}
	log.Info("worker ready", "grpc", ln.Addr().String(), "gossip", g.LocalAddr(), "join", strings.Join(n.join, ","))
	waitForSignal(log, serveErr)
	// Drain: coordinators see it in the pool stream and place elsewhere;
	// in-flight invocations finish; then the sandboxes go.
	w.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), n.drain)
	defer cancel()
	err = w.Close(ctx)
	g.Leave(2 * time.Second)
	gs.GracefulStop()
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
