package api

import (
	"context"
	"strings"

	"github.com/gustfaas/gust/coordinator/auth"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/tenant"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Tenancy at the API edge (with --auth). A tenant's names are stored
// qualified ("TENANT.NAME", see internal/tenant): the edge qualifies every
// name a tenant sends, drops what is not the tenant's from lists and
// strips the prefix from what it returns. Everything behind the edge keys
// on stored names and knows nothing of tenants. Another tenant's function
// is simply not found: its stored name is one the caller cannot spell.
//
// The root token is the operator: it sees and addresses stored names as
// they are (a tenant's functions as TENANT.NAME) and alone may call cluster
// administration and TokenService.

// tenantMethods are the gRPC methods a tenant may call; every other
// gust.v1 method is root's. A method added later is root-only until its
// names are handled here, so it cannot leak across tenants by default.
var tenantMethods = map[string]bool{
	gustv1.FunctionService_UploadCode_FullMethodName:             true,
	gustv1.FunctionService_PutFunction_FullMethodName:            true,
	gustv1.FunctionService_GetFunction_FullMethodName:            true,
	gustv1.FunctionService_ListFunctions_FullMethodName:          true,
	gustv1.FunctionService_DeleteFunction_FullMethodName:         true,
	gustv1.FunctionService_PutFunctionConcurrency_FullMethodName: true,
	gustv1.FunctionService_PublishVersion_FullMethodName:         true,
	gustv1.FunctionService_PutAlias_FullMethodName:               true,
	gustv1.FunctionService_ListAliases_FullMethodName:            true,
	gustv1.FunctionService_ListVersions_FullMethodName:           true,
	gustv1.FunctionService_GetLogs_FullMethodName:                true,
	gustv1.FunctionService_GetUsage_FullMethodName:               true,
	gustv1.InvokeService_Invoke_FullMethodName:                   true,
	gustv1.InvokeService_InvokeAsync_FullMethodName:              true,
	gustv1.InvokeService_GetInvocation_FullMethodName:            true,
	gustv1.ClusterService_GetQuota_FullMethodName:                true,
	gustv1.ClusterService_AddSchedule_FullMethodName:             true,
	gustv1.ClusterService_ListSchedules_FullMethodName:           true,
	gustv1.ClusterService_RemoveSchedule_FullMethodName:          true,
}

func denied(method string) error {
	return apierr.New(apierr.AccessDenied, "%s is for the root token only", strings.TrimPrefix(method, "/")).GRPCStatus().Err()
}

// TenancyUnary maps names for tenants' unary calls.
func TenancyUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	t, isTenant := auth.CallerTenant(ctx)
	if !isTenant || !strings.HasPrefix(info.FullMethod, "/gust.v1.") {
		return handler(ctx, req)
	}
	if !tenantMethods[info.FullMethod] {
		return nil, denied(info.FullMethod)
	}
	qualifyRequest(t, req)
	res, err := handler(ctx, req)
	if err != nil {
		return nil, stripStatus(t, err)
	}
	res, err = tenantView(t, res)
	return res, stripStatus(t, err)
}

// TenancyStream maps names for tenants' streaming calls.
func TenancyStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	t, isTenant := auth.CallerTenant(ss.Context())
	if !isTenant || !strings.HasPrefix(info.FullMethod, "/gust.v1.") {
		return handler(srv, ss)
	}
	if !tenantMethods[info.FullMethod] {
		return denied(info.FullMethod)
	}
	return stripStatus(t, handler(srv, &tenantStream{ServerStream: ss, tenant: t}))
}

// tenantStream qualifies the names in each message a tenant sends.
type tenantStream struct {
	grpc.ServerStream
	tenant string
}

func (s *tenantStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	qualifyRequest(s.tenant, m)
	return nil
}

// qualifyRequest rewrites the names in a tenant's request to stored names.
func qualifyRequest(t string, req any) {
	q := func(name string) string { return tenant.Qualify(t, name) }
	switch r := req.(type) {
	case *gustv1.PutFunctionRequest:
		qualifyConfig(t, r.GetConfig())
	case *gustv1.GetFunctionRequest:
		r.Name = q(r.Name)
	case *gustv1.DeleteFunctionRequest:
		r.Name = q(r.Name)
	case *gustv1.PutFunctionConcurrencyRequest:
		r.Name = q(r.Name)
	case *gustv1.PublishVersionRequest:
		r.Name = q(r.Name)
	case *gustv1.PutAliasRequest:
		if r.Alias != nil {
			r.Alias.Function = q(r.Alias.Function)
		}
	case *gustv1.ListAliasesRequest:
		r.Name = q(r.Name)
	case *gustv1.ListVersionsRequest:
		r.Name = q(r.Name)
	case *gustv1.GetLogsRequest:
		r.Name = q(r.Name)
	case *gustv1.GetUsageRequest:
		if r.Name != "" { // "" is every function: filtered on the way out
			r.Name = q(r.Name)
		}
	case *gustv1.InvokeRequest:
		r.Function = q(r.Function)
	case *gustv1.InvokeAsyncRequest:
		r.Function = q(r.Function)
	case *gustv1.AddScheduleRequest:
		if r.Schedule != nil {
			r.Schedule.Name, r.Schedule.Function = q(r.Schedule.Name), q(r.Schedule.Function)
		}
	case *gustv1.RemoveScheduleRequest:
		r.Name = q(r.Name)
	case *gustv1.GetQuotaRequest:
		r.Tenant = t // its own (or the shared account's, if it has none)
	}
}

