package coordinator

import (
	"context"
	"errors"
	"reflect"
	"testing"

	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"google.golang.org/protobuf/proto"
)

// TestRouterUsageSums: the router sums every worker's usage per function
// and names the workers that did not answer instead of failing.
func TestRouterUsageSums(t *testing.T) {
	a, b, c := newFake("a", 4096, nil), newFake("b", 4096, nil), newFake("c", 4096, nil)
	a.usageRes = &nodev1.FunctionUsageResponse{Functions: []*nodev1.FunctionUsage{
		{Function: "f", Requests: 3, BilledMs: 300, BilledMbMs: 300 * 128},
		{Function: "g", Requests: 1, BilledMs: 10, BilledMbMs: 10 * 1024},
	}}
	b.usageRes = &nodev1.FunctionUsageResponse{Functions: []*nodev1.FunctionUsage{
		{Function: "f", Requests: 2, BilledMs: 200, BilledMbMs: 200 * 128},
	}}
	c.usageErr = errors.New("unreachable")
	r := routerWith(t, a, b, c)
	sum, answered, missing := r.Usage(context.Background(), &nodev1.FunctionUsageRequest{})
	want := []*nodev1.FunctionUsage{
		{Function: "f", Requests: 5, BilledMs: 500, BilledMbMs: 500 * 128},
		{Function: "g", Requests: 1, BilledMs: 10, BilledMbMs: 10 * 1024},
	}
	if len(sum) != len(want) {
		t.Fatalf("usage %v, want %v", sum, want)
	}
	for i := range want {
		if !proto.Equal(sum[i], want[i]) {
			t.Errorf("usage[%d] = %v, want %v", i, sum[i], want[i])
		}
	}
	if answered != 2 || !reflect.DeepEqual(missing, []string{"c"}) {
		t.Errorf("answered %d, missing %v; want 2 and [c]", answered, missing)
	}
}
