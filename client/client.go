// Package client is gust's Go SDK, and what the gust CLI uses: it talks
// gRPC to any coordinator, moves on to the next address when one is down,
// retries calls that are safe to repeat, and returns typed errors.
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/grpcopt"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Error is a platform error with a Lambda-style name
// (ResourceNotFoundException, TooManyRequestsException, …).
type Error = apierr.Error

// Error names, re-exported for callers.
const (
	ResourceNotFound      = apierr.ResourceNotFound
	InvalidParameterValue = apierr.InvalidParameterValue
	RequestTooLarge       = apierr.RequestTooLarge
	TooManyRequests       = apierr.TooManyRequests
	Service               = apierr.Service
	ResourceNotReady      = apierr.ResourceNotReady
)

// Client talks to a set of coordinators.
type Client struct {
	conns []*grpc.ClientConn
	mu    sync.Mutex
	cur   int // the address that last answered
}

// Option configures a Client.
type Option func(*options)

type options struct {
	tls *tls.Config
}

// WithTLS connects over TLS with cfg: RootCAs verifies the coordinators
// (their server name is the host of each address), Certificates is the
// client certificate, if any. Nil keeps plaintext.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// New returns a client for coordinators at addrs (host:port). Connections
// are made lazily. Without options it speaks plaintext.
func New(addrs []string, token string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("client: no coordinator address")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	c := &Client{}
	for _, a := range addrs {
		opts := []grpc.DialOption{
			grpc.WithTransportCredentials(creds),
			grpcopt.CallSizes(), // as the server's, so large payloads arrive and are refused by name
		}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
		}
		conn, err := grpc.NewClient(a, opts...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("client: %s: %w", a, err)
		}
		c.conns = append(c.conns, conn)
	}
	return c, nil
}

// Close closes every connection.
func (c *Client) Close() error {
	var errs []error
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

// call runs fn against each coordinator in turn, starting with the one that
// last answered, moving on only when a coordinator could not be reached (a
// transport failure, never a named error the server chose to return).
func (c *Client) call(ctx context.Context, fn func(conn *grpc.ClientConn) error) error {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var err error
	for i := range c.conns {
		idx := (start + i) % len(c.conns)
		err = fn(c.conns[idx])
		if !unreachable(err) || ctx.Err() != nil {
			if err == nil {
				c.mu.Lock()
				c.cur = idx
				c.mu.Unlock()
			}
			return convert(err)
		}
	}
	return convert(err)
}

// callRetryNotReady is call for idempotent writes: it also moves on when a
// coordinator answered ResourceNotReadyException (it has no leader to
// write through), since another may have one.
func (c *Client) callRetryNotReady(ctx context.Context, fn func(conn *grpc.ClientConn) error) error {
	var err error
	for range c.conns {
		err = c.call(ctx, fn)
		var e *Error
		if !errors.As(err, &e) || e.Name != ResourceNotReady || ctx.Err() != nil {
			return err
		}
		c.mu.Lock()
		c.cur = (c.cur + 1) % len(c.conns)
		c.mu.Unlock()
	}
	return err
}

// unreachable is a transport-level Unavailable: the server never answered.
func unreachable(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	return len(st.Details()) == 0
}

// convert turns a gRPC status into an *Error with a name.
func convert(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded {
		return err
	}
	return apierr.FromStatus(st)
}

// UploadCode streams a code zip and returns its digest.
func (c *Client) UploadCode(ctx context.Context, code io.ReadSeeker) (*gustv1.UploadCodeResponse, error) {
	var res *gustv1.UploadCodeResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) error {
		if _, err := code.Seek(0, io.SeekStart); err != nil {
			return err
		}
		stream, err := gustv1.NewFunctionServiceClient(conn).UploadCode(ctx)
		if err != nil {
			return err
		}
		buf := make([]byte, 256<<10)
		for {
			n, rerr := code.Read(buf)
			if n > 0 {
				if err := stream.Send(&gustv1.UploadCodeRequest{Chunk: buf[:n]}); err != nil {
					// The server refused mid-stream; its reason comes with CloseAndRecv.
					break
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read code: %w", rerr)
			}
		}
		res, err = stream.CloseAndRecv()
		return err
	})
	return res, err
}

// PutFunction creates or updates a function's $LATEST.
func (c *Client) PutFunction(ctx context.Context, cfg *gustv1.FunctionConfig, digest string) (*gustv1.Function, error) {
	var res *gustv1.PutFunctionResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).PutFunction(ctx, &gustv1.PutFunctionRequest{Config: cfg, CodeDigest: digest})
		return err
	})
	return res.GetFunction(), err
}

