package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/requestid"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Manager is the function-management side of the coordinator. When the
// Invoker given to Handler is also a Manager, the handler serves Lambda's
// CreateFunction, GetFunction, ListFunctions, DeleteFunction,
// UpdateFunctionCode, PublishVersion, CreateAlias, UpdateAlias and
// PutFunctionConcurrency; otherwise those routes answer 404
// UnknownOperationException.
//
// Names arrive parsed (an ARN or name:qualifier in the path is split), but
// not validated: what is a valid name, runtime, memory size or weight is
// the Manager's to say, with *apierr.Error (InvalidParameterValueException,
// ResourceNotFoundException, …). Any other error is a 500 ServiceException.
type Manager interface {
	// CreateFunction stores a new function from its configuration and code
	// zip, and publishes version 1 of it if publish is set (returning that
	// version). cfg.Timeout and cfg.MemoryMb are unset (nil, 0) when the
	// request left them out, for the Manager's defaults.
	CreateFunction(ctx context.Context, cfg *gustv1.FunctionConfig, zip []byte, publish bool) (*gustv1.Function, error)
	// UpdateFunctionCode replaces $LATEST's code, and publishes a version
	// of the result if publish is set (returning that version).
	UpdateFunctionCode(ctx context.Context, name string, zip []byte, publish bool) (*gustv1.Function, error)
	// GetFunction returns a version ("" is $LATEST; an alias resolves to
	// its version) and the function's concurrency (nil: none reserved).
	GetFunction(ctx context.Context, name, qualifier string) (*gustv1.Function, *gustv1.Concurrency, error)
	// ListFunctions returns every function's $LATEST.
	ListFunctions(ctx context.Context) ([]*gustv1.Function, error)
	// DeleteFunction deletes a function with its versions and aliases, or
	// with a qualifier only that published version.
	DeleteFunction(ctx context.Context, name, qualifier string) error
	// PublishVersion publishes $LATEST as the next version.
	PublishVersion(ctx context.Context, name, description string) (*gustv1.Function, error)
	// PutAlias creates (createOnly: CreateAlias) or replaces (updateOnly:
	// UpdateAlias) an alias; the alias is stored as given, whole. Without
	// an AliasGetter, a.Version is always set; with one, the handler has
	// filled in what the request left out from the current alias.
	PutAlias(ctx context.Context, a *gustv1.Alias, createOnly, updateOnly bool) (*gustv1.Alias, error)
	// PutFunctionConcurrency sets the function's reserved concurrency; 0
	// removes the reservation (gust's model: there is no "reserved 0 =
	// always throttled").
	PutFunctionConcurrency(ctx context.Context, name string, reserved int64) (*gustv1.Concurrency, error)
}

// AliasGetter is optionally implemented by a Manager so that UpdateAlias
// keeps what the request leaves out (FunctionVersion, Description,
// RoutingConfig), as Lambda does: the handler reads the alias, merges the
// request into it and stores the result with PutAlias. The read and the
// write are two steps, so a concurrent UpdateAlias of the same alias may be
// lost; the last writer wins, as for any two updates.
//
// Without it, UpdateAlias requires FunctionVersion and replaces the
// description and routing weights with what it was given (none if absent).
type AliasGetter interface {
	GetAlias(ctx context.Context, name, alias string) (*gustv1.Alias, error)
}

const (
	// maxManageRequest limits management bodies other than code uploads.
	maxManageRequest = 1 << 20
	// lastModifiedLayout is how Lambda writes FunctionConfiguration's
	// LastModified (a string in the API, not a timestamp).
	lastModifiedLayout = "2006-01-02T15:04:05.000+0000"
	// repositoryType is GetFunction's Code.RepositoryType: the code is in
	// gust's own store, not at a URL the caller could download.
	repositoryType = "gust"
)

