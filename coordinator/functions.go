package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gustfaas/gust/coordinator/auth"
	"github.com/gustfaas/gust/coordinator/codestore"
	"github.com/gustfaas/gust/coordinator/replica"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/codezip"
	"github.com/gustfaas/gust/internal/tenant"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	aliasRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	envRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

// reservedEnv are set by gust for every function; Lambda refuses them too.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true, "AWS_EXECUTION_ENV": true,
	"AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true, "AWS_LAMBDA_FUNCTION_VERSION": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true,
}

// runtimes gust can run; all use the `provided` root filesystem.
var runtimes = map[string]bool{"provided": true, "provided.al2": true, "provided.al2023": true}

// functions is the logic behind FunctionService.
type functions struct {
	log    *slog.Logger
	store  *raftstore.Store
	quotas *quotas
	write  *replica.Writer
	code   *codestore.Store
	limits Limits
	now    func() time.Time
	// tenants reports whether auth is on, so a stored name may carry a
	// tenant prefix, TENANT.NAME, which the API edge adds (see coordinator/api/tenancy.go).
	// Nil is off.
	tenants func() bool
	// retire, if set, destroys a deleted function's sandboxes on every
	// worker (Router.Retire).
	retire func(ctx context.Context, name string)
}

// Upload stores a code zip, names it by digest and copies it to a majority
// of coordinators, so the Raft entry that will name it never points at code
// the cluster could lose with one node. A tenant's Upload is recorded in
// Raft as its own, so that put, on any coordinator, lets it (and only
// it, or another tenant that uploads the same bytes) name the digest.
func (f *functions) Upload(ctx context.Context, r io.Reader) (codestore.Info, error) {
	info, err := f.code.Put(r)
	if errors.Is(err, codezip.ErrInvalid) {
		return info, &apierr.Error{Name: apierr.InvalidParameterValue, Message: err.Error()}
	}
	if err != nil {
		return info, err
	}
	if err := f.write.ReplicateCode(ctx, f.code, info.Digest); err != nil {
		return info, apierr.New(apierr.Service, "store code: %v", err)
	}
	if t, isTenant := auth.CallerTenant(ctx); isTenant && !f.store.CodeClaimed(t, info.Digest) {
		err := f.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdClaimCode, Msg: &raftv1.ClaimCode{Tenant: t, Digest: info.Digest}}, nil)
		if err != nil {
			return info, fmt.Errorf("record the upload of code %s: %w", info.Digest, err)
		}
	}
	return info, nil
}

// mayUseCode reports whether tenant t may name a code digest: a digest is
// not a capability (deploys print them), so it must be one t uploaded or
// already runs. A miss catches up first: the upload may have been
// recorded through another coordinator a moment ago.
func (f *functions) mayUseCode(ctx context.Context, t, digest string) bool {
	if f.store.MayUseCode(t, digest) {
		return true
	}
	return f.write.CatchUp(ctx) == nil && f.store.MayUseCode(t, digest)
}

// codeNotFound is the one answer for code that is not there and for code
// that is another tenant's, so a tenant cannot tell them apart.
func codeNotFound(digest string) error {
	return apierr.New(apierr.InvalidParameterValue, "code %s not found: upload it first", digest)
}

// Put validates a configuration and stores it as the function's $LATEST.
func (f *functions) Put(ctx context.Context, cfg *gustv1.FunctionConfig, digest string) (*gustv1.Function, error) {
	if cfg == nil {
		return nil, apierr.New(apierr.InvalidParameterValue, "function configuration is required")
	}
	if err := f.normalize(cfg); err != nil {
		return nil, err
	}
	// Root, the operator, may name any code; a tenant only its own.
	if t, isTenant := auth.CallerTenant(ctx); isTenant && !f.mayUseCode(ctx, t, digest) {
		return nil, codeNotFound(digest)
	}
	size, err := f.code.Size(digest)
	if err != nil {
		// Uploaded through another coordinator (the client failed over)?
		if f.write.FetchCode(ctx, f.code, digest) == nil {
			size, err = f.code.Size(digest)
		}
		if err != nil {
			return nil, codeNotFound(digest)
		}
	}
	fn := &gustv1.Function{Config: cfg, CodeDigest: digest, CodeSize: size, Version: "$LATEST", LastModified: timestamppb.New(f.now())}
	out := &gustv1.Function{}
	if err := f.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdPutFunction, Msg: &raftv1.PutFunction{Function: fn}}, out); err != nil {
		return nil, fmt.Errorf("store function %s: %w", cfg.GetName(), err)
	}
	return out, nil
}

