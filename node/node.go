// Package node assembles a gust coordinator or worker from its parts —
// Raft store, code store, gossip, router, gRPC servers — so that gustd and
// the in-process test cluster start nodes exactly the same way. It holds
// wiring only; behaviour lives in the parts.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/gustfaas/gust/coordinator"
	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/coordinator/fleet"
	"github.com/gustfaas/gust/internal/gossip"
	"github.com/gustfaas/gust/internal/grpcopt"
	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/tlsconf"
	"github.com/gustfaas/gust/raftstore"
	"github.com/gustfaas/gust/worker"
	"github.com/gustfaas/gust/worker/workerapi"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// peersFile, in a node's data dir, keeps the gossip addresses of the
// members it last saw, to rejoin them when it starts again.
const peersFile = "gossip-peers.json"

// CoordinatorConfig configures a coordinator node.
type CoordinatorConfig struct {
	Name, DataDir                string
	GRPCAddr, HTTPAddr, RaftAddr string
	GossipAddr                   string
	// Advertise, if set, is the host other nodes reach this one at, with
	// each listener's port; empty means each address as given, which then
	// may not be 0.0.0.0.
	Advertise string
	Join      []string
	Bootstrap bool
	// FastGossip and FastRaft shorten timings for loopback clusters and tests.
	FastGossip, FastRaft bool
	// UnreservedMin overrides coordinator.Limits.UnreservedMin when > 0.
	UnreservedMin int
	// TLS, if set, secures every link: gRPC and HTTP served over TLS,
	// peers, workers and Raft dialled with mutual TLS. Nil is plaintext.
	TLS *tlsconf.TLS
	// GossipKey, if set, encrypts gossip (see gossip.Config.SecretKey).
	GossipKey []byte
	// ClusterSecret, if set, is proven by every connection to a node
	// port (internal/nodeauth); every node of a cluster needs the same.
	ClusterSecret nodeauth.Secret
	// Auth requires API tokens (coordinator.Config.Auth); with Bootstrap,
	// the first start writes DataDir/root.token. It needs TLS or a
	// ClusterSecret, or the node-internal services would be open.
	Auth   bool
	Logger *slog.Logger
}

// ErrOpenInternal refuses --auth on a node whose internal services anyone
// could call.
var ErrOpenInternal = errors.New("--auth needs the node-internal services closed too: " +
	"start every node with the same --cluster-secret (make one with `gustd keygen`), or with --tls-ca, --tls-cert and --tls-key")

// Coordinator is a running coordinator node.
type Coordinator struct {
	*coordinator.Coordinator
	Store  *raftstore.Store
	Gossip *gossip.Node
	served chan error
	// nodeGRPC serves PeerService on the node port, beside Raft.
	nodeGRPC *grpc.Server
}