// Deploy uploads code then creates or updates the function.
func (c *Client) Deploy(ctx context.Context, cfg *gustv1.FunctionConfig, code io.ReadSeeker) (*gustv1.Function, error) {
	up, err := c.UploadCode(ctx, code)
	if err != nil {
		return nil, err
	}
	return c.PutFunction(ctx, cfg, up.GetDigest())
}

// GetFunction returns one function.
func (c *Client) GetFunction(ctx context.Context, name string) (*gustv1.Function, error) {
	var res *gustv1.GetFunctionResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).GetFunction(ctx, &gustv1.GetFunctionRequest{Name: name})
		return err
	})
	return res.GetFunction(), err
}

// ListFunctions returns every function.
func (c *Client) ListFunctions(ctx context.Context) ([]*gustv1.Function, error) {
	var res *gustv1.ListFunctionsResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).ListFunctions(ctx, &gustv1.ListFunctionsRequest{})
		return err
	})
	return res.GetFunctions(), err
}

// DeleteFunction removes a function.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	return c.call(ctx, func(conn *grpc.ClientConn) error {
		_, err := gustv1.NewFunctionServiceClient(conn).DeleteFunction(ctx, &gustv1.DeleteFunctionRequest{Name: name})
		return err
	})
}

// Invoke runs a function synchronously. A function error is a result with
// FunctionError set, not an error.
func (c *Client) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	var res *gustv1.InvokeResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewInvokeServiceClient(conn).Invoke(ctx, req)
		return err
	})
	return res, err
}

// bearer sends a token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// ListNodes lists the cluster's members.
func (c *Client) ListNodes(ctx context.Context) ([]*gustv1.Node, error) {
	var res *gustv1.ListNodesResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).ListNodes(ctx, &gustv1.ListNodesRequest{})
		return err
	})
	return res.GetNodes(), err
}

// DrainNode stops new invocations on a worker.
func (c *Client) DrainNode(ctx context.Context, name string) error {
	return c.call(ctx, func(conn *grpc.ClientConn) error {
		_, err := gustv1.NewClusterServiceClient(conn).DrainNode(ctx, &gustv1.DrainNodeRequest{Name: name})
		return err
	})
}

// ListSandboxes lists live sandboxes on one node, or all when node is "".
func (c *Client) ListSandboxes(ctx context.Context, node string) ([]*gustv1.Sandbox, error) {
	var res *gustv1.ListSandboxesResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).ListSandboxes(ctx, &gustv1.ListSandboxesRequest{Node: node})
		return err
	})
	return res.GetSandboxes(), err
}

// ListRaftPeers lists the Raft configuration.
func (c *Client) ListRaftPeers(ctx context.Context) ([]*gustv1.RaftPeer, error) {
	var res *gustv1.ListRaftPeersResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).ListRaftPeers(ctx, &gustv1.ListRaftPeersRequest{})
		return err
	})
	return res.GetPeers(), err
}

// RemoveRaftPeer removes a coordinator from the Raft configuration.
func (c *Client) RemoveRaftPeer(ctx context.Context, name string) error {
	return c.call(ctx, func(conn *grpc.ClientConn) error {
		_, err := gustv1.NewClusterServiceClient(conn).RemoveRaftPeer(ctx, &gustv1.RemoveRaftPeerRequest{Name: name})
		return err
	})
}

// GetQuota shows the account's concurrency limit and use.
func (c *Client) GetQuota(ctx context.Context) (*gustv1.Quota, error) {
	var res *gustv1.GetQuotaResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).GetQuota(ctx, &gustv1.GetQuotaRequest{})
		return err
	})
	return res.GetQuota(), err
}

// SetQuota sets a tenant's concurrency limit.
func (c *Client) SetQuota(ctx context.Context, tenant string, concurrency int64) (*gustv1.Quota, error) {
	var res *gustv1.SetQuotaResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).SetQuota(ctx, &gustv1.SetQuotaRequest{Tenant: tenant, Concurrency: concurrency})
		return err
	})
	return res.GetQuota(), err
}

// GetFunctionConcurrency returns a function with its concurrency settings and use.
func (c *Client) GetFunctionConcurrency(ctx context.Context, name string) (*gustv1.Function, *gustv1.Concurrency, error) {
	var res *gustv1.GetFunctionResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).GetFunction(ctx, &gustv1.GetFunctionRequest{Name: name})
		return err
	})
	return res.GetFunction(), res.GetConcurrency(), err
}

