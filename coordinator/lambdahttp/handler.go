package lambdahttp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gustfaas/gust/internal/requestid"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// Limits Lambda documents; the coordinator may pass its own in Options.
const (
	// DefaultMaxSyncPayload is the request payload limit for
	// RequestResponse and DryRun invocations (6 MiB, as on Lambda).
	DefaultMaxSyncPayload = 6 << 20
	// DefaultMaxAsyncPayload is the request payload limit for Event
	// invocations (256 KiB, as on Lambda).
	DefaultMaxAsyncPayload = 256 << 10
	// DefaultMaxCodeRequest limits CreateFunction and UpdateFunctionCode
	// bodies: a 50 MB zip is about 67 MB of base64, plus the JSON around it.
	DefaultMaxCodeRequest = 70 << 20
	// DefaultMaxFunctionURLBody limits function URL request bodies (6 MiB,
	// Lambda's synchronous payload limit).
	DefaultMaxFunctionURLBody = 6 << 20
	// DefaultRegion and DefaultAccountID fill the ARNs the management
	// routes return: a gust cluster is one region of one account.
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "000000000000"
)

const (
	// maxLogResult is how much of the log tail X-Amz-Log-Result carries:
	// Lambda returns the last 4 KB, and headers must stay small.
	maxLogResult = 4 << 10
	// maxClientContext is Lambda's limit on X-Amz-Client-Context, in bytes
	// of base64.
	maxClientContext = 3583
	// invokePath is Lambda's Invoke route; FunctionName is the label the
	// SDK fills in (URL-escaped, so ARNs arrive with %3A).
	invokePath    = "/2015-03-31/functions/{FunctionName}/invocations"
	invokePattern = http.MethodPost + " " + invokePath
)

// Header names on the wire. Go canonicalises them (X-Amzn-Requestid); HTTP
// header names are case-insensitive, so the SDK reads them either way.
const (
	hdrInvocationType  = "X-Amz-Invocation-Type"
	hdrLogType         = "X-Amz-Log-Type"
	hdrClientContext   = "X-Amz-Client-Context"
	hdrExecutedVersion = "X-Amz-Executed-Version"
	hdrFunctionError   = "X-Amz-Function-Error"
	hdrLogResult       = "X-Amz-Log-Result"
	hdrRequestID       = "X-Amzn-RequestId"
	hdrErrorType       = "X-Amzn-ErrorType"
)

// Invoker runs one synchronous invocation; the coordinator implements it.
// A function error is a successful call with FunctionError set; platform
// failures are returned as *apierr.Error (any other error becomes a 500
// ServiceException).
type Invoker interface {
	Invoke(ctx context.Context, req *gustv1.InvokeRequest) (*gustv1.InvokeResponse, error)
}

// Checker is optionally implemented by an Invoker so that DryRun can say
// whether the function (and qualifier) exists without running it. Without
// it, DryRun answers 204 for any well-formed request.
type Checker interface {
	CheckFunction(ctx context.Context, name, qualifier string) error
}

// AsyncInvoker is optionally implemented by an Invoker that can queue Event
// invocations; it returns the invocation's id once the event is durably
// accepted. Without it, Event is refused with InvalidParameterValueException
// rather than silently run synchronously.
type AsyncInvoker interface {
	InvokeAsync(ctx context.Context, req *gustv1.InvokeRequest) (id string, err error)
}

