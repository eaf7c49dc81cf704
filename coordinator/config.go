package coordinator

import (
	"log/slog"
	"time"

	"github.com/gustfaas/gust/internal/codezip"
	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/tlsconf"
)

// Limits are the operator-configurable bounds of the API.
type Limits struct {
	// MaxSyncPayload bounds a synchronous invocation's event (6 MB).
	MaxSyncPayload int
	// MaxAsyncPayload bounds an asynchronous event (256 KB).
	MaxAsyncPayload int
	// AsyncResultRetention is how long finished async events are kept.
	AsyncResultRetention time.Duration
	// Code bounds uploaded archives (50 MB zipped, 250 MB unzipped).
	Code codezip.Limits
	// MaxEnvBytes bounds a function's environment (4 KB).
	MaxEnvBytes int
	// DefaultTimeout and MaxTimeout bound a function's timeout.
	DefaultTimeout, MaxTimeout time.Duration
	// DefaultMemoryMB, MinMemoryMB and MaxMemoryMB bound its memory.
	DefaultMemoryMB, MinMemoryMB, MaxMemoryMB int
	// UnreservedMin is how much of the account limit reservations must
	// leave to functions without one (or all of it, for smaller limits).
	UnreservedMin int
}

// DefaultLimits returns Lambda's limits.
func DefaultLimits() Limits {
	return Limits{
		MaxSyncPayload:       6 * 1024 * 1024,
		MaxAsyncPayload:      256 * 1024,
		AsyncResultRetention: time.Hour,
		Code:                 codezip.DefaultLimits(),
		MaxEnvBytes:          4 * 1024,
		DefaultTimeout:       3 * time.Second,
		MaxTimeout:           900 * time.Second,
		DefaultMemoryMB:      128,
		MinMemoryMB:          128,
		MaxMemoryMB:          10240,
		UnreservedMin:        100,
	}
}

// Config configures a Coordinator.
type Config struct {
	// Name identifies this coordinator.
	Name string
	// GRPCAddr and HTTPAddr are where the APIs listen.
	GRPCAddr, HTTPAddr string
	// Limits bound what users may ask for.
	Limits Limits
	// NoQuotas turns admission off; only to measure what quotas cost.
	NoQuotas bool
	// Auth requires an API token on every user-facing call (gRPC package
	// gust.v1 and HTTP), and gives each tenant its own functions.
	Auth bool
	// TLS, if set, serves gRPC and HTTP over TLS and dials other nodes
	// with mutual TLS; nil is plaintext.
	TLS *tlsconf.TLS
	// ClusterSecret, if set, is what every connection to another node's
	// internal port proves it holds (see internal/nodeauth).
	ClusterSecret nodeauth.Secret
	// Logger receives the coordinator's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of `gustd dev`.
func DefaultConfig() Config {
	return Config{
		Name:     "dev",
		GRPCAddr: "127.0.0.1:7070",
		HTTPAddr: "127.0.0.1:7080",
		Limits:   DefaultLimits(),
	}
}