func qualifyConfig(t string, cfg *gustv1.FunctionConfig) {
	if cfg == nil {
		return
	}
	cfg.Name = tenant.Qualify(t, cfg.Name)
	if cfg.OnFailure != "" {
		cfg.OnFailure = tenant.Qualify(t, cfg.OnFailure)
	}
}

// tenantView returns what tenant t may see of a response, with its names
// as it uses them.
func tenantView(t string, res any) (any, error) {
	switch r := res.(type) {
	case *gustv1.PutFunctionResponse:
		r.Function = viewFunction(t, r.Function)
	case *gustv1.GetFunctionResponse:
		r.Function = viewFunction(t, r.Function)
	case *gustv1.PublishVersionResponse:
		r.Function = viewFunction(t, r.Function)
	case *gustv1.ListFunctionsResponse:
		r.Functions = viewFunctions(t, r.Functions)
	case *gustv1.ListVersionsResponse:
		r.Versions = viewFunctions(t, r.Versions)
	case *gustv1.PutAliasResponse:
		r.Alias = viewAlias(t, r.Alias)
	case *gustv1.ListAliasesResponse:
		for i, a := range r.Aliases {
			r.Aliases[i] = viewAlias(t, a)
		}
	case *gustv1.GetInvocationResponse:
		inv := r.GetInvocation()
		if inv != nil && !tenant.Owns(t, inv.GetFunction()) {
			return nil, apierr.New(apierr.ResourceNotFound, "invocation not found: %s", inv.GetId()).GRPCStatus().Err()
		}
		r.Invocation = viewInvocation(t, inv)
	case *gustv1.GetUsageResponse:
		var mine []*gustv1.FunctionUsage
		for _, u := range r.Usage {
			if name, ok := tenant.Unqualify(t, u.GetName()); ok {
				u = proto.Clone(u).(*gustv1.FunctionUsage)
				u.Name = name
				mine = append(mine, u)
			}
		}
		r.Usage = mine
	case *gustv1.AddScheduleResponse:
		r.Schedule = viewSchedule(t, r.Schedule)
	case *gustv1.ListSchedulesResponse:
		var mine []*gustv1.ScheduleInfo
		for _, s := range r.Schedules {
			if tenant.Owns(t, s.GetName()) && tenant.Owns(t, s.GetFunction()) {
				mine = append(mine, viewSchedule(t, s))
			}
		}
		r.Schedules = mine
	}
	return res, nil
}

func viewFunction(t string, fn *gustv1.Function) *gustv1.Function {
	if fn == nil || fn.Config == nil {
		return fn
	}
	fn = proto.Clone(fn).(*gustv1.Function)
	fn.Config.Name = tenant.Bare(fn.Config.Name)
	if fn.Config.OnFailure != "" {
		fn.Config.OnFailure, _ = tenant.Unqualify(t, fn.Config.OnFailure)
	}
	return fn
}

func viewFunctions(t string, fns []*gustv1.Function) []*gustv1.Function {
	out := make([]*gustv1.Function, 0, len(fns))
	for _, fn := range fns {
		if tenant.Owns(t, fn.GetConfig().GetName()) {
			out = append(out, viewFunction(t, fn))
		}
	}
	return out
}

func viewAlias(t string, a *gustv1.Alias) *gustv1.Alias {
	if a == nil {
		return nil
	}
	a = proto.Clone(a).(*gustv1.Alias)
	a.Function, _ = tenant.Unqualify(t, a.Function)
	return a
}

func viewInvocation(t string, inv *gustv1.Invocation) *gustv1.Invocation {
	if inv == nil {
		return nil
	}
	inv = proto.Clone(inv).(*gustv1.Invocation)
	inv.Function, _ = tenant.Unqualify(t, inv.Function)
	if inv.Schedule != "" {
		inv.Schedule, _ = tenant.Unqualify(t, inv.Schedule)
		inv.IdempotencyKey = tenant.StripText(t, inv.IdempotencyKey) // the tick's key names the schedule
	}
	inv.Error = tenant.StripText(t, inv.Error)
	return inv
}

func viewSchedule(t string, s *gustv1.ScheduleInfo) *gustv1.ScheduleInfo {
	if s == nil {
		return nil
	}
	s = proto.Clone(s).(*gustv1.ScheduleInfo)
	s.Name, _ = tenant.Unqualify(t, s.Name)
	s.Function, _ = tenant.Unqualify(t, s.Function)
	return s
}

// stripStatus removes tenant t's prefix from an error's message.
func stripStatus(t string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	p := st.Proto()
	p.Message = tenant.StripText(t, p.Message)
	return status.FromProto(p).Err()
}

