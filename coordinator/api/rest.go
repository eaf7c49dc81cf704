package api

import (
	"bytes"
	"context"

	"github.com/gustfaas/gust/coordinator/lambdahttp"
	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// rest adapts the services to the Lambda REST front (lambdahttp), naming
// errors as the gRPC adapters do.
type rest struct {
	iv  Invoker
	fns Functions
}

// Invoke runs one invocation.
func (r rest) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	res, err := r.iv.Invoke(ctx, req)
	return res, toAPIError(err)
}

// CheckFunction answers DryRun: does the function exist?
func (r rest) CheckFunction(ctx context.Context, name, qualifier string) error {
	_, err := r.fns.Get(ctx, name, qualifier)
	return toAPIError(err)
}

// InvokeAsync queues an event (the REST front's Event invocation type).
func (r rest) InvokeAsync(ctx context.Context, req *gustv1.InvokeRequest) (string, error) {
	id, err := r.iv.InvokeAsync(ctx, &gustv1.InvokeAsyncRequest{Function: req.GetFunction(), Qualifier: req.GetQualifier(), Payload: req.GetPayload()})
	return id, toAPIError(err)
}

// The Lambda REST management calls (lambdahttp.Manager), over the same
// logic as FunctionService.

// CreateFunction stores a new function; Lambda refuses to create one that exists.
func (r rest) CreateFunction(ctx context.Context, cfg *gustv1.FunctionConfig, zip []byte, publish bool) (*gustv1.Function, error) {
	if r.fns.Exists(cfg.GetName()) {
		return nil, toAPIError(apierr.New(apierr.InvalidParameterValue, "function already exist: %s", cfg.GetName()))
	}
	return r.deploy(ctx, cfg, zip, publish)
}

func (r rest) deploy(ctx context.Context, cfg *gustv1.FunctionConfig, zip []byte, publish bool) (*gustv1.Function, error) {
	info, err := r.fns.Upload(ctx, bytes.NewReader(zip))
	if err != nil {
		return nil, toAPIError(err)
	}
	fn, err := r.fns.Put(ctx, cfg, info.Digest)
	if err != nil {
		return nil, toAPIError(err)
	}
	if publish {
		fn, err = r.fns.Publish(ctx, cfg.GetName(), "")
	}
	return fn, toAPIError(err)
}

// UpdateFunctionCode replaces $LATEST's code, keeping its configuration.
func (r rest) UpdateFunctionCode(ctx context.Context, name string, zip []byte, publish bool) (*gustv1.Function, error) {
	cur, err := r.fns.Get(ctx, name, "")
	if err != nil {
		return nil, toAPIError(err)
	}
	return r.deploy(ctx, cur.GetConfig(), zip, publish)
}

// GetFunction returns a version and the function's concurrency.
func (r rest) GetFunction(ctx context.Context, name, qualifier string) (*gustv1.Function, *gustv1.Concurrency, error) {
	fn, err := r.fns.Get(ctx, name, qualifier)
	if err != nil {
		return nil, nil, toAPIError(err)
	}
	c := r.fns.Concurrency(name)
	if c.GetReserved() == 0 {
		c = nil
	}
	return fn, c, nil
}

// ListFunctions returns every function's $LATEST.
func (r rest) ListFunctions(context.Context) ([]*gustv1.Function, error) {
	return r.fns.List(), nil
}

// DeleteFunction removes a function, or one version of it.
func (r rest) DeleteFunction(ctx context.Context, name, qualifier string) error {
	return toAPIError(r.fns.Delete(ctx, name, qualifier))
}

// PublishVersion freezes $LATEST.
func (r rest) PublishVersion(ctx context.Context, name, description string) (*gustv1.Function, error) {
	fn, err := r.fns.Publish(ctx, name, description)
	return fn, toAPIError(err)
}

// PutAlias creates or updates an alias.
func (r rest) PutAlias(ctx context.Context, a *gustv1.Alias, createOnly, updateOnly bool) (*gustv1.Alias, error) {
	out, err := r.fns.PutAlias(ctx, a, createOnly, updateOnly)
	return out, toAPIError(err)
}

// GetAlias returns an alias, so UpdateAlias can keep what a request leaves out.
func (r rest) GetAlias(ctx context.Context, name, alias string) (*gustv1.Alias, error) {
	a, err := r.fns.Alias(ctx, name, alias)
	return a, toAPIError(err)
}

// PutFunctionConcurrency sets reserved concurrency, keeping provisioned.
func (r rest) PutFunctionConcurrency(ctx context.Context, name string, reserved int64) (*gustv1.Concurrency, error) {
	cur := r.fns.Concurrency(name)
	c, err := r.fns.SetConcurrency(ctx, name, reserved, cur.GetProvisioned())
	return c, toAPIError(err)
}

var (
	_ lambdahttp.Manager      = rest{}
	_ lambdahttp.AsyncInvoker = rest{}
	_ lambdahttp.Checker      = rest{}
	_ lambdahttp.AliasGetter  = rest{}
)