// registerManagement adds the management routes. Each path also gets a
// method-less pattern, so a wrong method is a restJson1 405 rather than
// ServeMux's plain text.
func (h *handler) registerManagement(mux *http.ServeMux) {
	const (
		fns    = "/2015-03-31/functions"
		fn     = fns + "/{FunctionName}"
		code   = fn + "/code"
		vers   = fn + "/versions"
		alias  = fn + "/aliases"
		alias1 = alias + "/{Name}"
		conc   = "/2017-10-31/functions/{FunctionName}/concurrency"
	)
	get, post, put, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	// ListFunctions is /functions in the SDK's model and /functions/ in
	// older clients; CreateFunction is accepted on both too.
	for _, p := range []string{fns, fns + "/{$}"} {
		mux.HandleFunc(post+" "+p, h.manage("CreateFunction", h.createFunction))
		mux.HandleFunc(get+" "+p, h.manage("ListFunctions", h.listFunctions))
		mux.HandleFunc(p, h.methodNotAllowed(get+", "+post))
	}
	mux.HandleFunc(get+" "+fn, h.manage("GetFunction", h.getFunction))
	mux.HandleFunc(del+" "+fn, h.manage("DeleteFunction", h.deleteFunction))
	mux.HandleFunc(fn, h.methodNotAllowed(get+", "+del))
	mux.HandleFunc(put+" "+code, h.manage("UpdateFunctionCode", h.updateFunctionCode))
	mux.HandleFunc(code, h.methodNotAllowed(put))
	mux.HandleFunc(post+" "+vers, h.manage("PublishVersion", h.publishVersion))
	mux.HandleFunc(vers, h.methodNotAllowed(post))
	mux.HandleFunc(post+" "+alias, h.manage("CreateAlias", h.createAlias))
	mux.HandleFunc(alias, h.methodNotAllowed(post))
	mux.HandleFunc(put+" "+alias1, h.manage("UpdateAlias", h.updateAlias))
	mux.HandleFunc(alias1, h.methodNotAllowed(put))
	mux.HandleFunc(put+" "+conc, h.manage("PutFunctionConcurrency", h.putFunctionConcurrency))
	mux.HandleFunc(conc, h.methodNotAllowed(put))
}

// manageFunc serves one management operation: it fills in (for the error
// log) and returns the success status and the JSON body (nil: none).
type manageFunc func(r *http.Request, in *invocation) (int, any, error)

func (h *handler) manage(op string, f manageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := invocation{requestID: requestid.New(), op: op}
		status, body, err := f(r, &in)
		if err != nil {
			h.writeError(w, r, in, err)
			return
		}
		var b []byte
		if body != nil {
			if b, err = json.Marshal(body); err != nil {
				h.writeError(w, r, in, apierr.New(apierr.Service, "encode %s answer: %v", op, err))
				return
			}
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set(hdrRequestID, in.requestID)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(status)
		w.Write(b)
	}
}

// Request bodies. Members gust does not model (Role, Tags, Layers, VPC, …)
// are ignored; members that would change the meaning of the call and that
// gust cannot honour (S3 or image code, DryRun, RevisionId and CodeSha256
// preconditions) are refused, so nobody believes they took effect.

type createFunctionRequest struct {
	FunctionName string
	Runtime      string
	Handler      string
	MemorySize   *int32
	Timeout      *int32 // seconds
	Environment  *struct{ Variables map[string]string }
	Code         *struct {
		ZipFile         []byte // base64 in JSON, as encoding/json does []byte
		S3Bucket        string
		S3Key           string
		S3ObjectVersion string
		ImageUri        string
	}
	PackageType string
	Publish     bool
}

type updateFunctionCodeRequest struct {
	ZipFile         []byte
	S3Bucket        string
	S3Key           string
	S3ObjectVersion string
	ImageUri        string
	Publish         bool
	DryRun          bool
	RevisionId      string
}

type publishVersionRequest struct {
	Description string
	CodeSha256  string
	RevisionId  string
}

type routingConfig struct {
	AdditionalVersionWeights map[string]float64
}

type aliasRequest struct {
	Name            string // CreateAlias only; UpdateAlias has it in the path
	FunctionVersion *string
	Description     *string
	RoutingConfig   *routingConfig
	RevisionId      string
}

type concurrencyRequest struct {
	ReservedConcurrentExecutions *int64
}

// Answers, with the SDK's member names.

type functionConfiguration struct {
	FunctionName     string
	FunctionArn      string
	Runtime          string `json:",omitempty"`
	Handler          string `json:",omitempty"`
	CodeSize         int64
	CodeSha256       string `json:",omitempty"`
	Description      string
	Timeout          *int64               `json:",omitempty"` // seconds
	MemorySize       *int32               `json:",omitempty"`
	LastModified     string               `json:",omitempty"`
	Version          string               `json:",omitempty"`
	Environment      *environmentResponse `json:",omitempty"`
	RevisionId       string               `json:",omitempty"`
	State            string
	LastUpdateStatus string
	PackageType      string
}