// normalize fills defaults and refuses what Lambda refuses.
func (f *functions) normalize(cfg *gustv1.FunctionConfig) error {
	bad := func(format string, args ...any) error {
		return apierr.New(apierr.InvalidParameterValue, format, args...)
	}
	if !f.validName(cfg.GetName()) {
		return bad("function name %q must be 1 to 64 letters, digits, '-' or '_'", cfg.GetName())
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "provided"
	}
	if !runtimes[cfg.Runtime] {
		return bad("runtime %q is not supported; use provided", cfg.Runtime)
	}
	if cfg.MemoryMb == 0 {
		cfg.MemoryMb = int32(f.limits.DefaultMemoryMB)
	}
	if int(cfg.MemoryMb) < f.limits.MinMemoryMB || int(cfg.MemoryMb) > f.limits.MaxMemoryMB {
		return bad("memory %d MB is outside %d to %d MB", cfg.MemoryMb, f.limits.MinMemoryMB, f.limits.MaxMemoryMB)
	}
	timeout := cfg.GetTimeout().AsDuration()
	if cfg.Timeout == nil {
		timeout = f.limits.DefaultTimeout
	}
	if timeout < time.Second || timeout > f.limits.MaxTimeout {
		return bad("timeout %s is outside 1s to %s", timeout, f.limits.MaxTimeout)
	}
	cfg.Timeout = durationpb.New(timeout)
	if cfg.MaxRetries != nil && (cfg.GetMaxRetries() < 0 || cfg.GetMaxRetries() > 2) {
		return bad("max retries %d is outside 0 to 2", cfg.GetMaxRetries())
	}
	if cfg.MaxEventAge != nil {
		if age := cfg.GetMaxEventAge().AsDuration(); age < minEventAge || age > defaultMaxEventAge {
			return bad("maximum event age %s is outside %s to %s", age, minEventAge, defaultMaxEventAge)
		}
	}
	if cfg.GetOnFailure() != "" && !f.validName(cfg.GetOnFailure()) {
		return bad("on-failure function name %q is invalid", cfg.GetOnFailure())
	}
	size := 0
	for k, v := range cfg.GetEnvironment() {
		if !envRE.MatchString(k) {
			return bad("environment variable name %q is invalid", k)
		}
		if reservedEnv[k] {
			return bad("environment variable %s is reserved", k)
		}
		size += len(k) + len(v)
	}
	if size > f.limits.MaxEnvBytes {
		return bad("environment is %d bytes; the limit is %d", size, f.limits.MaxEnvBytes)
	}
	if strings.ContainsRune(cfg.Handler, 0) {
		return bad("handler contains NUL")
	}
	return nil
}

// validName checks a function name as stored: NAME, or with tenants
// TENANT.NAME.
func (f *functions) validName(stored string) bool {
	if f.tenants == nil || !f.tenants() {
		return tenant.ValidFunction(stored)
	}
	return tenant.ValidStored(stored)
}

// Get returns the function version a qualifier names: "" or $LATEST, a
// version number, or an alias (its main version). Reads are local; only a
// miss asks the leader how far to catch up, so a deploy acknowledged by one
// coordinator is visible through every other.
func (f *functions) Get(ctx context.Context, name, qualifier string) (*gustv1.Function, error) {
	return f.resolve(ctx, name, qualifier, false)
}

// route is get for an invocation: an alias with routing weights sends
// that share of invocations to its other versions.
func (f *functions) route(ctx context.Context, name, qualifier string) (*gustv1.Function, error) {
	return f.resolve(ctx, name, qualifier, true)
}

func (f *functions) resolve(ctx context.Context, name, qualifier string, weighted bool) (*gustv1.Function, error) {
	fn, err := f.lookup(name, qualifier, weighted)
	if errors.Is(err, raftstore.ErrNotFound) {
		if cerr := f.write.CatchUp(ctx); cerr != nil {
			f.log.Warn("catch up before not-found failed", "function", name, "err", cerr)
		} else {
			fn, err = f.lookup(name, qualifier, weighted)
		}
	}
	if errors.Is(err, raftstore.ErrNotFound) {
		if qualifier != "" {
			return nil, apierr.New(apierr.ResourceNotFound, "function not found: %s:%s", name, qualifier)
		}
		return nil, apierr.New(apierr.ResourceNotFound, "function not found: %s", name)
	}
	return fn, err
}

