// Package api is a coordinator's user-facing edge: the gust.v1 gRPC
// services, the glue between the Lambda REST front (lambdahttp) and the
// services behind it, and tenancy (with --auth, a tenant's names are
// qualified on the way in and stripped on the way out). Each adapter holds
// only the services it serves, as the small interfaces below; errors are
// named for users here, once (toAPIError, toStatus).
package api

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/coordinator/lambdahttp"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/worker/workerapi"
	"google.golang.org/grpc"
)

// Functions are functions, versions, aliases and their concurrency, by
// stored name.
type Functions interface {
	Upload(ctx context.Context, r io.Reader) (codestore.Info, error)
	Put(ctx context.Context, cfg *gustv1.FunctionConfig, digest string) (*gustv1.Function, error)
	Get(ctx context.Context, name, qualifier string) (*gustv1.Function, error)
	Exists(name string) bool
	List() []*gustv1.Function
	Delete(ctx context.Context, name, qualifier string) error
	Publish(ctx context.Context, name, description string) (*gustv1.Function, error)
	Versions(name string) []*gustv1.Function
	PutAlias(ctx context.Context, a *gustv1.Alias, createOnly, updateOnly bool) (*gustv1.Alias, error)
	Alias(ctx context.Context, name, alias string) (*gustv1.Alias, error)
	Aliases(name string) []*gustv1.Alias
	Concurrency(name string) *gustv1.Concurrency
	SetConcurrency(ctx context.Context, name string, reserved, provisioned int64) (*gustv1.Concurrency, error)
}

// Invoker runs invocations, synchronous and queued.
type Invoker interface {
	Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error)
	InvokeAsync(ctx context.Context, req *gustv1.InvokeAsyncRequest) (string, error)
	GetInvocation(ctx context.Context, id string) (*gustv1.Invocation, error)
}

// Workers answers for every worker at once: retained logs and usage.
type Workers interface {
	Logs(ctx context.Context, function string, opts workerapi.LogOptions, send func(worker string, data []byte) error) error
	Usage(ctx context.Context, function string, since, until time.Time) (sum []workerapi.Usage, answered int, missing []string)
}

// Cluster is the cluster as an operator sees it.
type Cluster interface {
	Nodes() []*gustv1.Node
	DrainNode(ctx context.Context, name string) error
	Sandboxes(ctx context.Context, node string) ([]*gustv1.Sandbox, error)
	RaftPeers() ([]*gustv1.RaftPeer, error)
	RemoveRaftPeer(ctx context.Context, name string) error
}

// Quotas are the account's and tenants' concurrency limits.
type Quotas interface {
	Get(tenant string) *gustv1.Quota
	Set(ctx context.Context, tenant string, limit int64) (*gustv1.Quota, error)
	SetCaps(ctx context.Context, tenant string, maxReserved, maxProvisioned *int64) (*gustv1.Quota, error)
}

// Schedules invoke functions on cron schedules.
type Schedules interface {
	AddSchedule(ctx context.Context, s *gustv1.ScheduleInfo) (*gustv1.ScheduleInfo, error)
	ListSchedules() []*gustv1.ScheduleInfo
	RemoveSchedule(ctx context.Context, name string) error
}

// Tokens are the API tokens (with --auth).
type Tokens interface {
	RequireAuth() error
	Create(ctx context.Context, tenant string, root bool) (string, error)
	List(ctx context.Context, tenant string) ([]*raftv1.Token, error)
	RotateRoot(ctx context.Context) (tok, file string, err error)
	Revoke(ctx context.Context, idOrToken string) (*raftv1.Token, error)
}

// Services are what the adapters serve.
type Services struct {
	Functions Functions
	Invoker   Invoker
	Workers   Workers
	Cluster   Cluster
	Quotas    Quotas
	Schedules Schedules
	Tokens    Tokens
	Log       *slog.Logger
}

// RegisterGRPC registers the gust.v1 services on gs. Its interceptors must
// include TenancyUnary and TenancyStream, after authentication.
func RegisterGRPC(gs *grpc.Server, s Services) {
	gustv1.RegisterFunctionServiceServer(gs, &functionServer{fns: s.Functions, workers: s.Workers, log: s.Log})
	gustv1.RegisterInvokeServiceServer(gs, &invokeServer{iv: s.Invoker, log: s.Log})
	gustv1.RegisterClusterServiceServer(gs, &clusterServer{cluster: s.Cluster, quotas: s.Quotas, schedules: s.Schedules, log: s.Log})
	gustv1.RegisterTokenServiceServer(gs, &tokenServer{tokens: s.Tokens, log: s.Log})
}

// REST is what the Lambda REST front calls: invocations and function
// management, behind tenancy.
func REST(s Services) lambdahttp.Invoker {
	return tenantREST{rest{iv: s.Invoker, fns: s.Functions}}
}
