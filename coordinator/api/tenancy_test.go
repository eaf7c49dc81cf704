package api

import (
	"context"
	"strings"
	"testing"

	"github.com/gustfaas/gust/coordinator/auth"
	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func fnNamed(name string) *gustv1.Function {
	return &gustv1.Function{Config: &gustv1.FunctionConfig{Name: name}, Version: "$LATEST"}
}

// A tenant's names are qualified on the way in, others' functions dropped
// and its own stripped on the way out; root passes unchanged; a tenant
// calling a root-only method is refused.
func TestTenancyUnary(t *testing.T) {
	stored := []*gustv1.Function{fnNamed("acme.a"), fnNamed("acme.b"), fnNamed("beta.a"), fnNamed("rootfn")}
	var seen any
	handler := func(_ context.Context, req any) (any, error) {
		seen = req
		switch r := req.(type) {
		case *gustv1.ListFunctionsRequest:
			return &gustv1.ListFunctionsResponse{Functions: stored}, nil
		case *gustv1.GetFunctionRequest:
			if r.Name != "acme.a" {
				return nil, apierr.New(apierr.ResourceNotFound, "function not found: %s", r.Name).GRPCStatus().Err()
			}
			return &gustv1.GetFunctionResponse{Function: fnNamed(r.Name)}, nil
		case *gustv1.GetInvocationRequest:
			return &gustv1.GetInvocationResponse{Invocation: &gustv1.Invocation{Id: r.Id, Function: "beta.a"}}, nil
		}
		return &gustv1.ListNodesResponse{}, nil
	}
	call := func(p *auth.Principal, method string, req any) (any, error) {
		ctx := context.Background()
		if p != nil {
			ctx = auth.WithPrincipal(ctx, *p)
		}
		return TenancyUnary(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, handler)
	}
	acme := &auth.Principal{Tenant: "acme"}
	root := &auth.Principal{Root: true}

	res, err := call(acme, gustv1.FunctionService_ListFunctions_FullMethodName, &gustv1.ListFunctionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fn := range res.(*gustv1.ListFunctionsResponse).Functions {
		names = append(names, fn.GetConfig().GetName())
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("acme lists %v", names)
	}
	if stored[0].Config.Name != "acme.a" {
		t.Error("the handler's objects were changed in place")
	}

	res, err = call(acme, gustv1.FunctionService_GetFunction_FullMethodName, &gustv1.GetFunctionRequest{Name: "a"})
	if err != nil || seen.(*gustv1.GetFunctionRequest).Name != "acme.a" || res.(*gustv1.GetFunctionResponse).Function.Config.Name != "a" {
		t.Errorf("get a: %v %v %v", res, seen, err)
	}
	// Not found reads in the tenant's own names.
	_, err = call(acme, gustv1.FunctionService_GetFunction_FullMethodName, &gustv1.GetFunctionRequest{Name: "zz"})
	if st := status.Convert(err); st.Code() != codes.NotFound || strings.Contains(st.Message(), "acme") {
		t.Errorf("get missing: %v", err)
	}
	// Another tenant's invocation does not exist.
	_, err = call(acme, gustv1.InvokeService_GetInvocation_FullMethodName, &gustv1.GetInvocationRequest{Id: "i1"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("beta's invocation read by acme: %v", err)
	}
	// Root-only methods.
	for _, m := range []string{gustv1.ClusterService_ListNodes_FullMethodName, gustv1.ClusterService_SetQuota_FullMethodName, gustv1.TokenService_CreateToken_FullMethodName} {
		if _, err := call(acme, m, &gustv1.ListNodesRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("acme calling %s: %v", m, err)
		}
		if _, err := call(root, m, &gustv1.ListNodesRequest{}); err != nil {
			t.Errorf("root calling %s: %v", m, err)
		}
	}
	// Root and auth-off calls see stored names unchanged.
	for _, p := range []*auth.Principal{root, nil} {
		res, err := call(p, gustv1.FunctionService_ListFunctions_FullMethodName, &gustv1.ListFunctionsRequest{})
		if err != nil || len(res.(*gustv1.ListFunctionsResponse).Functions) != len(stored) {
			t.Errorf("principal %v lists %v, %v", p, res, err)
		}
	}
}

func TestQualifyRequest(t *testing.T) {
	put := &gustv1.PutFunctionRequest{Config: &gustv1.FunctionConfig{Name: "f", OnFailure: "dlq"}}
	inv := &gustv1.InvokeRequest{Function: "f"}
	alias := &gustv1.PutAliasRequest{Alias: &gustv1.Alias{Function: "f", Name: "live"}}
	sched := &gustv1.AddScheduleRequest{Schedule: &gustv1.ScheduleInfo{Name: "nightly", Function: "f"}}
	for _, r := range []any{put, inv, alias, sched} {
		qualifyRequest("acme", r)
	}
	if put.Config.Name != "acme.f" || put.Config.OnFailure != "acme.dlq" || inv.Function != "acme.f" ||
		alias.Alias.Function != "acme.f" || alias.Alias.Name != "live" || sched.Schedule.Name != "acme.nightly" || sched.Schedule.Function != "acme.f" {
		t.Errorf("qualified: %v %v %v %v", put, inv, alias, sched)
	}
}

// gust cost as a tenant: only its own functions' usage, in its names.
func TestTenantUsageView(t *testing.T) {
	req := &gustv1.GetUsageRequest{}
	qualifyRequest("acme", req)
	if req.Name != "" {
		t.Errorf("every-function request became %q", req.Name)
	}
	res, err := tenantView("acme", &gustv1.GetUsageResponse{Usage: []*gustv1.FunctionUsage{
		{Name: "acme.a", Invocations: 2}, {Name: "beta.a", Invocations: 3}, {Name: "root", Invocations: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	u := res.(*gustv1.GetUsageResponse).Usage
	if len(u) != 1 || u[0].Name != "a" || u[0].Invocations != 2 {
		t.Errorf("acme's usage: %v", u)
	}
}