func (f *functions) lookup(name, qualifier string, weighted bool) (*gustv1.Function, error) {
	switch {
	case qualifier == "" || qualifier == "$LATEST":
		return f.store.Function(name)
	case isVersionNumber(qualifier):
		return f.store.FunctionVersion(name, qualifier)
	}
	a, err := f.store.Alias(name, qualifier)
	if err != nil {
		return nil, err
	}
	version := a.GetVersion()
	if weighted && len(a.GetAdditionalWeights()) > 0 {
		r := rand.Float64()
		for _, v := range sortedVersions(a.GetAdditionalWeights()) {
			if r -= a.GetAdditionalWeights()[v]; r < 0 {
				version = v
				break
			}
		}
	}
	if version == "$LATEST" {
		return f.store.Function(name)
	}
	return f.store.FunctionVersion(name, version)
}

func isVersionNumber(q string) bool {
	if q == "" || len(q) > 10 {
		return false
	}
	for _, c := range q {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func sortedVersions(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Publish freezes $LATEST as the next version.
func (f *functions) Publish(ctx context.Context, name, description string) (*gustv1.Function, error) {
	out := &gustv1.Function{}
	err := f.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdPublishVersion,
		Msg: &raftv1.PublishVersion{Name: name, Description: description, PublishedUnixNano: f.now().UnixNano()}}, out)
	return out, named(err, name)
}

// PutAlias creates or updates an alias.
func (f *functions) PutAlias(ctx context.Context, a *gustv1.Alias, createOnly, updateOnly bool) (*gustv1.Alias, error) {
	if !aliasRE.MatchString(a.GetName()) || isVersionNumber(a.GetName()) || a.GetName() == "$LATEST" {
		return nil, apierr.New(apierr.InvalidParameterValue, "alias name %q must be 1 to 128 letters, digits, '-' or '_', and not a number", a.GetName())
	}
	out := &gustv1.Alias{}
	err := f.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdPutAlias,
		Msg: &raftv1.PutAlias{Alias: a, CreateOnly: createOnly, UpdateOnly: updateOnly}}, out)
	return out, named(err, a.GetFunction())
}

// named maps the store's refusals to API errors.
func named(err error, name string) error {
	switch {
	case errors.Is(err, raftstore.ErrNotFound):
		return &apierr.Error{Name: apierr.ResourceNotFound, Message: err.Error()}
	case errors.Is(err, raftstore.ErrInvalid):
		return &apierr.Error{Name: apierr.InvalidParameterValue, Message: err.Error()}
	}
	return err
}

func (f *functions) List() []*gustv1.Function { return f.store.Functions() }

func (f *functions) Delete(ctx context.Context, name, qualifier string) error {
	if qualifier != "" {
		if !isVersionNumber(qualifier) {
			return apierr.New(apierr.InvalidParameterValue, "only a version number can be deleted on its own, not %q", qualifier)
		}
		return named(f.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdDeleteVersion,
			Msg: &raftv1.DeleteVersion{Name: name, Version: qualifier}}, nil), name)
	}
	err := f.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdDeleteFunction, Msg: &raftv1.DeleteFunction{Name: name}}, nil)
	if errors.Is(err, raftstore.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "function not found: %s", name)
	}
	if err != nil {
		return err
	}
	if f.retire != nil {
		f.retire(ctx, name)
	}
	// Its reservation goes with it, back to the unreserved pool.
	return f.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdSetFunctionConcurrency,
		Msg: &raftv1.SetFunctionConcurrency{Function: name}}, nil)
}

// Aliases lists a function's aliases.
func (f *functions) Aliases(name string) []*gustv1.Alias { return f.store.Aliases(name) }

// Versions lists a function's published versions.
func (f *functions) Versions(name string) []*gustv1.Function { return f.store.Versions(name) }

// Exists reports whether a function of that stored name exists.
func (f *functions) Exists(name string) bool {
	_, err := f.store.Function(name)
	return err == nil
}

// Alias returns one of a function's aliases.
func (f *functions) Alias(ctx context.Context, name, alias string) (*gustv1.Alias, error) {
	if _, err := f.Get(ctx, name, ""); err != nil {
		return nil, err
	}
	a, err := f.store.Alias(name, alias)
	return a, named(err, name)
}

// Concurrency returns a function's concurrency settings and use.
func (f *functions) Concurrency(name string) *gustv1.Concurrency { return f.quotas.Concurrency(name) }

// SetConcurrency sets a function's reserved and provisioned concurrency.
func (f *functions) SetConcurrency(ctx context.Context, name string, reserved, provisioned int64) (*gustv1.Concurrency, error) {
	return f.quotas.setConcurrency(ctx, f, name, reserved, provisioned)
}