// StartCoordinator opens state, joins gossip and starts serving.
func StartCoordinator(cfg CoordinatorConfig) (_ *Coordinator, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.ClusterSecret.Check(); err != nil {
		return nil, err
	}
	if cfg.Auth && cfg.TLS == nil && len(cfg.ClusterSecret) == 0 {
		return nil, ErrOpenInternal
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	grpcAdv, err := advertised("grpc", cfg.GRPCAddr, cfg.Advertise)
	if err != nil {
		return nil, err
	}
	raftAdv, err := advertised("raft", cfg.RaftAddr, cfg.Advertise)
	if err != nil {
		return nil, err
	}
	// HTTP is for users, not nodes: it may listen everywhere unadvertised.
	httpAdv := cfg.HTTPAddr
	if _, port, err := net.SplitHostPort(cfg.HTTPAddr); err == nil && cfg.Advertise != "" {
		httpAdv = net.JoinHostPort(cfg.Advertise, port)
	}
	// The node port: Raft and PeerService, each connection past the node
	// handshake first.
	nln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("listen raft: %w", err)
	}
	mux := nodeauth.NewMux(nln, cfg.ClusterSecret, log, nodeauth.Raft, nodeauth.GRPC)
	go mux.Serve()
	defer func() {
		if err != nil {
			mux.Close()
		}
	}()
	rc := raftstore.Config{NodeID: cfg.Name, BindAddr: cfg.RaftAddr, Advertise: raftAdv, Bootstrap: cfg.Bootstrap,
		Listener: mux.Listener(nodeauth.Raft), Dial: nodeauth.Dialer(cfg.ClusterSecret, nodeauth.Raft),
		ListenTLS: cfg.TLS.NodeServerConfig(), DialTLS: cfg.TLS.ClientConfig()}
	ccfg := coordinator.DefaultConfig()
	ccfg.Name, ccfg.GRPCAddr, ccfg.HTTPAddr, ccfg.Logger = cfg.Name, cfg.GRPCAddr, cfg.HTTPAddr, log
	ccfg.TLS, ccfg.ClusterSecret = cfg.TLS, cfg.ClusterSecret
	ccfg.Auth = cfg.Auth
	if cfg.UnreservedMin > 0 {
		ccfg.Limits.UnreservedMin = cfg.UnreservedMin
	}
	store, code, err := openState(dataDir, rc, cfg.FastRaft, ccfg.Limits, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	g, err := gossip.Start(gossip.Config{
		Name: cfg.Name, BindAddr: cfg.GossipAddr, AdvertiseHost: cfg.Advertise, Join: cfg.Join, Fast: cfg.FastGossip, Logger: log, SecretKey: cfg.GossipKey,
		PeersFile: filepath.Join(dataDir, peersFile),
		Meta:      gossip.Meta{Role: coordinator.RoleCoordinator, GRPC: grpcAdv, Raft: raftAdv, HTTP: httpAdv},
	})
	if err != nil {
		return nil, err
	}
	router := fleet.NewRouter(log, cfg.TLS.ClientCreds(), cfg.ClusterSecret)
	c, err := coordinator.New(ccfg, coordinator.Deps{Store: store, Code: code, Router: router, Members: Members{g}})
	if err != nil {
		g.Shutdown()
		return nil, err
	}
	n := &Coordinator{Coordinator: c, Store: store, Gossip: g, served: make(chan error, 1), nodeGRPC: nodeServer(cfg.TLS)}
	c.RegisterNodeServices(n.nodeGRPC)
	go n.nodeGRPC.Serve(mux.Listener(nodeauth.GRPC))
	go func() { n.served <- c.Serve() }()
	// Rotations through this coordinator rewrite the root token file, if
	// it has one: from now, not once a leader is known.
	c.KeepRootTokenFile(dataDir)
	if cfg.Auth && cfg.Bootstrap {
		go ensureRootToken(c, store, dataDir, log)
	}
	log.Info("coordinator ready", "name", cfg.Name, "grpc", c.GRPCAddr(), "http", c.HTTPAddr(), "raft", cfg.RaftAddr, "gossip", g.LocalAddr(),
		"advertised", grpcAdv)
	return n, nil
}

// ensureRootToken makes the root token once the bootstrapping coordinator
// leads (at once, at a cluster's first start); a restart that finds another
// leader leaves it to the token stored already.
func ensureRootToken(c *coordinator.Coordinator, store *raftstore.Store, dataDir string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.WaitLeader(ctx); err != nil {
		log.Error("root token: no raft leader", "err", err)
		return
	}
	if err := c.EnsureRootToken(ctx, dataDir); err != nil {
		log.Error("root token", "err", err)
	}
}

// Failed delivers a serving error, if serving stops on its own.
func (n *Coordinator) Failed() <-chan error { return n.served }

// Stop drains in-flight calls (until ctx ends), leaves gossip, closes Raft.
func (n *Coordinator) Stop(ctx context.Context) {
	n.Shutdown(ctx)
	n.Gossip.Leave(2 * time.Second)
	n.Store.Close()
	n.nodeGRPC.Stop()
}

// Kill stops without draining or leaving, as a crash would (for tests).
func (n *Coordinator) Kill() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Shutdown(ctx)
	n.Gossip.Shutdown()
	n.Store.Close()
	n.nodeGRPC.Stop()
}

// nodeServer is the gRPC server of a node-internal port: with TLS, every
// call needs a verified node certificate, health and reflection included.
func nodeServer(t *tlsconf.TLS) *grpc.Server {
	gopts := t.ServerOptions(tls.RequireAndVerifyClientCert, func(string) bool { return true })
	gopts = append(gopts, grpcopt.ServerSizes()...)
	return grpc.NewServer(append(gopts, grpc.StatsHandler(otelgrpc.NewServerHandler()))...)
}

// openState opens a coordinator's Raft replica and code store in dataDir.
func openState(dataDir string, rc raftstore.Config, fast bool, limits coordinator.Limits, log *slog.Logger) (*raftstore.Store, *codestore.Store, error) {
	rc.DataDir, rc.Logger = filepath.Join(dataDir, "raft"), log
	if fast {
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 150*time.Millisecond, 150*time.Millisecond, 100*time.Millisecond
	}
	store, err := raftstore.Open(rc)
	if err != nil {
		return nil, nil, err
	}
	code, err := codestore.Open(filepath.Join(dataDir, "code"), limits.Code)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, code, nil
}

// Members adapts the gossip view to the coordinator's Membership.
type Members struct{ N *gossip.Node }

// Members lists gossip members.
func (m Members) Members() []coordinator.Member {
	var out []coordinator.Member
	for _, g := range m.N.Members() {
		out = append(out, coordinator.Member{Name: g.Name, Role: g.Meta.Role, Status: string(g.Status),
			GRPC: g.Meta.GRPC, Raft: g.Meta.Raft, GossipAddr: g.Addr, MemoryMB: g.Meta.MemoryMB})
	}
	return out
}

