package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/gustfaas/gust/coordinator/admission"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/requestid"
	"github.com/gustfaas/gust/internal/tenant"
	"github.com/gustfaas/gust/internal/tracing"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/worker/workerapi"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
)

// Worker runs invocations: the fleet's router, which places them on workers.
type Worker interface {
	Invoke(ctx context.Context, req workerapi.InvokeRequest) (*workerapi.InvokeResult, error)
}

// invoker is the logic behind InvokeService.
type invoker struct {
	fns    *functions
	worker Worker
	limits Limits
	admit  *admission.Admission
	wake   chan struct{} // wakes the async dispatcher
	// enqueue batches InvokeAsync's Raft entries.
	enqueue *groupCommit[*gustv1.Invocation, *gustv1.Invocation]
	metrics *metrics // nil in unit tests
}

// Invoke runs one synchronous invocation. Function errors are results;
// only platform errors are returned as errors.
func (iv *invoker) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	return iv.invokeWaiting(ctx, req, 0)
}

// invokeWaiting is invoke that waits up to admitWait for a concurrency
// slot before it refuses with TooManyRequestsException.
func (iv *invoker) invokeWaiting(ctx context.Context, req *gustv1.InvokeRequest, admitWait time.Duration) (*gustv1.InvokeResponse, error) {
	ctx, span := tracing.Tracer().Start(ctx, "invoke")
	fn, res, err := iv.run(ctx, req, admitWait)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("faas.name", req.GetFunction()), attribute.String("faas.qualifier", req.GetQualifier()))
		if res != nil {
			span.SetAttributes(attribute.Bool("faas.coldstart", res.GetColdStart()), attribute.String("gust.worker", res.GetWorker()),
				attribute.String("gust.function_error", res.GetFunctionError()), attribute.String("gust.cold_start_reason", res.GetColdStartReason()))
		}
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
	if iv.metrics != nil {
		if fn == nil {
			fn = &gustv1.Function{Config: &gustv1.FunctionConfig{Name: req.GetFunction()}, Version: req.GetQualifier()}
		}
		iv.metrics.observe(fn, res, err)
	}
	return res, err
}

func (iv *invoker) run(ctx context.Context, req *gustv1.InvokeRequest, admitWait time.Duration) (*gustv1.Function, *gustv1.InvokeResponse, error) {
	if len(req.GetPayload()) > iv.limits.MaxSyncPayload {
		return nil, nil, apierr.New(apierr.RequestTooLarge, "request payload of %d bytes is over the %d byte limit", len(req.GetPayload()), iv.limits.MaxSyncPayload)
	}
	fn, err := iv.fns.route(ctx, req.GetFunction(), req.GetQualifier())
	if err != nil {
		return nil, nil, err
	}
	payload := req.GetPayload()
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	cfg := fn.GetConfig()
	if iv.admit != nil {
		_, span := tracing.Tracer().Start(ctx, "admission")
		lease, err := iv.admit.AdmitWait(ctx, cfg.GetName(), cfg.GetTimeout().AsDuration(), admitWait)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			span.End()
			return fn, nil, err
		}
		span.End()
		defer lease.Release()
	}
	res, err := iv.worker.Invoke(ctx, workerapi.InvokeRequest{
		Function:      specOf(fn),
		RequestID:     requestid.New(),
		Payload:       payload,
		ClientContext: req.GetClientContext(),
		LogTail:       req.GetLogTail(),
	})
	if err != nil {
		return fn, nil, workerError(cfg.GetName(), err)
	}
	return fn, &gustv1.InvokeResponse{
		RequestId:        res.RequestID,
		ExecutedVersion:  res.ExecutedVersion,
		ColdStart:        res.ColdStart,
		Worker:           res.Worker,
		Sandbox:          res.Sandbox,
		DurationMs:       ms(res.Duration.Seconds()),
		InitDurationMs:   ms(res.InitDuration.Seconds()),
		BilledDurationMs: res.BilledMs,
		MaxMemoryUsedMb:  res.MaxMemoryMB,
		FunctionError:    res.FunctionError,
		Payload:          res.Payload,
		LogTail:          res.LogTail,
		ColdStartReason:  res.ColdStartReason,
	}, nil
}

// workerError names a worker's refusal for the caller: the one place
// workerapi's errors become API errors, whether the worker is in this
// process or reached over gRPC.
func workerError(function string, err error) error {
	if _, named := apierr.As(err); named {
		return err
	}
	switch {
	case errors.Is(err, workerapi.ErrDraining):
		return apierr.New(apierr.ResourceNotReady, "%v", err)
	case errors.Is(err, workerapi.ErrCapacity):
		return apierr.New(apierr.Service, "no capacity for %s: %v", function, err)
	case errors.Is(err, workerapi.ErrCode):
		return apierr.New(apierr.Service, "code for %s is unavailable: %v", function, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return apierr.New(apierr.Service, "invoke %s: %v", function, err)
}

// specOf is what a worker needs to run a function version. The worker
// runs it under its stored name and shows it the name its tenant gave it.
func specOf(fn *gustv1.Function) workerapi.FunctionSpec {
	cfg := fn.GetConfig()
	return workerapi.FunctionSpec{
		Name: cfg.GetName(), DisplayName: tenant.Bare(cfg.GetName()), Version: fn.GetVersion(), Revision: fn.GetRevision(), Incarnation: fn.GetIncarnation(), CodeDigest: fn.GetCodeDigest(),
		Handler: cfg.GetHandler(), MemoryMB: int(cfg.GetMemoryMb()), Timeout: cfg.GetTimeout().AsDuration(), Env: cfg.GetEnvironment(),
	}
}

// ms converts seconds to milliseconds rounded to 0.01, as Lambda reports.
func ms(sec float64) float64 {
	return float64(int64(sec*100000+0.5)) / 100
}
