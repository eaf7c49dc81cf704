package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gustfaas/gust/internal/nodeauth"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/worker"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// errNoWarm: the worker had no idle sandbox left for a warm-only request.
var errNoWarm = errors.New("no idle warm sandbox left")

// errRefused: the worker refused before starting (draining, full, no code);
// the invocation may be placed elsewhere.
var errRefused = errors.New("worker refused the invocation")

// workerConn is how the router reaches one worker, remote or in-process.
type workerConn interface {
	// invoke runs one invocation; started is called when the worker has
	// taken it, after which it must not be placed again.
	invoke(ctx context.Context, req *nodev1.InvokeRequest, started func()) (*worker.InvokeResult, error)
	// watch calls fn with each pool state until ctx ends or the stream breaks.
	watch(ctx context.Context, fn func(*nodev1.WatchPoolResponse)) error
	listSandboxes(ctx context.Context) ([]*nodev1.Sandbox, error)
	drain(ctx context.Context) error
	// provision makes sandboxes ahead and says how many it started.
	provision(ctx context.Context, req *nodev1.ProvisionRequest) (started int, err error)
	// logs streams a function's retained log on the worker, in whole lines.
	logs(ctx context.Context, req *nodev1.FunctionLogsRequest, fn func([]byte) error) error
	// usage sums the worker's per-function usage over a window.
	usage(ctx context.Context, req *nodev1.FunctionUsageRequest) (*nodev1.FunctionUsageResponse, error)
	// retire destroys a deleted function's sandboxes.
	retire(ctx context.Context, function string) error
	close() error
}

// grpcWorker is a worker on another host.
type grpcWorker struct {
	conn *grpc.ClientConn
	c    nodev1.WorkerServiceClient
}

func dialWorker(addr string, creds credentials.TransportCredentials, secret nodeauth.Secret) (*grpcWorker, error) {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(nodeauth.Dialer(secret, nodeauth.GRPC)),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()), // carries the invocation's trace to the worker
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage), grpc.MaxCallSendMsgSize(maxGRPCMessage)),
	)
	if err != nil {
		return nil, fmt.Errorf("dial worker %s: %w", addr, err)
	}
	return &grpcWorker{conn: conn, c: nodev1.NewWorkerServiceClient(conn)}, nil
}

func (g *grpcWorker) invoke(ctx context.Context, req *nodev1.InvokeRequest, started func()) (*worker.InvokeResult, error) {
	stream, err := g.c.Invoke(ctx, req)
	if err != nil {
		return nil, refusal(err)
	}
	wasStarted := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("worker closed the stream without a result")
			}
			if !wasStarted {
				return nil, refusal(err)
			}
			return nil, err
		}
		switch ev := msg.GetEvent().(type) {
		case *nodev1.InvokeResponse_Started:
			wasStarted = true
			started()
		case *nodev1.InvokeResponse_NoWarmSandbox:
			return nil, errNoWarm
		case *nodev1.InvokeResponse_Result:
			return worker.ResultFromProto(ev.Result), nil
		}
	}
}

// refusal marks errors that happened before the worker took the invocation.
func refusal(err error) error {
	if st, ok := status.FromError(err); ok && (st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", errRefused, err)
}

func (g *grpcWorker) watch(ctx context.Context, fn func(*nodev1.WatchPoolResponse)) error {
	stream, err := g.c.WatchPool(ctx, &nodev1.WatchPoolRequest{})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		fn(msg)
	}
}

func (g *grpcWorker) listSandboxes(ctx context.Context) ([]*nodev1.Sandbox, error) {
	res, err := g.c.ListSandboxes(ctx, &nodev1.ListSandboxesRequest{})
	return res.GetSandboxes(), err
}

func (g *grpcWorker) drain(ctx context.Context) error {
	_, err := g.c.Drain(ctx, &nodev1.DrainRequest{})
	return err
}

func (g *grpcWorker) provision(ctx context.Context, req *nodev1.ProvisionRequest) (int, error) {
	res, err := g.c.Provision(ctx, req)
	return int(res.GetStarted()), err
}

func (g *grpcWorker) logs(ctx context.Context, req *nodev1.FunctionLogsRequest, fn func([]byte) error) error {
	stream, err := g.c.FunctionLogs(ctx, req)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) || (err != nil && ctx.Err() != nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(msg.GetData()); err != nil {
			return err
		}
	}
}

func (g *grpcWorker) usage(ctx context.Context, req *nodev1.FunctionUsageRequest) (*nodev1.FunctionUsageResponse, error) {
	return g.c.FunctionUsage(ctx, req)
}

func (g *grpcWorker) retire(ctx context.Context, function string) error {
	_, err := g.c.Retire(ctx, &nodev1.RetireRequest{Function: function})
	return err
}

func (g *grpcWorker) close() error { return g.conn.Close() }

// LocalWorker adapts an in-process worker (gustd dev) without gRPC on the hot path.
type LocalWorker struct{ W *worker.Worker }

func (l LocalWorker) invoke(ctx context.Context, req *nodev1.InvokeRequest, started func()) (*worker.InvokeResult, error) {
	res, err := l.W.Invoke(ctx, worker.InvokeRequest{
		Function: worker.SpecFromProto(req.GetFunction()), RequestID: req.GetRequestId(), Payload: req.GetPayload(),
		ClientContext: req.GetClientContext(), TraceID: req.GetTraceId(), LogTail: req.GetLogTail(), WarmOnly: req.GetWarmOnly(),
		OnStart: func(string, bool) { started() },
	})
	switch {
	case errors.Is(err, worker.ErrNoWarm):
		return nil, errNoWarm
	case errors.Is(err, worker.ErrDraining), errors.Is(err, worker.ErrCapacity), errors.Is(err, worker.ErrCode):
		return nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	return res, err
}

func (l LocalWorker) watch(ctx context.Context, fn func(*nodev1.WatchPoolResponse)) error {
	changed, stop := l.W.Watch()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for seq := uint64(1); ; seq++ {
		fn(worker.StateToProto(l.W.Name(), seq, l.W.State()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}

func (l LocalWorker) listSandboxes(context.Context) ([]*nodev1.Sandbox, error) {
	return worker.SandboxesToProto(l.W.Name(), l.W.Sandboxes()), nil
}

func (l LocalWorker) drain(context.Context) error { l.W.Drain(); return nil }

func (l LocalWorker) provision(ctx context.Context, req *nodev1.ProvisionRequest) (int, error) {
	_, started, err := l.W.Provision(ctx, worker.SpecFromProto(req.GetFunction()), int(req.GetCount()),
		time.Duration(req.GetHoldMs())*time.Millisecond)
	return started, err
}
func (l LocalWorker) logs(ctx context.Context, req *nodev1.FunctionLogsRequest, fn func([]byte) error) error {
	return l.W.ReadLogs(ctx, req.GetFunction(), worker.LogOptionsFromProto(req), fn)
}

func (l LocalWorker) usage(_ context.Context, req *nodev1.FunctionUsageRequest) (*nodev1.FunctionUsageResponse, error) {
	return worker.UsageToProto(l.W, req), nil
}

func (l LocalWorker) retire(_ context.Context, function string) error {
	l.W.Retire(function)
	return nil
}

func (l LocalWorker) close() error { return nil }
