package workerapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gustfaas/gust/internal/grpcopt"
	"github.com/gustfaas/gust/internal/nodeauth"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Client is a Worker on another host, reached over gRPC.
type Client struct {
	name string
	conn *grpc.ClientConn
	c    nodev1.WorkerServiceClient
}

var _ Worker = (*Client)(nil)

// Dial connects to the worker name at addr, proving secret at each
// connection (internal/nodeauth); nil creds is plaintext. It does not
// wait for the worker to answer.
func Dial(name, addr string, creds credentials.TransportCredentials, secret nodeauth.Secret) (*Client, error) {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(nodeauth.Dialer(secret, nodeauth.GRPC)),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()), // carries the invocation's trace to the worker
		grpcopt.CallSizes(),
	)
	if err != nil {
		return nil, fmt.Errorf("dial worker %s at %s: %w", name, addr, err)
	}
	return &Client{name: name, conn: conn, c: nodev1.NewWorkerServiceClient(conn)}, nil
}

// Close drops the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Name is the worker's name.
func (c *Client) Name() string { return c.name }

// Invoke runs one invocation on the worker.
func (c *Client) Invoke(ctx context.Context, req InvokeRequest) (*InvokeResult, error) {
	stream, err := c.c.Invoke(ctx, requestToWire(req))
	if err != nil {
		return nil, fromStatus(err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("worker closed the stream without a result")
		}
		if err != nil {
			return nil, fromStatus(err)
		}
		switch ev := msg.GetEvent().(type) {
		case *nodev1.InvokeResponse_Started:
			if req.OnStart != nil {
				req.OnStart(ev.Started.GetSandbox(), ev.Started.GetColdStart())
			}
		case *nodev1.InvokeResponse_NoWarmSandbox:
			return nil, ErrNoWarm
		case *nodev1.InvokeResponse_Result:
			return resultFromWire(ev.Result), nil
		}
	}
}

// WatchPool follows the worker's pool state.
func (c *Client) WatchPool(ctx context.Context, fn func(PoolState) error) error {
	stream, err := c.c.WatchPool(ctx, &nodev1.WatchPoolRequest{})
	if err != nil {
		return fromStatus(err)
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return fromStatus(err)
		}
		if err := fn(stateFromWire(msg)); err != nil {
			return err
		}
	}
}

// Sandboxes lists the worker's live sandboxes.
func (c *Client) Sandboxes(ctx context.Context) ([]Sandbox, error) {
	res, err := c.c.ListSandboxes(ctx, &nodev1.ListSandboxesRequest{})
	if err != nil {
		return nil, fromStatus(err)
	}
	return sandboxesFromWire(res.GetSandboxes()), nil
}

// Drain stops new invocations on the worker.
func (c *Client) Drain(ctx context.Context) error {
	_, err := c.c.Drain(ctx, &nodev1.DrainRequest{})
	return fromStatus(err)
}

// Provision keeps initialised sandboxes of fn on the worker.
func (c *Client) Provision(ctx context.Context, fn FunctionSpec, count int, hold time.Duration) (existing, started int, err error) {
	res, err := c.c.Provision(ctx, &nodev1.ProvisionRequest{Function: specToWire(fn), Count: int32(count), HoldMs: hold.Milliseconds()})
	if err != nil {
		return 0, 0, fromStatus(err)
	}
	return int(res.GetExisting()), int(res.GetStarted()), nil
}

// ReadLogs streams a function's retained log on the worker. It ends
// without error when ctx does: a follower stops by cancelling.
func (c *Client) ReadLogs(ctx context.Context, function string, opts LogOptions, send func([]byte) error) error {
	stream, err := c.c.FunctionLogs(ctx, &nodev1.FunctionLogsRequest{Function: function, Follow: opts.Follow,
		SinceUnixMs: unixMs(opts.Since), Timestamps: opts.Timestamps})
	if err != nil {
		return fromStatus(err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) || (err != nil && ctx.Err() != nil) {
			return nil
		}
		if err != nil {
			return fromStatus(err)
		}
		if err := send(msg.GetData()); err != nil {
			return err
		}
	}
}

// Usage sums the invocations run on the worker over [since, until).
func (c *Client) Usage(ctx context.Context, function string, since, until time.Time) (UsageReport, error) {
	res, err := c.c.FunctionUsage(ctx, &nodev1.FunctionUsageRequest{Function: function, SinceUnixMs: unixMs(since), UntilUnixMs: unixMs(until)})
	if err != nil {
		return UsageReport{}, fromStatus(err)
	}
	return usageFromWire(res), nil
}

// Retire destroys a deleted function's sandboxes on the worker.
func (c *Client) Retire(ctx context.Context, function string) (int, error) {
	res, err := c.c.Retire(ctx, &nodev1.RetireRequest{Function: function})
	if err != nil {
		return 0, fromStatus(err)
	}
	return int(res.GetSandboxes()), nil
}
