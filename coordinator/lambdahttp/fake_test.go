package lambdahttp

import (
	"context"
	"sync"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

// fakeInvoker stands in for the coordinator: it records what arrived and
// answers with resp or err. Only the wire translation is under test.
type fakeInvoker struct {
	mu    sync.Mutex
	calls []*gustv1.InvokeRequest
	resp  *gustv1.InvokeResponse
	err   error
}

func (f *fakeInvoker) Invoke(_ context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, proto.Clone(req).(*gustv1.InvokeRequest))
	if f.err != nil {
		return nil, f.err
	}
	if f.resp == nil {
		return &gustv1.InvokeResponse{RequestId: "req-1", ExecutedVersion: "$LATEST", Payload: []byte(`{"ok":true}`)}, nil
	}
	return f.resp, nil
}

func (f *fakeInvoker) Calls() []*gustv1.InvokeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*gustv1.InvokeRequest(nil), f.calls...)
}

// checkingInvoker adds Checker: DryRun asks it.
type checkingInvoker struct {
	*fakeInvoker
	checkErr error

	mu      sync.Mutex
	checked [][2]string
}

func (c *checkingInvoker) CheckFunction(_ context.Context, name, qualifier string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked = append(c.checked, [2]string{name, qualifier})
	return c.checkErr
}

// asyncInvoker adds AsyncInvoker: Event is accepted.
type asyncInvoker struct {
	*fakeInvoker
	id       string
	asyncErr error

	mu     sync.Mutex
	queued []*gustv1.InvokeRequest
}

func (a *asyncInvoker) InvokeAsync(_ context.Context, req *gustv1.InvokeRequest) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.asyncErr != nil {
		return "", a.asyncErr
	}
	a.queued = append(a.queued, proto.Clone(req).(*gustv1.InvokeRequest))
	return a.id, nil
}

func (a *asyncInvoker) Queued() []*gustv1.InvokeRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*gustv1.InvokeRequest(nil), a.queued...)
}