type environmentResponse struct {
	Variables map[string]string
}

type getFunctionResponse struct {
	Configuration functionConfiguration
	Code          codeLocation
	Concurrency   *concurrencyResponse `json:",omitempty"`
}

type codeLocation struct {
	RepositoryType string
	Location       string
}

type concurrencyResponse struct {
	ReservedConcurrentExecutions int64
}

type listFunctionsResponse struct {
	Functions []functionConfiguration
}

type aliasConfiguration struct {
	AliasArn        string
	Name            string
	FunctionVersion string
	Description     string
	RoutingConfig   *routingConfig `json:",omitempty"`
	RevisionId      string         `json:",omitempty"`
}

func (h *handler) createFunction(r *http.Request, in *invocation) (int, any, error) {
	var req createFunctionRequest
	if err := readJSON(r, h.opts.MaxCodeRequest, &req); err != nil {
		return 0, nil, err
	}
	if req.FunctionName == "" {
		return 0, nil, missing("FunctionName")
	}
	name, err := unqualified(req.FunctionName)
	if err != nil {
		return 0, nil, err
	}
	in.name = name
	if req.PackageType != "" && req.PackageType != "Zip" {
		return 0, nil, badParam("PackageType %q is not supported: gust runs .zip packages only", req.PackageType)
	}
	if req.Code == nil {
		return 0, nil, missing("Code")
	}
	c := req.Code
	if err := zipOnly(c.S3Bucket, c.S3Key, c.S3ObjectVersion, c.ImageUri); err != nil {
		return 0, nil, err
	}
	if len(c.ZipFile) == 0 {
		return 0, nil, missing("Code.ZipFile")
	}
	cfg := &gustv1.FunctionConfig{Name: name, Runtime: req.Runtime, Handler: req.Handler}
	if req.MemorySize != nil {
		cfg.MemoryMb = *req.MemorySize
	}
	if req.Timeout != nil {
		cfg.Timeout = durationpb.New(time.Duration(*req.Timeout) * time.Second)
	}
	if req.Environment != nil && len(req.Environment.Variables) > 0 {
		cfg.Environment = req.Environment.Variables
	}
	fn, err := h.mgr.CreateFunction(r.Context(), cfg, c.ZipFile, req.Publish)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, h.configuration(fn), nil
}

func (h *handler) getFunction(r *http.Request, in *invocation) (int, any, error) {
	if err := parseQualified(r, in); err != nil {
		return 0, nil, err
	}
	fn, conc, err := h.mgr.GetFunction(r.Context(), in.name, in.qualifier)
	if err != nil {
		return 0, nil, err
	}
	out := getFunctionResponse{Configuration: h.configuration(fn), Code: codeLocation{RepositoryType: repositoryType}}
	if n := conc.GetReserved(); n > 0 {
		out.Concurrency = &concurrencyResponse{ReservedConcurrentExecutions: n}
	}
	return http.StatusOK, out, nil
}

func (h *handler) listFunctions(r *http.Request, in *invocation) (int, any, error) {
	// Marker, MaxItems, FunctionVersion and MasterRegion are accepted and
	// ignored: one page holds every function.
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return 0, nil, badParam("malformed query string: %v", err)
	}
	fns, err := h.mgr.ListFunctions(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := listFunctionsResponse{Functions: make([]functionConfiguration, 0, len(fns))}
	for _, fn := range fns {
		out.Functions = append(out.Functions, h.configuration(fn))
	}
	return http.StatusOK, out, nil
}