// Options tunes the handler. Zero values mean Lambda's defaults.
type Options struct {
	// MaxSyncPayload limits RequestResponse and DryRun request bodies, in
	// bytes (default DefaultMaxSyncPayload).
	MaxSyncPayload int64
	// MaxAsyncPayload limits Event request bodies, in bytes (default
	// DefaultMaxAsyncPayload).
	MaxAsyncPayload int64
	// MaxCodeRequest limits CreateFunction and UpdateFunctionCode request
	// bodies, in bytes (default DefaultMaxCodeRequest). Other management
	// bodies are limited to 1 MiB.
	MaxCodeRequest int64
	// MaxFunctionURLBody limits function URL request bodies, in bytes
	// (default DefaultMaxFunctionURLBody).
	MaxFunctionURLBody int64
	// BodyGrace and MinBodyRate bound how slowly a request body may
	// arrive: after BodyGrace, at an average of at least MinBodyRate bytes
	// per second, or the request gets 408 RequestTimeoutException and its
	// connection is closed (defaults DefaultBodyGrace and
	// DefaultMinBodyRate).
	BodyGrace   time.Duration
	MinBodyRate int64
	// Region and AccountID go into the ARNs of management answers
	// (defaults DefaultRegion and DefaultAccountID).
	Region    string
	AccountID string
	// Logger receives one record per failed request (default: discard).
	Logger *slog.Logger
}

