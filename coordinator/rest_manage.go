package coordinator

import (
	"bytes"
	"context"

	"github.com/gustfaas/gust/coordinator/lambdahttp"
	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// The Lambda REST management calls (lambdahttp.Manager), over the same
// logic as FunctionService.

// CreateFunction stores a new function; Lambda refuses to create one that exists.
func (r restInvoker) CreateFunction(ctx context.Context, cfg *gustv1.FunctionConfig, zip []byte, publish bool) (*gustv1.Function, error) {
	if _, err := r.iv.fns.store.Function(cfg.GetName()); err == nil {
		return nil, toAPIError(apierr.New(apierr.InvalidParameterValue, "function already exist: %s", cfg.GetName()))
	}
	return r.deploy(ctx, cfg, zip, publish)
}

func (r restInvoker) deploy(ctx context.Context, cfg *gustv1.FunctionConfig, zip []byte, publish bool) (*gustv1.Function, error) {
	info, err := r.iv.fns.upload(ctx, bytes.NewReader(zip))
	if err != nil {
		return nil, toAPIError(err)
	}
	fn, err := r.iv.fns.put(ctx, cfg, info.Digest)
	if err != nil {
		return nil, toAPIError(err)
	}
	if publish {
		fn, err = r.iv.fns.publish(ctx, cfg.GetName(), "")
	}
	return fn, toAPIError(err)
}

// UpdateFunctionCode replaces $LATEST's code, keeping its configuration.
func (r restInvoker) UpdateFunctionCode(ctx context.Context, name string, zip []byte, publish bool) (*gustv1.Function, error) {
	cur, err := r.iv.fns.get(ctx, name, "")
	if err != nil {
		return nil, toAPIError(err)
	}
	return r.deploy(ctx, cur.GetConfig(), zip, publish)
}

// GetFunction returns a version and the function's concurrency.
func (r restInvoker) GetFunction(ctx context.Context, name, qualifier string) (*gustv1.Function, *gustv1.Concurrency, error) {
	fn, err := r.iv.fns.get(ctx, name, qualifier)
	if err != nil {
		return nil, nil, toAPIError(err)
	}
	c := r.iv.fns.quotas.concurrency(name)
	if c.GetReserved() == 0 {
		c = nil
	}
	return fn, c, nil
}

// ListFunctions returns every function's $LATEST.
func (r restInvoker) ListFunctions(context.Context) ([]*gustv1.Function, error) {
	return r.iv.fns.list(), nil
}

// DeleteFunction removes a function, or one version of it.
func (r restInvoker) DeleteFunction(ctx context.Context, name, qualifier string) error {
	return toAPIError(r.iv.fns.delete(ctx, name, qualifier))
}

// PublishVersion freezes $LATEST.
func (r restInvoker) PublishVersion(ctx context.Context, name, description string) (*gustv1.Function, error) {
	fn, err := r.iv.fns.publish(ctx, name, description)
	return fn, toAPIError(err)
}

// PutAlias creates or updates an alias.
func (r restInvoker) PutAlias(ctx context.Context, a *gustv1.Alias, createOnly, updateOnly bool) (*gustv1.Alias, error) {
	out, err := r.iv.fns.putAlias(ctx, a, createOnly, updateOnly)
	return out, toAPIError(err)
}

// GetAlias returns an alias, so UpdateAlias can keep what a request leaves out.
func (r restInvoker) GetAlias(ctx context.Context, name, alias string) (*gustv1.Alias, error) {
	if _, err := r.iv.fns.get(ctx, name, ""); err != nil {
		return nil, toAPIError(err)
	}
	a, err := r.iv.fns.store.Alias(name, alias)
	return a, toAPIError(named(err, name))
}

// PutFunctionConcurrency sets reserved concurrency, keeping provisioned.
func (r restInvoker) PutFunctionConcurrency(ctx context.Context, name string, reserved int64) (*gustv1.Concurrency, error) {
	cur := r.iv.fns.quotas.concurrency(name)
	c, err := r.iv.fns.quotas.setConcurrency(ctx, r.iv.fns, name, reserved, cur.GetProvisioned())
	return c, toAPIError(err)
}

var (
	_ lambdahttp.Manager      = restInvoker{}
	_ lambdahttp.AsyncInvoker = restInvoker{}
	_ lambdahttp.Checker      = restInvoker{}
	_ lambdahttp.AliasGetter  = restInvoker{}
)
