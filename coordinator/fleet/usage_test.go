package fleet

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gustfaas/gust/worker/workerapi"
)

// TestRouterUsageSums: the router sums every worker's usage per function
// and names the workers that did not answer instead of failing.
func TestRouterUsageSums(t *testing.T) {
	a, b, c := newFake("a", 4096, nil), newFake("b", 4096, nil), newFake("c", 4096, nil)
	a.usageRes = workerapi.UsageReport{Functions: []workerapi.Usage{
		{Function: "f", Requests: 3, BilledMs: 300, BilledMBMs: 300 * 128},
		{Function: "g", Requests: 1, BilledMs: 10, BilledMBMs: 10 * 1024},
	}}
	b.usageRes = workerapi.UsageReport{Functions: []workerapi.Usage{
		{Function: "f", Requests: 2, BilledMs: 200, BilledMBMs: 200 * 128},
	}}
	c.usageErr = errors.New("unreachable")
	r := routerWith(t, a, b, c)
	sum, answered, missing := r.Usage(context.Background(), "", time.Time{}, time.Time{})
	want := []workerapi.Usage{
		{Function: "f", Requests: 5, BilledMs: 500, BilledMBMs: 500 * 128},
		{Function: "g", Requests: 1, BilledMs: 10, BilledMBMs: 10 * 1024},
	}
	if len(sum) != len(want) {
		t.Fatalf("usage %v, want %v", sum, want)
	}
	for i := range want {
		if sum[i] != want[i] {
			t.Errorf("usage[%d] = %v, want %v", i, sum[i], want[i])
		}
	}
	if answered != 2 || !reflect.DeepEqual(missing, []string{"c"}) {
		t.Errorf("answered %d, missing %v; want 2 and [c]", answered, missing)
	}
}