// WorkerConfig configures a worker node.
type WorkerConfig struct {
	Worker     worker.Config
	GRPCAddr   string
	GossipAddr string
	// Advertise is as CoordinatorConfig's.
	Advertise  string
	Join       []string
	FastGossip bool
	// TLS, if set, serves WorkerService to node certificates only and
	// fetches code with mutual TLS. Nil is plaintext.
	TLS *tlsconf.TLS
	// GossipKey, if set, encrypts gossip (see gossip.Config.SecretKey).
	GossipKey []byte
	// ClusterSecret, if set, is proven by every connection to the
	// worker's gRPC port and by the worker to coordinators' node ports.
	ClusterSecret nodeauth.Secret
	// HTTPAddr, if set, serves /metrics and /healthz.
	HTTPAddr string
}

// Worker is a running worker node.
type Worker struct {
	*worker.Worker
	Gossip *gossip.Node
	grpc   *grpc.Server
	http   *http.Server
	addr   string // as bound
	// advertised is the WorkerService address other nodes dial.
	advertised string
	served     chan error
}

// StartWorker reaps leftovers, starts serving WorkerService and joins gossip.
func StartWorker(cfg WorkerConfig) (_ *Worker, err error) {
	log := cfg.Worker.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	adv, err := advertised("grpc", cfg.GRPCAddr, cfg.Advertise)
	if err != nil {
		return nil, err
	}
	if err := cfg.ClusterSecret.Check(); err != nil {
		return nil, err
	}
	if cfg.TLS == nil && len(cfg.ClusterSecret) == 0 {
		log.Warn("WorkerService is open to anyone who can reach " + cfg.GRPCAddr + ": start every node with the same --cluster-secret, or with --tls-*")
	}
	n := &Worker{served: make(chan error, 1)}
	cfg.Worker.Code = worker.RemoteCode{Coordinators: n.coordinators, Creds: cfg.TLS.ClientCreds(), Secret: cfg.ClusterSecret}
	w, err := worker.New(cfg.Worker)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			w.Close(context.Background())
		}
	}()
	n.Worker = w
	// Only nodes talk to a worker: each connection proves the cluster
	// secret, and with TLS every call needs a verified node certificate.
	n.grpc = nodeServer(cfg.TLS)
	(&workerapi.Server{W: w}).Register(n.grpc)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(n.grpc, hs)
	reflection.Register(n.grpc)
	ln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen grpc: %w", err)
	}
	n.addr = ln.Addr().String()
	// The port as bound: the address may have asked for port 0.
	host, _, _ := net.SplitHostPort(adv)
	_, port, _ := net.SplitHostPort(n.addr)
	n.advertised = net.JoinHostPort(host, port)
	go func() { n.served <- n.grpc.Serve(nodeauth.Listen(ln, cfg.ClusterSecret, log, nodeauth.GRPC)) }()
	if cfg.HTTPAddr != "" {
		hln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			n.grpc.Stop()
			return nil, fmt.Errorf("listen http: %w", err)
		}
		if cfg.TLS != nil {
			// As the coordinators' HTTP: TLS, a client certificate optional.
			hln = tls.NewListener(hln, cfg.TLS.ServerConfig(tls.VerifyClientCertIfGiven))
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", w.MetricsHandler())
		mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("ok\n")) })
		// Only GETs of /metrics and /healthz: small headers, no bodies.
		n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
			ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		go n.http.Serve(hln)
	}
	n.Gossip, err = gossip.Start(gossip.Config{
		Name: cfg.Worker.Name, BindAddr: cfg.GossipAddr, AdvertiseHost: cfg.Advertise, Join: cfg.Join, Fast: cfg.FastGossip, Logger: log, SecretKey: cfg.GossipKey,
		PeersFile: filepath.Join(cfg.Worker.DataDir, peersFile),
		Meta:      gossip.Meta{Role: coordinator.RoleWorker, GRPC: n.advertised, MemoryMB: w.State().MemoryMB},
	})
	if err != nil {
		n.grpc.Stop()
		if n.http != nil {
			n.http.Close()
		}
		return nil, err
	}
	log.Info("worker ready", "name", cfg.Worker.Name, "grpc", n.addr, "advertised", n.advertised, "gossip", n.Gossip.LocalAddr())
	return n, nil
}

// coordinators lists alive coordinators' node ports, for code fetches.
func (n *Worker) coordinators() []string {
	if n.Gossip == nil {
		return nil
	}
	var out []string
	for _, m := range n.Gossip.Members() {
		if m.Meta.Role == coordinator.RoleCoordinator && m.Status == gossip.StatusAlive {
			out = append(out, m.Meta.Raft)
		}
	}
	return out
}

// GRPCAddr is the bound WorkerService address.
func (n *Worker) GRPCAddr() string { return n.addr }

// Failed delivers a serving error, if serving stops on its own.
func (n *Worker) Failed() <-chan error { return n.served }

// Stop drains: coordinators see it in the pool stream and place elsewhere,
// in-flight invocations finish (until ctx ends), then sandboxes go.
func (n *Worker) Stop(ctx context.Context) error {
	n.Drain(ctx)
	err := n.Close(ctx)
	n.Gossip.Leave(2 * time.Second)
	n.grpc.GracefulStop()
	if n.http != nil {
		n.http.Close()
	}
	return err
}