// Handler returns the http.Handler for the Lambda REST routes this package
// knows. Mount it at "/" on a mux that also has /healthz and friends: it
// answers every path it is given, and anything that is not a known Lambda
// route gets 404 UnknownOperationException in the restJson1 error shape, so
// SDK clients see a decodable error rather than a plain-text page.
//
// Invoke and the function URLs (ANY /fn/{name}[/path…]) are always served;
// the management routes only when inv is also a Manager.
func Handler(inv Invoker, opts Options) http.Handler {
	if opts.MaxSyncPayload <= 0 {
		opts.MaxSyncPayload = DefaultMaxSyncPayload
	}
	if opts.MaxAsyncPayload <= 0 {
		opts.MaxAsyncPayload = DefaultMaxAsyncPayload
	}
	if opts.MaxCodeRequest <= 0 {
		opts.MaxCodeRequest = DefaultMaxCodeRequest
	}
	if opts.MaxFunctionURLBody <= 0 {
		opts.MaxFunctionURLBody = DefaultMaxFunctionURLBody
	}
	if opts.BodyGrace <= 0 {
		opts.BodyGrace = DefaultBodyGrace
	}
	if opts.MinBodyRate <= 0 {
		opts.MinBodyRate = DefaultMinBodyRate
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{inv: inv, opts: opts, log: opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc(invokePattern, h.invoke)
	// The method-less pattern only catches what the POST one did not, so a
	// wrong method gets our error shape instead of ServeMux's plain text.
	mux.HandleFunc(invokePath, h.methodNotAllowed(http.MethodPost))
	if m, ok := inv.(Manager); ok {
		h.mgr = m
		h.registerManagement(mux)
	}
	mux.HandleFunc("/", h.unknownOperation)
	return &cleanPaths{mux: mux, h: h}
}

// cleanPaths paces every request body (see paceBody), sends function URL
// requests to their handler, whatever their path (it is the function's),
// and keeps ServeMux from answering 301 to other paths with "//", "/./" or
// "/../": an SDK never sends them, and a redirect is not in the restJson1
// contract, so they are unknown operations.
type cleanPaths struct {
	mux *http.ServeMux
	h   *handler
}

func (c *cleanPaths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = c.h.paceBody(w, r)
	if strings.HasPrefix(r.URL.Path, functionURLPrefix) {
		c.h.functionURL(w, r)
		return
	}
	if !isCleanPath(r.URL.Path) {
		c.h.unknownOperation(w, r)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// isCleanPath mirrors ServeMux's cleanPath test: rooted, and unchanged by
// path.Clean apart from a kept trailing slash.
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

type handler struct {
	inv  Invoker
	mgr  Manager // nil unless inv is one
	opts Options
	log  *slog.Logger
}

// invocation is one parsed request: an Invoke, or for the other operations
// the fields that name what they act on (for the error log).
type invocation struct {
	requestID     string // ours, for answers that have no invocation id
	op            string // operation, for the log; "" is Invoke
	invType       string
	name          string
	qualifier     string
	logTail       bool
	clientContext string
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	in := invocation{requestID: requestid.New()}
	if err := h.parse(r, &in); err != nil {
		h.writeError(w, r, in, err)
		return
	}
	switch in.invType {
	case "Event":
		h.invokeEvent(w, r, in)
	case "DryRun":
		h.dryRun(w, r, in)
	default:
		h.invokeSync(w, r, in)
	}
}

// parse reads everything but the body, so bad headers are refused before
// any payload is read.
func (h *handler) parse(r *http.Request, in *invocation) error {
	if err := parseQualified(r, in); err != nil {
		return err
	}

	in.invType = r.Header.Get(hdrInvocationType)
	switch in.invType {
	case "":
		in.invType = "RequestResponse"
	case "RequestResponse", "DryRun":
	case "Event":
		// Refuse before reading the body: running an Event synchronously
		// would make the caller wait and break its at-most-once assumptions.
		if _, ok := h.inv.(AsyncInvoker); !ok {
			return badParam("asynchronous invocation is not available yet")
		}
	default:
		return badParam("invalid %s %q: must be RequestResponse, Event or DryRun", hdrInvocationType, in.invType)
	}

	switch lt := r.Header.Get(hdrLogType); lt {
	case "", "None":
	case "Tail":
		// Lambda returns no log for Event; asking is not an error there.
		in.logTail = in.invType == "RequestResponse"
	default:
		return badParam("invalid %s %q: must be None or Tail", hdrLogType, lt)
	}

	if cc := r.Header.Get(hdrClientContext); cc != "" {
		if len(cc) > maxClientContext {
			return badParam("%s is %d bytes of base64, over the %d byte limit", hdrClientContext, len(cc), maxClientContext)
		}
		raw, err := base64.StdEncoding.DecodeString(cc)
		if err != nil {
			return badParam("%s is not valid base64: %v", hdrClientContext, err)
		}
		if !json.Valid(raw) {
			return badParam("%s is not base64-encoded JSON", hdrClientContext)
		}
		in.clientContext = string(raw)
	}
	return nil
}

func (h *handler) invokeSync(w http.ResponseWriter, r *http.Request, in invocation) {
	payload, err := readBody(r, h.opts.MaxSyncPayload)
	if err != nil {
		h.writeError(w, r, in, err)
		return
	}
	resp, err := h.inv.Invoke(r.Context(), in.request(payload))
	if err != nil {
		h.writeError(w, r, in, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set(hdrRequestID, orDefault(resp.GetRequestId(), in.requestID))
	if v := resp.GetExecutedVersion(); v != "" {
		hdr.Set(hdrExecutedVersion, v)
	}
	// A function error is still a 200: the SDK reports it through
	// FunctionError and hands the error object over as the payload.
	if fe := resp.GetFunctionError(); fe != "" {
		hdr.Set(hdrFunctionError, fe)
	}
	if in.logTail {
		hdr.Set(hdrLogResult, base64.StdEncoding.EncodeToString([]byte(lastBytes(resp.GetLogTail(), maxLogResult))))
	}
	hdr.Set("Content-Length", strconv.Itoa(len(resp.GetPayload())))
	w.WriteHeader(http.StatusOK)
	w.Write(resp.GetPayload())
}

func (h *handler) invokeEvent(w http.ResponseWriter, r *http.Request, in invocation) {
	payload, err := readBody(r, h.opts.MaxAsyncPayload)
	if err != nil {
		h.writeError(w, r, in, err)
		return
	}
	// parse refused Event already if inv is not an AsyncInvoker.
	id, err := h.inv.(AsyncInvoker).InvokeAsync(r.Context(), in.request(payload))
	if err != nil {
		h.writeError(w, r, in, err)
		return
	}
	// The id is the handle for `gust invocation get`; Lambda sends it as
	// the request id of the 202.
	w.Header().Set(hdrRequestID, orDefault(id, in.requestID))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (h *handler) dryRun(w http.ResponseWriter, r *http.Request, in invocation) {
	// Read the body too, so a payload that would be refused is refused
	// here as well: DryRun is "would this call be accepted?".
	if _, err := readBody(r, h.opts.MaxSyncPayload); err != nil {
		h.writeError(w, r, in, err)
		return
	}
	if c, ok := h.inv.(Checker); ok {
		if err := c.CheckFunction(r.Context(), in.name, in.qualifier); err != nil {
			h.writeError(w, r, in, err)
			return
		}
	}
	w.Header().Set(hdrRequestID, in.requestID)
	w.WriteHeader(http.StatusNoContent)
}

func (in *invocation) request(payload []byte) *gustv1.InvokeRequest {
	return &gustv1.InvokeRequest{
		Function:      in.name,
		Qualifier:     in.qualifier,
		Payload:       payload,
		LogTail:       in.logTail,
		ClientContext: in.clientContext,
	}
}

// parseQualified fills in.name and in.qualifier from the FunctionName path
// label and the Qualifier query parameter, which must agree when both name
// a qualifier.
func parseQualified(r *http.Request, in *invocation) error {
	name, qualifier, err := parseFunctionName(r.PathValue("FunctionName"))
	if err != nil {
		return err
	}
	in.name, in.qualifier = name, qualifier
	// ParseQuery rather than URL.Query, which would drop a malformed
	// Qualifier silently and act on $LATEST instead.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badParam("malformed query string: %v", err)
	}
	if qs, ok := query["Qualifier"]; ok {
		if len(qs) != 1 || qs[0] == "" {
			return badParam("Qualifier must be given once and not be empty")
		}
		if in.qualifier != "" && in.qualifier != qs[0] {
			return badParam("the derived qualifier from the function name (%s) does not match the specified qualifier (%s)", in.qualifier, qs[0])
		}
		in.qualifier = qs[0]
	}
	return nil
}

// parseFunctionName accepts the forms Lambda's FunctionName takes:
//
//	name                                             my-function
//	name:qualifier                                   my-function:v1
//	partial ARN                                      123456789012:function:my-function[:v1]
//	full ARN   arn:PARTITION:lambda:REGION:ACCOUNT:function:my-function[:v1]
//
// Region and account are not checked: a gust cluster is one region of one
// account, whatever the client's SDK was configured with. The name itself
// is validated by the Invoker, which knows what exists.
func parseFunctionName(s string) (name, qualifier string, err error) {
	parts := strings.Split(s, ":")
	var rest []string // name and optional qualifier
	switch {
	case len(parts) > 2 && parts[0] == "arn":
		if len(parts) < 7 || len(parts) > 8 || parts[2] != "lambda" || parts[5] != "function" {
			return "", "", badParam("invalid function ARN %q: want arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]", s)
		}
		rest = parts[6:]
	case len(parts) > 2 && parts[1] == "function":
		if len(parts) > 4 {
			return "", "", badParam("invalid partial function ARN %q: want ACCOUNT:function:NAME[:QUALIFIER]", s)
		}
		rest = parts[2:]
	case len(parts) <= 2:
		rest = parts
	default:
		return "", "", badParam("invalid function name %q", s)
	}
	if rest[0] == "" {
		return "", "", badParam("function name must not be empty")
	}
	if len(rest) == 2 {
		if rest[1] == "" {
			return "", "", badParam("qualifier in function name %q must not be empty", s)
		}
		return rest[0], rest[1], nil
	}
	return rest[0], "", nil
}

// lastBytes returns at most n bytes from the end of s, not starting in the
// middle of a UTF-8 sequence (log lines are text; a torn rune would show as
// garbage at the top of the tail).
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for i := 0; i < utf8.UTFMax && i < len(s); i++ {
		if utf8.RuneStart(s[i]) {
			return s[i:]
		}
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
