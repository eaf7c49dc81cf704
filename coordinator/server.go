package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gustfaas/gust/coordinator/codestore"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// maxGRPCMessage lets a payload over the 6 MB limit arrive, so the caller
// gets RequestTooLargeException rather than a transport error.
const maxGRPCMessage = 16 << 20

// Coordinator is one running coordinator.
type Coordinator struct {
	cfg    Config
	log    *slog.Logger
	raft   *raftstore.Store
	code   *codestore.Store
	grpc   *grpc.Server
	http   *http.Server
	health *health.Server
	gln    net.Listener
	hln    net.Listener
}

// New binds the listeners over the node's Raft replica and code store;
// Serve starts answering.
func New(cfg Config, store *raftstore.Store, code *codestore.Store, w Worker) (*Coordinator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	fns := &functions{store: store, code: code, limits: cfg.Limits, now: time.Now}
	iv := &invoker{fns: fns, worker: w, limits: cfg.Limits}

	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxGRPCMessage), grpc.MaxSendMsgSize(maxGRPCMessage))
	gustv1.RegisterFunctionServiceServer(gs, &functionServer{fns: fns, log: cfg.Logger})
	gustv1.RegisterInvokeServiceServer(gs, &invokeServer{iv: iv, log: cfg.Logger})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	c := &Coordinator{cfg: cfg, log: cfg.Logger, raft: store, code: code, grpc: gs, health: hs}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", c.readyz)
	c.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	if c.gln, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("listen grpc: %w", err)
	}
	if c.hln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		c.gln.Close()
		return nil, fmt.Errorf("listen http: %w", err)
	}
	return c, nil
}

// GRPCAddr is the bound gRPC address.
func (c *Coordinator) GRPCAddr() string { return c.gln.Addr().String() }

// HTTPAddr is the bound HTTP address.
func (c *Coordinator) HTTPAddr() string { return c.hln.Addr().String() }

// Serve answers until Close; it returns the first listener error.
func (c *Coordinator) Serve() error {
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
	done := make(chan struct{})
	go func() { c.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		c.grpc.Stop()
	}
	c.http.Shutdown(ctx)
}