func (h *handler) deleteFunction(r *http.Request, in *invocation) (int, any, error) {
	if err := parseQualified(r, in); err != nil {
		return 0, nil, err
	}
	if err := h.mgr.DeleteFunction(r.Context(), in.name, in.qualifier); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (h *handler) updateFunctionCode(r *http.Request, in *invocation) (int, any, error) {
	name, err := unqualified(r.PathValue("FunctionName"))
	if err != nil {
		return 0, nil, err
	}
	in.name = name
	var req updateFunctionCodeRequest
	if err := readJSON(r, h.opts.MaxCodeRequest, &req); err != nil {
		return 0, nil, err
	}
	if err := zipOnly(req.S3Bucket, req.S3Key, req.S3ObjectVersion, req.ImageUri); err != nil {
		return 0, nil, err
	}
	if req.DryRun {
		return 0, nil, badParam("DryRun is not supported")
	}
	if req.RevisionId != "" {
		return 0, nil, badParam("RevisionId is not supported")
	}
	if len(req.ZipFile) == 0 {
		return 0, nil, missing("ZipFile")
	}
	fn, err := h.mgr.UpdateFunctionCode(r.Context(), name, req.ZipFile, req.Publish)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.configuration(fn), nil
}

func (h *handler) publishVersion(r *http.Request, in *invocation) (int, any, error) {
	name, err := unqualified(r.PathValue("FunctionName"))
	if err != nil {
		return 0, nil, err
	}
	in.name = name
	var req publishVersionRequest
	if err := readJSON(r, maxManageRequest, &req); err != nil {
		return 0, nil, err
	}
	if req.CodeSha256 != "" {
		return 0, nil, badParam("CodeSha256 is not supported")
	}
	if req.RevisionId != "" {
		return 0, nil, badParam("RevisionId is not supported")
	}
	fn, err := h.mgr.PublishVersion(r.Context(), name, req.Description)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, h.configuration(fn), nil
}

func (h *handler) createAlias(r *http.Request, in *invocation) (int, any, error) {
	name, err := unqualified(r.PathValue("FunctionName"))
	if err != nil {
		return 0, nil, err
	}
	in.name = name
	var req aliasRequest
	if err := readJSON(r, maxManageRequest, &req); err != nil {
		return 0, nil, err
	}
	switch {
	case req.Name == "":
		return 0, nil, missing("Name")
	case req.FunctionVersion == nil || *req.FunctionVersion == "":
		return 0, nil, missing("FunctionVersion")
	}
	in.qualifier = req.Name
	a := &gustv1.Alias{Name: req.Name, Function: name, Version: *req.FunctionVersion}
	if req.Description != nil {
		a.Description = *req.Description
	}
	if req.RoutingConfig != nil && len(req.RoutingConfig.AdditionalVersionWeights) > 0 {
		a.AdditionalWeights = req.RoutingConfig.AdditionalVersionWeights
	}
	out, err := h.mgr.PutAlias(r.Context(), a, true, false)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, h.aliasConfiguration(out), nil
}

func (h *handler) updateAlias(r *http.Request, in *invocation) (int, any, error) {
	name, err := unqualified(r.PathValue("FunctionName"))
	if err != nil {
		return 0, nil, err
	}
	in.name, in.qualifier = name, r.PathValue("Name")
	var req aliasRequest
	if err := readJSON(r, maxManageRequest, &req); err != nil {
		return 0, nil, err
	}
	if req.RevisionId != "" {
		return 0, nil, badParam("RevisionId is not supported")
	}
	if req.FunctionVersion != nil && *req.FunctionVersion == "" {
		return 0, nil, badParam("FunctionVersion must not be empty")
	}
	a := &gustv1.Alias{Name: in.qualifier, Function: name}
	if g, ok := h.mgr.(AliasGetter); ok {
		cur, err := g.GetAlias(r.Context(), name, in.qualifier)
		if err != nil {
			return 0, nil, err
		}
		a.Version, a.Description, a.AdditionalWeights = cur.GetVersion(), cur.GetDescription(), cur.GetAdditionalWeights()
	} else if req.FunctionVersion == nil {
		return 0, nil, badParam("FunctionVersion is required: this server cannot keep the alias's current version")
	}
	if req.FunctionVersion != nil {
		a.Version = *req.FunctionVersion
	}
	if req.Description != nil {
		a.Description = *req.Description
	}
	if req.RoutingConfig != nil {
		a.AdditionalWeights = req.RoutingConfig.AdditionalVersionWeights
	}
	if len(a.AdditionalWeights) == 0 {
		a.AdditionalWeights = nil
	}
	out, err := h.mgr.PutAlias(r.Context(), a, false, true)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.aliasConfiguration(out), nil
}

func (h *handler) putFunctionConcurrency(r *http.Request, in *invocation) (int, any, error) {
	name, err := unqualified(r.PathValue("FunctionName"))
	if err != nil {
		return 0, nil, err
	}
	in.name = name
	var req concurrencyRequest
	if err := readJSON(r, maxManageRequest, &req); err != nil {
		return 0, nil, err
	}
	if req.ReservedConcurrentExecutions == nil {
		return 0, nil, missing("ReservedConcurrentExecutions")
	}
	n := *req.ReservedConcurrentExecutions
	if n < 0 {
		return 0, nil, badParam("ReservedConcurrentExecutions must be 0 or more, not %d", n)
	}
	c, err := h.mgr.PutFunctionConcurrency(r.Context(), name, n)
	if err != nil {
		return 0, nil, err
	}
	if c != nil {
		n = c.GetReserved()
	}
	return http.StatusOK, concurrencyResponse{ReservedConcurrentExecutions: n}, nil
}

// readJSON reads a body of at most limit bytes into v. An empty body is an
// empty object (the SDK sends none when no member is set).
func readJSON(r *http.Request, limit int64, v any) error {
	b, err := readBody(r, limit)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &apierr.Error{Name: invalidRequestContent, Message: "could not parse the request body as JSON: " + err.Error()}
	}
	return nil
}