// stripAPIError is stripStatus for the REST front's *apierr.Error.
func stripAPIError(t string, err error) error {
	e, ok := apierr.As(err)
	if !ok {
		return err
	}
	c := *e
	c.Message = tenant.StripText(t, c.Message)
	return &c
}

// tenantREST is the Lambda REST front's edge: rest behind the same
// name mapping as the gRPC one.
type tenantREST struct{ r rest }

func (v tenantREST) Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	t, isTenant := auth.CallerTenant(ctx)
	if !isTenant {
		return v.r.Invoke(ctx, req)
	}
	req.Function = tenant.Qualify(t, req.Function)
	res, err := v.r.Invoke(ctx, req)
	return res, stripAPIError(t, err)
}

func (v tenantREST) CheckFunction(ctx context.Context, name, qualifier string) error {
	t, _ := auth.CallerTenant(ctx)
	return stripAPIError(t, v.r.CheckFunction(ctx, tenant.Qualify(t, name), qualifier))
}

func (v tenantREST) InvokeAsync(ctx context.Context, req *gustv1.InvokeRequest) (string, error) {
	t, _ := auth.CallerTenant(ctx)
	req.Function = tenant.Qualify(t, req.Function)
	id, err := v.r.InvokeAsync(ctx, req)
	return id, stripAPIError(t, err)
}

func (v tenantREST) CreateFunction(ctx context.Context, cfg *gustv1.FunctionConfig, zip []byte, publish bool) (*gustv1.Function, error) {
	t, _ := auth.CallerTenant(ctx)
	qualifyConfig(t, cfg)
	fn, err := v.r.CreateFunction(ctx, cfg, zip, publish)
	return restFunction(t, fn), stripAPIError(t, err)
}

func (v tenantREST) UpdateFunctionCode(ctx context.Context, name string, zip []byte, publish bool) (*gustv1.Function, error) {
	t, _ := auth.CallerTenant(ctx)
	fn, err := v.r.UpdateFunctionCode(ctx, tenant.Qualify(t, name), zip, publish)
	return restFunction(t, fn), stripAPIError(t, err)
}

func (v tenantREST) GetFunction(ctx context.Context, name, qualifier string) (*gustv1.Function, *gustv1.Concurrency, error) {
	t, _ := auth.CallerTenant(ctx)
	fn, c, err := v.r.GetFunction(ctx, tenant.Qualify(t, name), qualifier)
	return restFunction(t, fn), c, stripAPIError(t, err)
}

func (v tenantREST) ListFunctions(ctx context.Context) ([]*gustv1.Function, error) {
	fns, err := v.r.ListFunctions(ctx)
	if t, isTenant := auth.CallerTenant(ctx); isTenant {
		fns = viewFunctions(t, fns)
	}
	return fns, err
}

func (v tenantREST) DeleteFunction(ctx context.Context, name, qualifier string) error {
	t, _ := auth.CallerTenant(ctx)
	return stripAPIError(t, v.r.DeleteFunction(ctx, tenant.Qualify(t, name), qualifier))
}

func (v tenantREST) PublishVersion(ctx context.Context, name, description string) (*gustv1.Function, error) {
	t, _ := auth.CallerTenant(ctx)
	fn, err := v.r.PublishVersion(ctx, tenant.Qualify(t, name), description)
	return restFunction(t, fn), stripAPIError(t, err)
}

func (v tenantREST) PutAlias(ctx context.Context, a *gustv1.Alias, createOnly, updateOnly bool) (*gustv1.Alias, error) {
	t, isTenant := auth.CallerTenant(ctx)
	if !isTenant {
		return v.r.PutAlias(ctx, a, createOnly, updateOnly)
	}
	a.Function = tenant.Qualify(t, a.Function)
	out, err := v.r.PutAlias(ctx, a, createOnly, updateOnly)
	if err != nil {
		return nil, stripAPIError(t, err)
	}
	return viewAlias(t, out), nil
}

func (v tenantREST) GetAlias(ctx context.Context, name, alias string) (*gustv1.Alias, error) {
	t, isTenant := auth.CallerTenant(ctx)
	if !isTenant {
		return v.r.GetAlias(ctx, name, alias)
	}
	a, err := v.r.GetAlias(ctx, tenant.Qualify(t, name), alias)
	if err != nil {
		return nil, stripAPIError(t, err)
	}
	return viewAlias(t, a), nil
}

func (v tenantREST) PutFunctionConcurrency(ctx context.Context, name string, reserved int64) (*gustv1.Concurrency, error) {
	t, _ := auth.CallerTenant(ctx)
	c, err := v.r.PutFunctionConcurrency(ctx, tenant.Qualify(t, name), reserved)
	return c, stripAPIError(t, err)
}

// restFunction is viewFunction for a caller that may be root ("").
func restFunction(t string, fn *gustv1.Function) *gustv1.Function {
	if t == "" || fn == nil {
		return fn
	}
	return viewFunction(t, fn)
}
