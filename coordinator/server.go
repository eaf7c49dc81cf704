package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gustfaas/gust/coordinator/admission"
	"github.com/gustfaas/gust/coordinator/api"
	"github.com/gustfaas/gust/coordinator/auth"
	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/coordinator/fleet"
	"github.com/gustfaas/gust/coordinator/lambdahttp"
	"github.com/gustfaas/gust/coordinator/leader"
	"github.com/gustfaas/gust/coordinator/replica"
	"github.com/gustfaas/gust/internal/grpcopt"
	"github.com/gustfaas/gust/raftstore"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Deps are the parts a coordinator is built from.
type Deps struct {
	// Store is this node's Raft replica.
	Store *raftstore.Store
	// Code is this node's code store.
	Code *codestore.Store
	// Router places invocations on workers.
	Router *fleet.Router
	// Members is the gossip view; nil when coordinator and worker share a
	// process (gustd dev).
	Members Membership
	// Metrics are served on /metrics with the coordinator's own: gustd dev
	// adds its worker's.
	Metrics []prometheus.Collector
}

// Coordinator is one running coordinator.
type Coordinator struct {
	cfg      Config
	log      *slog.Logger
	raft     *raftstore.Store
	code     *codestore.Store
	router   *fleet.Router
	members  Membership
	write    *replica.Writer
	clients  *replica.Clients
	quotas   *quotas
	admit    *admission.Admission
	dispatch *dispatcher
	iv       *invoker
	grpc     *grpc.Server
	http     *http.Server
	health   *health.Server
	gln      net.Listener
	hln      net.Listener
	metrics  *metrics
	tokens   *tokens
	// unproven remembers coordinators gossip announced that did not
	// answer Hello on their node port, and when: they are not made Raft
	// voters, nor asked again for a while (reconcile's goroutine only).
	unproven map[string]time.Time
	ctx      context.Context // ends at Shutdown; the background loops' lifetime
	stop     context.CancelFunc
}

// New binds the listeners; Serve starts answering.
func New(cfg Config, d Deps) (*Coordinator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, raft: d.Store, code: d.Code, router: d.Router, members: d.Members,
		clients: replica.NewClients(cfg.TLS.ClientCreds(), cfg.ClusterSecret)}
	ctx, stop := context.WithCancel(context.Background())
	c.ctx, c.stop = ctx, stop
	var peers replica.Peers
	if d.Members != nil {
		peers = gossipPeers{d.Members}
	}
	c.write = replica.NewWriter(ctx, cfg.Name, d.Store, peers, c.clients)
	c.tokens = &tokens{store: d.Store, write: c.write, now: time.Now, flag: cfg.Auth}
	c.quotas = &quotas{store: d.Store, write: c.write, limits: cfg.Limits}
	c.admit = admission.New(cfg.Name, c.quotas, cfg.Logger)
	fns := &functions{log: cfg.Logger, store: d.Store, write: c.write, code: d.Code, limits: cfg.Limits, now: time.Now,
		tenants: c.tokens.enabled, quotas: c.quotas, retire: d.Router.Retire}
	c.metrics = newMetrics(&clusterCollector{router: d.Router, raft: d.Store, members: d.Members}, d.Metrics...)
	iv := &invoker{fns: fns, worker: d.Router, limits: cfg.Limits, wake: make(chan struct{}, 1), metrics: c.metrics}
	if !cfg.NoQuotas {
		iv.admit = c.admit
	}
	iv.enqueue = newGroupCommit(ctx, eventCommitters, maxEventBatch, iv.commitEvents)
	c.iv = iv
	c.dispatch = &dispatcher{name: cfg.Name, base: ctx, iv: iv, log: cfg.Logger, running: map[string]bool{},
		slots: make(chan struct{}, maxDispatch), finish: newGroupCommit(ctx, eventCommitters, maxEventBatch, iv.commitFinishes)}

	gopts := append(grpcTLS(cfg.TLS), grpcopt.ServerSizes()...)
	// Spans for every call, and the caller's traceparent from metadata.
	gopts = append(gopts, grpc.StatsHandler(otelgrpc.NewServerHandler()))
	// Token checks and tenancy pass every call through while auth is off
	// (see tokens.enabled).
	checker := auth.New(c.tokens.lookup, c.tokens.enabled)
	gopts = append(gopts, grpc.ChainUnaryInterceptor(checker.Unary(), api.TenancyUnary),
		grpc.ChainStreamInterceptor(checker.Stream(), api.TenancyStream))
	gs := grpc.NewServer(gopts...)
	services := api.Services{Functions: fns, Invoker: iv, Workers: d.Router, Quotas: c.quotas, Schedules: iv, Tokens: c.tokens,
		Cluster: &cluster{name: cfg.Name, grpcAddr: c.GRPCAddr, router: d.Router, members: d.Members, raft: d.Store, write: c.write},
		Log:     cfg.Logger}
	api.RegisterGRPC(gs, services)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	c.grpc, c.health = gs, hs

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", c.readyz)
	// Metrics name every tenant's functions: with auth, root's only.
	mux.Handle("GET /metrics", auth.RequireRoot(c.metrics.handler(), lambdahttp.WriteError))
	handler := checker.HTTP(mux, publicHTTP, lambdahttp.WriteError)
	mux.Handle("/", lambdahttp.Handler(api.REST(services), lambdahttp.Options{
		MaxSyncPayload: int64(cfg.Limits.MaxSyncPayload), Logger: cfg.Logger}))
	c.http = &http.Server{
		Handler:           withTraceparent(handler),
		ReadHeaderTimeout: 10 * time.Second,
		// Headers are read before authentication: keep them small.
		MaxHeaderBytes: 64 << 10,
		// Bounds the bodies of requests that lambdahttp does not read, such
		// as those refused for want of a token. lambdahttp paces the bodies
		// it reads itself (a minimum rate, not a total time: payloads and
		// code uploads can be large and links slow).
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		// No WriteTimeout: it runs from the end of the headers, and an
		// invocation may take the function's whole timeout before its
		// answer is written.
	}

	var err error
	if c.gln, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		stop()
		return nil, fmt.Errorf("listen grpc: %w", err)
	}
	if c.hln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		stop()
		c.gln.Close()
		return nil, fmt.Errorf("listen http: %w", err)
	}
	if cfg.TLS != nil {
		// The HTTP front is user-facing, like gRPC's gust.v1: TLS, with a
		// client certificate optional.
		c.hln = tls.NewListener(c.hln, cfg.TLS.ServerConfig(tls.VerifyClientCertIfGiven))
	}
	return c, nil
}

