package lambdahttp

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/requestid"
)

// Error names this package adds to apierr's table. They are Lambda's own
// (or, for UnknownOperationException, what AWS REST front ends send), so
// the SDK recognises them.
const (
	// unknownOperation answers paths and methods that are not a Lambda
	// operation gust serves.
	unknownOperation = "UnknownOperationException"
	// invalidRequestContent is Lambda's 400 for a body it could not read
	// or parse as JSON.
	invalidRequestContent = "InvalidRequestContentException"
	// requestTimeout answers a body that arrived too slowly; the name is
	// what AWS front ends send with a 408.
	requestTimeout = "RequestTimeoutException"
)

// lambdaStatus is the HTTP status of Lambda error names that apierr's table
// does not know (it maps unknown names to 500). A Manager may return, say,
// &apierr.Error{Name: "ResourceConflictException"} for an alias that
// exists already, and the SDK gets the 409 and typed error Lambda sends.
var lambdaStatus = map[string]int{
	unknownOperation:               http.StatusNotFound,
	invalidRequestContent:          http.StatusBadRequest,
	requestTimeout:                 http.StatusRequestTimeout,
	"ResourceConflictException":    http.StatusConflict,
	"ResourceInUseException":       http.StatusBadRequest,
	"PreconditionFailedException":  http.StatusPreconditionFailed,
	"CodeStorageExceededException": http.StatusBadRequest,
}

// errorBody is the restJson1 error document Lambda sends. The SDK takes the
// error's name from X-Amzn-ErrorType and fills its typed error from these
// fields (it matches "message" and "Message" alike).
type errorBody struct {
	Type    string `json:"Type"`
	Message string `json:"message"`
	// Reason refines TooManyRequestsException (ThrottleReason in the SDK).
	Reason string `json:"Reason,omitempty"`
}

func badParam(format string, args ...any) error {
	return apierr.New(apierr.InvalidParameterValue, format, args...)
}

// writeError maps err to the wire once: *apierr.Error keeps its name and
// apierr's status; anything else is a 500 ServiceException, like the gRPC
// adapter does.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, in invocation, err error) {
	e, ok := apierr.As(err)
	if !ok || e.Name == "" {
		e = &apierr.Error{Name: apierr.Service, Message: err.Error()}
	}
	status, ok := lambdaStatus[e.Name]
	if !ok {
		status = e.HTTPStatus()
	}
	// 4xx is the caller's mistake or the platform saying no: routine. A 5xx
	// is worth an operator's look, unless the client hung up and the error
	// is only the echo of that.
	level := slog.LevelDebug
	if status >= 500 && r.Context().Err() == nil {
		level = slog.LevelError
	}
	attrs := []any{"request_id", in.requestID, "operation", orDefault(in.op, "Invoke"),
		"function", in.name, "qualifier", in.qualifier, "status", status, "error", e.Name, "err", err}
	if in.invType != "" {
		attrs = append(attrs, "invocation_type", in.invType)
	}
	h.log.Log(r.Context(), level, "lambda request failed", attrs...)
	if e.Name == requestTimeout {
		// The rest of the body is not worth waiting for.
		w.Header().Set("Connection", "close")
	}
	writeErrorBody(w, status, in.requestID, e.Name, e.Reason, e.Message)
}

// WriteError answers a request refused before the handler saw it (by
// authentication, say) with the restJson1 error Lambda would send.
func WriteError(w http.ResponseWriter, e *apierr.Error) {
	status, ok := lambdaStatus[e.Name]
	if !ok {
		status = e.HTTPStatus()
	}
	writeErrorBody(w, status, requestid.New(), e.Name, e.Reason, e.Message)
}

func (h *handler) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeErrorBody(w, http.StatusMethodNotAllowed, requestid.New(), unknownOperation,
			"", fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
	}
}

func (h *handler) unknownOperation(w http.ResponseWriter, r *http.Request) {
	writeErrorBody(w, http.StatusNotFound, requestid.New(), unknownOperation,
		"", fmt.Sprintf("no Lambda operation at %s %s", r.Method, r.URL.Path))
}

// writeErrorBody writes the restJson1 error: status, X-Amzn-ErrorType and
// the JSON body; Type is "Service" for 5xx (the platform's fault) and
// "User" otherwise, as Lambda does.
func writeErrorBody(w http.ResponseWriter, status int, requestID, name, reason, message string) {
	typ := "User"
	if status >= 500 {
		typ = "Service"
	}
	body := errorBody{Type: typ, Message: message}
	if name == apierr.TooManyRequests {
		body.Reason = reason
		// Lambda's throttles say when to come back; the SDK exposes it as
		// RetryAfterSeconds. A short fixed hint: the SDK's own backoff
		// decides when it actually retries.
		w.Header().Set("Retry-After", "1")
	}
	b, err := json.Marshal(body)
	if err != nil { // strings only: cannot happen, but never send a bad body
		b = []byte(`{"Type":"Service","message":"could not encode error"}`)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set(hdrErrorType, name)
	hdr.Set(hdrRequestID, requestID)
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
