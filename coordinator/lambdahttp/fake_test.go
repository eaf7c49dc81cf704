package lambdahttp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
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

// fakeManager is an in-memory Manager over fakeInvoker, close enough to
// the coordinator's rules (versions, aliases, reservations) that the SDK
// test can run a whole deploy through it. err, when set, fails every call.
type fakeManager struct {
	*fakeInvoker

	mu    sync.Mutex
	err   error
	fns   map[string]*fakeFn
	clock time.Time
	// The last arguments, for the tests to look at.
	lastCfg     *gustv1.FunctionConfig
	lastZip     []byte
	lastPublish bool
	lastAlias   *gustv1.Alias
	lastCreate  bool
	lastUpdate  bool
	lastReserve int64
	lastDelete  [2]string
}

type fakeFn struct {
	latest   *gustv1.Function
	versions []*gustv1.Function
	aliases  map[string]*gustv1.Alias
	reserved int64
}

func newFakeManager() *fakeManager {
	return &fakeManager{fakeInvoker: &fakeInvoker{}, fns: map[string]*fakeFn{},
		clock: time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)}
}

func digest(zip []byte) string {
	sum := sha256.Sum256(zip)
	return hex.EncodeToString(sum[:])
}

func notFound(format string, args ...any) error {
	return apierr.New(apierr.ResourceNotFound, format, args...)
}

// seed adds function name with $LATEST, version 1 and alias live → 1.
func (m *fakeManager) seed(name string) {
	if _, err := m.CreateFunction(context.Background(), &gustv1.FunctionConfig{Name: name, Handler: "bootstrap",
		Environment: map[string]string{"A": "1"}}, []byte("zip-"+name), true); err != nil {
		panic(err)
	}
	if _, err := m.PutAlias(context.Background(), &gustv1.Alias{Name: "live", Function: name, Version: "1"}, true, false); err != nil {
		panic(err)
	}
}

func (m *fakeManager) CreateFunction(_ context.Context, cfg *gustv1.FunctionConfig, zip []byte, publish bool) (*gustv1.Function, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastCfg, m.lastZip, m.lastPublish = proto.Clone(cfg).(*gustv1.FunctionConfig), zip, publish
	if m.err != nil {
		return nil, m.err
	}
	if _, ok := m.fns[cfg.GetName()]; ok {
		return nil, &apierr.Error{Name: "ResourceConflictException", Message: "Function already exist: " + cfg.GetName()}
	}
	cfg = proto.Clone(cfg).(*gustv1.FunctionConfig)
	if cfg.Runtime == "" {
		cfg.Runtime = "provided"
	}
	if cfg.MemoryMb == 0 {
		cfg.MemoryMb = 128
	}
	if cfg.Timeout == nil {
		cfg.Timeout = durationpb.New(3 * time.Second)
	}
	f := &fakeFn{aliases: map[string]*gustv1.Alias{}}
	f.latest = &gustv1.Function{Config: cfg, CodeDigest: digest(zip), CodeSize: int64(len(zip)), Version: "$LATEST",
		LastModified: timestamppb.New(m.clock), Revision: 1}
	m.fns[cfg.GetName()] = f
	if publish {
		return f.publish(""), nil
	}
	return proto.Clone(f.latest).(*gustv1.Function), nil
}

func (f *fakeFn) publish(description string) *gustv1.Function {
	if n := len(f.versions); n > 0 && f.versions[n-1].GetRevision() == f.latest.GetRevision() {
		return proto.Clone(f.versions[n-1]).(*gustv1.Function)
	}
	v := proto.Clone(f.latest).(*gustv1.Function)
	v.Version = strconv.Itoa(len(f.versions) + 1)
	v.Description = description
	f.versions = append(f.versions, v)
	return proto.Clone(v).(*gustv1.Function)
}

func (m *fakeManager) UpdateFunctionCode(_ context.Context, name string, zip []byte, publish bool) (*gustv1.Function, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastZip, m.lastPublish = zip, publish
	if m.err != nil {
		return nil, m.err
	}
	f, ok := m.fns[name]
	if !ok {
		return nil, notFound("Function not found: %s", name)
	}
	f.latest.CodeDigest, f.latest.CodeSize = digest(zip), int64(len(zip))
	f.latest.Revision++
	if publish {
		return f.publish(""), nil
	}
	return proto.Clone(f.latest).(*gustv1.Function), nil
}

