package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gustfaas/gust/coordinator"
	"github.com/gustfaas/gust/coordinator/fleet"
	"github.com/gustfaas/gust/internal/tlsconf"
	"github.com/gustfaas/gust/raftstore"
	"github.com/gustfaas/gust/worker"
	"github.com/prometheus/client_golang/prometheus"
)

// devName names gustd dev's coordinator, worker and Raft server.
const devName = "dev"

// DevConfig configures gustd dev: one coordinator and one worker in one
// process, with no gossip, no node port and no gRPC between them.
type DevConfig struct {
	DataDir            string
	GRPCAddr, HTTPAddr string
	// TLS, if set, serves the gRPC and HTTP fronts over TLS.
	TLS *tlsconf.TLS
	// Auth is CoordinatorConfig's; the first start writes DataDir/root.token.
	Auth bool
	// NoQuotas turns admission off (coordinator.Config.NoQuotas).
	NoQuotas bool
	// Worker configures the worker; its name, data dir, code source and
	// logger are set here.
	Worker worker.Config
	Logger *slog.Logger
}

// Dev is a running gustd dev.
type Dev struct {
	*coordinator.Coordinator
	Store  *raftstore.Store
	Worker *worker.Worker
	served chan error
}

// StartDev opens state, starts the worker and the coordinator, waits for
// the one-server Raft to lead and replay its log, and starts serving.
func StartDev(cfg DevConfig) (_ *Dev, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ccfg := coordinator.DefaultConfig()
	ccfg.Name, ccfg.GRPCAddr, ccfg.HTTPAddr, ccfg.Logger = devName, cfg.GRPCAddr, cfg.HTTPAddr, log
	ccfg.TLS, ccfg.Auth, ccfg.NoQuotas = cfg.TLS, cfg.Auth, cfg.NoQuotas
	// An in-process Raft transport: one server, nothing to dial.
	store, code, err := openState(dataDir, raftstore.Config{NodeID: devName, Bootstrap: true}, true, ccfg.Limits, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	// The worker reads code straight from the coordinator's store.
	wcfg := cfg.Worker
	wcfg.Name, wcfg.DataDir, wcfg.Logger, wcfg.Code = devName, filepath.Join(dataDir, "worker"), log, code
	w, err := worker.New(wcfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			w.Close(context.Background())
		}
	}()
	router := fleet.NewRouter(log, nil, nil)
	router.AddLocal(w)
	c, err := coordinator.New(ccfg, coordinator.Deps{Store: store, Code: code, Router: router, Metrics: []prometheus.Collector{w.Collector()}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.WaitLeader(ctx); err != nil {
		c.Shutdown(ctx)
		return nil, err
	}
	// Replay the log before serving reads, so a restart never lists less
	// than was acknowledged before it.
	if err := store.Barrier(); err != nil {
		c.Shutdown(ctx)
		return nil, err
	}
	if err := c.EnsureRootToken(ctx, dataDir); err != nil {
		c.Shutdown(ctx)
		return nil, err
	}
	d := &Dev{Coordinator: c, Store: store, Worker: w, served: make(chan error, 1)}
	go func() { d.served <- c.Serve() }()
	log.Info("gustd dev ready", "grpc", c.GRPCAddr(), "http", c.HTTPAddr(), "data_dir", dataDir)
	return d, nil
}

// Failed delivers a serving error, if serving stops on its own.
func (d *Dev) Failed() <-chan error { return d.served }

// Stop lets in-flight invocations finish (until ctx ends), then closes
// the worker's sandboxes and Raft.
func (d *Dev) Stop(ctx context.Context) error {
	d.Shutdown(ctx)
	err := d.Worker.Close(ctx)
	d.Store.Close()
	return err
}