// RegisterNodeServices registers the node-internal PeerService on gs: a
// cluster coordinator serves it on its node port, with Raft, and never on
// the user-facing port; gustd dev has no peers and serves it nowhere.
func (c *Coordinator) RegisterNodeServices(gs *grpc.Server) {
	replica.NewServer(c.cfg.Name, c.raft, c.code, c.quotas).Register(gs)
}

// GRPCAddr is the bound gRPC address.
func (c *Coordinator) GRPCAddr() string { return c.gln.Addr().String() }

// HTTPAddr is the bound HTTP address.
func (c *Coordinator) HTTPAddr() string { return c.hln.Addr().String() }

// Serve answers until Shutdown; it returns the first listener error.
func (c *Coordinator) Serve() error {
	ctx := c.ctx
	loops := []leader.Loop{
		{Name: "async dispatch", Run: c.dispatch.loop},
		{Name: "schedules", Run: c.iv.scheduleLoop},
		{Name: "provisioned concurrency", Run: c.provisionLoop},
	}
	if c.members != nil {
		go every(ctx, reconcileEvery, c.reconcileWorkers)
		loops = append(loops, leader.Loop{Name: "raft voters", Run: func(ctx context.Context) { every(ctx, reconcileEvery, c.reconcileVoters) }})
	}
	changes, unsubscribe := c.raft.LeadershipChanges()
	go func() {
		defer unsubscribe()
		leader.New(c.raft.IsLeader, changes, c.log, loops...).Run(ctx)
	}()
	go c.admit.Run(ctx, c.quotas)
	errc := make(chan error, 2)
	go func() { errc <- c.grpc.Serve(c.gln) }()
	go func() {
		if err := c.http.Serve(c.hln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	c.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	return <-errc
}

// publicHTTP are the requests that need no token with --auth: the health
// probes, which say nothing about any tenant.
func publicHTTP(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz")
}

func (c *Coordinator) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 100*time.Millisecond)
	defer cancel()
	if err := c.raft.WaitLeader(ctx); err != nil {
		http.Error(w, "no raft leader", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// Shutdown stops taking new calls and lets in-flight ones finish until ctx ends.
func (c *Coordinator) Shutdown(ctx context.Context) {
	c.health.Shutdown()
	if c.stop != nil {
		c.stop()
	}
	done := make(chan struct{})
	go func() { c.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		c.grpc.Stop()
	}
	c.http.Shutdown(ctx)
	c.router.Close()
	c.clients.Close()
}

// Name is the coordinator's --name.
func (c *Coordinator) Name() string { return c.cfg.Name }

// withTraceparent continues the caller's W3C trace: an invocation over
// HTTP runs in the trace its traceparent header names, and the function
// sees that trace id.
func withTraceparent(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" {
			r = r.WithContext(otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		h.ServeHTTP(w, r)
	})
}