func (m *fakeManager) resolve(name, qualifier string) (*fakeFn, *gustv1.Function, error) {
	f, ok := m.fns[name]
	if !ok {
		return nil, nil, notFound("Function not found: %s", name)
	}
	if a, ok := f.aliases[qualifier]; ok {
		qualifier = a.GetVersion()
	}
	if qualifier == "" || qualifier == "$LATEST" {
		return f, f.latest, nil
	}
	for _, v := range f.versions {
		if v.GetVersion() == qualifier {
			return f, v, nil
		}
	}
	return nil, nil, notFound("Function not found: %s:%s", name, qualifier)
}

func (m *fakeManager) GetFunction(_ context.Context, name, qualifier string) (*gustv1.Function, *gustv1.Concurrency, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, nil, m.err
	}
	f, fn, err := m.resolve(name, qualifier)
	if err != nil {
		return nil, nil, err
	}
	var c *gustv1.Concurrency
	if f.reserved > 0 {
		c = &gustv1.Concurrency{Reserved: f.reserved}
	}
	return proto.Clone(fn).(*gustv1.Function), c, nil
}

func (m *fakeManager) ListFunctions(context.Context) ([]*gustv1.Function, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	var out []*gustv1.Function
	for _, name := range slices.Sorted(maps.Keys(m.fns)) {
		out = append(out, proto.Clone(m.fns[name].latest).(*gustv1.Function))
	}
	return out, nil
}

func (m *fakeManager) DeleteFunction(_ context.Context, name, qualifier string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastDelete = [2]string{name, qualifier}
	if m.err != nil {
		return m.err
	}
	f, ok := m.fns[name]
	if !ok {
		return notFound("Function not found: %s", name)
	}
	if qualifier == "" {
		delete(m.fns, name)
		return nil
	}
	for i, v := range f.versions {
		if v.GetVersion() == qualifier {
			f.versions = slices.Delete(f.versions, i, i+1)
			return nil
		}
	}
	return notFound("Function not found: %s:%s", name, qualifier)
}

func (m *fakeManager) PublishVersion(_ context.Context, name, description string) (*gustv1.Function, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	f, ok := m.fns[name]
	if !ok {
		return nil, notFound("Function not found: %s", name)
	}
	return f.publish(description), nil
}

func (m *fakeManager) PutAlias(_ context.Context, a *gustv1.Alias, createOnly, updateOnly bool) (*gustv1.Alias, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastAlias, m.lastCreate, m.lastUpdate = proto.Clone(a).(*gustv1.Alias), createOnly, updateOnly
	if m.err != nil {
		return nil, m.err
	}
	f, ok := m.fns[a.GetFunction()]
	if !ok {
		return nil, notFound("Function not found: %s", a.GetFunction())
	}
	if _, _, err := m.resolve(a.GetFunction(), a.GetVersion()); err != nil || a.GetVersion() == "" {
		return nil, notFound("Function not found: %s:%s", a.GetFunction(), a.GetVersion())
	}
	prev, had := f.aliases[a.GetName()]
	switch {
	case had && createOnly:
		return nil, &apierr.Error{Name: "ResourceConflictException", Message: "Alias already exists: " + a.GetName()}
	case !had && updateOnly:
		return nil, notFound("Alias not found: %s", a.GetName())
	}
	a = proto.Clone(a).(*gustv1.Alias)
	a.Revision = prev.GetRevision() + 1
	f.aliases[a.GetName()] = a
	return proto.Clone(a).(*gustv1.Alias), nil
}

func (m *fakeManager) PutFunctionConcurrency(_ context.Context, name string, reserved int64) (*gustv1.Concurrency, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastReserve = reserved
	if m.err != nil {
		return nil, m.err
	}
	f, ok := m.fns[name]
	if !ok {
		return nil, notFound("Function not found: %s", name)
	}
	f.reserved = reserved
	return &gustv1.Concurrency{Reserved: reserved}, nil
}

// aliasGetterManager adds AliasGetter: UpdateAlias keeps what it omits.
type aliasGetterManager struct{ *fakeManager }

func (m aliasGetterManager) GetAlias(_ context.Context, name, alias string) (*gustv1.Alias, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	f, ok := m.fns[name]
	if !ok {
		return nil, notFound("Function not found: %s", name)
	}
	a, ok := f.aliases[alias]
	if !ok {
		return nil, notFound("Alias not found: %s", alias)
	}
	return proto.Clone(a).(*gustv1.Alias), nil
}