func missing(member string) error {
	return badParam("%s is required", member)
}

// unqualified parses a function name that must not carry a qualifier (the
// operations on a function as a whole, and CreateFunction's FunctionName).
func unqualified(s string) (string, error) {
	name, qualifier, err := parseFunctionName(s)
	if err != nil {
		return "", err
	}
	if qualifier != "" {
		return "", badParam("function name %q must not have a qualifier here", s)
	}
	return name, nil
}

func zipOnly(s3Bucket, s3Key, s3Version, imageURI string) error {
	if s3Bucket != "" || s3Key != "" || s3Version != "" || imageURI != "" {
		return badParam("code must be given as ZipFile: gust does not fetch code from S3 or run images")
	}
	return nil
}

// arn is a function's ARN, qualified with a version or alias when there is
// one ($LATEST is named by the unqualified ARN, as Lambda does).
func (h *handler) arn(name, qualifier string) string {
	s := "arn:aws:lambda:" + h.opts.Region + ":" + h.opts.AccountID + ":function:" + name
	if qualifier != "" && qualifier != "$LATEST" {
		s += ":" + qualifier
	}
	return s
}

// configuration is the FunctionConfiguration Lambda answers with.
func (h *handler) configuration(fn *gustv1.Function) functionConfiguration {
	cfg := fn.GetConfig()
	out := functionConfiguration{
		FunctionName:     cfg.GetName(),
		FunctionArn:      h.arn(cfg.GetName(), fn.GetVersion()),
		Runtime:          cfg.GetRuntime(),
		Handler:          cfg.GetHandler(),
		CodeSize:         fn.GetCodeSize(),
		CodeSha256:       codeSha256(fn.GetCodeDigest()),
		Description:      fn.GetDescription(),
		Version:          fn.GetVersion(),
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
	}
	if cfg.GetTimeout() != nil {
		// Lambda's timeouts are whole seconds; round a finer one up rather
		// than promise less time than the function gets.
		secs := int64(math.Ceil(cfg.GetTimeout().AsDuration().Seconds()))
		out.Timeout = &secs
	}
	if m := cfg.GetMemoryMb(); m != 0 {
		out.MemorySize = &m
	}
	if fn.GetLastModified() != nil {
		out.LastModified = fn.GetLastModified().AsTime().UTC().Format(lastModifiedLayout)
	}
	if env := cfg.GetEnvironment(); len(env) > 0 {
		out.Environment = &environmentResponse{Variables: env}
	}
	if rev := fn.GetRevision(); rev != 0 {
		out.RevisionId = strconv.FormatUint(rev, 10)
	}
	return out
}

func (h *handler) aliasConfiguration(a *gustv1.Alias) aliasConfiguration {
	out := aliasConfiguration{
		AliasArn:        h.arn(a.GetFunction(), a.GetName()),
		Name:            a.GetName(),
		FunctionVersion: a.GetVersion(),
		Description:     a.GetDescription(),
	}
	if w := a.GetAdditionalWeights(); len(w) > 0 {
		out.RoutingConfig = &routingConfig{AdditionalVersionWeights: w}
	}
	if rev := a.GetRevision(); rev != 0 {
		out.RevisionId = strconv.FormatUint(rev, 10)
	}
	return out
}

// codeSha256 turns gust's digest (lowercase hex sha256) into Lambda's
// CodeSha256 (base64 of the raw sha256); anything else passes unchanged.
func codeSha256(digest string) string {
	raw, err := hex.DecodeString(strings.ToLower(digest))
	if err != nil || len(raw) != 32 {
		return digest
	}
	return base64.StdEncoding.EncodeToString(raw)
}