// PutFunctionConcurrency sets reserved and provisioned concurrency.
func (c *Client) PutFunctionConcurrency(ctx context.Context, name string, reserved, provisioned int64) (*gustv1.Concurrency, error) {
	var res *gustv1.PutFunctionConcurrencyResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).PutFunctionConcurrency(ctx,
			&gustv1.PutFunctionConcurrencyRequest{Name: name, Reserved: reserved, Provisioned: provisioned})
		return err
	})
	return res.GetConcurrency(), err
}

// PublishVersion freezes $LATEST as the next version.
func (c *Client) PublishVersion(ctx context.Context, name, description string) (*gustv1.Function, error) {
	var res *gustv1.PublishVersionResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).PublishVersion(ctx, &gustv1.PublishVersionRequest{Name: name, Description: description})
		return err
	})
	return res.GetFunction(), err
}

// PutAlias creates or updates an alias.
func (c *Client) PutAlias(ctx context.Context, a *gustv1.Alias) (*gustv1.Alias, error) {
	var res *gustv1.PutAliasResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).PutAlias(ctx, &gustv1.PutAliasRequest{Alias: a})
		return err
	})
	return res.GetAlias(), err
}

// ListAliases lists a function's aliases.
func (c *Client) ListAliases(ctx context.Context, name string) ([]*gustv1.Alias, error) {
	var res *gustv1.ListAliasesResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).ListAliases(ctx, &gustv1.ListAliasesRequest{Name: name})
		return err
	})
	return res.GetAliases(), err
}

// Logs streams what a function printed (with START, END and REPORT lines)
// from every worker to fn, a run of whole lines at a time; with follow it
// goes on until ctx ends. It fails over to another coordinator only before
// the first line arrived.
func (c *Client) Logs(ctx context.Context, name string, follow bool, fn func(worker string, data []byte) error) error {
	return c.StreamLogs(ctx, &gustv1.GetLogsRequest{Name: name, Follow: follow}, fn)
}

// ListVersions lists $LATEST and the published versions.
func (c *Client) ListVersions(ctx context.Context, name string) ([]*gustv1.Function, error) {
	var res *gustv1.ListVersionsResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).ListVersions(ctx, &gustv1.ListVersionsRequest{Name: name})
		return err
	})
	return res.GetVersions(), err
}

// InvokeAsync queues an event and returns its invocation id once it is durable.
//
// Without an idempotency key it makes one, so that it can safely send the
// event again to the next coordinator when one could not reach the Raft
// leader (cut off by a partition, or during an election): the cluster
// keeps one event per key.
func (c *Client) InvokeAsync(ctx context.Context, req *gustv1.InvokeAsyncRequest) (string, error) {
	if req.GetIdempotencyKey() == "" {
		req = proto.CloneOf(req)
		req.IdempotencyKey = "gust-client-" + rand.Text()
	}
	var res *gustv1.InvokeAsyncResponse
	err := c.callRetryNotReady(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewInvokeServiceClient(conn).InvokeAsync(ctx, req)
		return err
	})
	return res.GetInvocationId(), err
}

// GetInvocation returns an asynchronous invocation's status and result.
func (c *Client) GetInvocation(ctx context.Context, id string) (*gustv1.Invocation, error) {
	var res *gustv1.GetInvocationResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewInvokeServiceClient(conn).GetInvocation(ctx, &gustv1.GetInvocationRequest{Id: id})
		return err
	})
	return res.GetInvocation(), err
}

// AddSchedule creates or replaces a cron schedule.
func (c *Client) AddSchedule(ctx context.Context, s *gustv1.ScheduleInfo) (*gustv1.ScheduleInfo, error) {
	var res *gustv1.AddScheduleResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).AddSchedule(ctx, &gustv1.AddScheduleRequest{Schedule: s})
		return err
	})
	return res.GetSchedule(), err
}

// ListSchedules lists schedules.
func (c *Client) ListSchedules(ctx context.Context) ([]*gustv1.ScheduleInfo, error) {
	var res *gustv1.ListSchedulesResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).ListSchedules(ctx, &gustv1.ListSchedulesRequest{})
		return err
	})
	return res.GetSchedules(), err
}

// RemoveSchedule deletes a schedule.
func (c *Client) RemoveSchedule(ctx context.Context, name string) error {
	return c.call(ctx, func(conn *grpc.ClientConn) error {
		_, err := gustv1.NewClusterServiceClient(conn).RemoveSchedule(ctx, &gustv1.RemoveScheduleRequest{Name: name})
		return err
	})
}
