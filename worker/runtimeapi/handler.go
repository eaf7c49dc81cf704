package runtimeapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gustfaas/gust/internal/bodyread"
)

// apiPrefix is the only API version runtimes speak.
const apiPrefix = "/2018-06-01/runtime/"

// Header and trailer names, spelled as AWS (and aws-lambda-go) spell them.
const (
	hdrRequestID       = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadlineMS      = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID         = "Lambda-Runtime-Trace-Id"
	hdrClientContext   = "Lambda-Runtime-Client-Context"
	hdrCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	hdrErrorType       = "Lambda-Runtime-Function-Error-Type" // header on /error, trailer on /response
	trlErrorBody       = "Lambda-Runtime-Function-Error-Body" // base64 trailer on /response
)

const (
	errorTypeUnknown  = "Runtime.Unknown"
	errorTypeTooLarge = "Function.ResponseSizeTooLarge"
)

// acceptedBody is what AWS answers to every accepted post.
var acceptedBody = []byte(`{"status":"OK"}`)

// errorBody is the {"errorMessage","errorType"} shape used both by the API's
// own error replies and by function error payloads.
type errorBody struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

// errorJSON encodes an errorBody; marshalling two strings cannot fail.
func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(errorBody{Message: msg, Type: typ})
	return b
}

// apiError is a non-2xx reply to the runtime.
type apiError struct {
	status int
	typ    string
	msg    string
}

var (
	errInvalidRequestID = &apiError{http.StatusBadRequest, "InvalidRequestID", "Invalid request ID"}
	errNotInFlight      = &apiError{http.StatusForbidden, "InvalidStateTransition",
		"State transition is not allowed: the invocation is not in progress"}
	errAlreadyAnswered = &apiError{http.StatusForbidden, "InvalidStateTransition",
		"State transition is not allowed: the invocation was already answered"}
	errInitDone = &apiError{http.StatusForbidden, "InvalidStateTransition",
		"State transition is not allowed: init already finished or failed"}
	errNextAfterInitError = &apiError{http.StatusForbidden, "InvalidStateTransition",
		"State transition is not allowed: the runtime reported an init error"}
	errNotFound = &apiError{http.StatusNotFound, "NotFound", "Unknown Runtime API path"}
)

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, errorJSON(e.typ, e.msg))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the runtime hanging up is its own problem
}

// route dispatches by hand rather than with http.ServeMux so that every
// reply, including 404 and 405, is the JSON AWS would send and no path is
// ever redirected.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	if !ok {
		writeAPIError(w, errNotFound)
		return
	}
	switch rest {
	case "invocation/next":
		if allowMethod(w, r, http.MethodGet) {
			s.handleNext(w, r)
		}
	case "init/error":
		if allowMethod(w, r, http.MethodPost) {
			s.handleInitError(w, r)
		}
	default:
		id, action, ok := parseInvocationPath(rest)
		if !ok {
			writeAPIError(w, errNotFound)
			return
		}
		if allowMethod(w, r, http.MethodPost) {
			s.handleResult(w, r, id, action == "error")
		}
	}
}

// parseInvocationPath splits "invocation/{id}/response|error".
func parseInvocationPath(rest string) (id, action string, ok bool) {
	rest, ok = strings.CutPrefix(rest, "invocation/")
	if !ok {
		return "", "", false
	}
	id, action, ok = strings.Cut(rest, "/")
	if !ok || id == "" || (action != "response" && action != "error") {
		return "", "", false
	}
	return id, action, true
}

func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeAPIError(w, &apiError{http.StatusMethodNotAllowed, "MethodNotAllowed",
		fmt.Sprintf("Method %s is not allowed here; use %s", r.Method, method)})
	return false
}

// handleNext is the runtime's long poll. Reaching it ends init. It waits
// (without timeout) until Invoke offers an invocation, then sends it.
func (s *Server) handleNext(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.initErr != nil {
		s.mu.Unlock()
		writeAPIError(w, errNextAfterInitError)
		return
	}
	if !s.ready {
		s.ready = true
		close(s.readyCh)
	}
	s.mu.Unlock()

	s.waiting.Add(1)
	c := s.awaitInvocation(r.Context())
	s.waiting.Add(-1)
	if c == nil {
		return // the runtime hung up; nobody will read a reply
	}
	if err := writeInvocation(w, &c.inv); err != nil {
		// The runtime never got it: offer it to the next GET /next.
		s.log.Warn("runtime API: sending invocation failed; requeued",
			"request_id", c.inv.RequestID, "err", err)
		s.requeue(c)
	}
}

// awaitInvocation takes the current call off the queue and marks it
// delivered. It returns nil if the runtime disconnects first, in which case
// the call stays queued so it is not lost. A disconnect at the very moment
// the reply is written cannot be seen (the kernel accepts the bytes and HTTP
// has no acknowledgement; AWS has the same window): the call then stays
// delivered and Invoke waits for its context, as for a crashed runtime.
func (s *Server) awaitInvocation(ctx context.Context) *call {
	for {
		var c *call
		select {
		case c = <-s.queue:
		case <-ctx.Done():
			return nil
		case <-s.closedCh:
			// Drop the connection without a reply: a 200 with no request
			// ID would look like an invocation to the runtime.
			panic(http.ErrAbortHandler)
		}
		if ctx.Err() != nil {
			// Both were ready and select picked the queue.
			s.requeue(c)
			return nil
		}
		if s.markDelivered(c) {
			return c
		}
		// Abandoned while it sat in the queue; wait for the next one.
	}
}

func (s *Server) markDelivered(c *call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c != s.current || c.state != stateQueued {
		return false
	}
	c.state = stateDelivered
	s.rememberLocked(c.inv.RequestID)
	return true
}

// requeue puts a call the runtime did not receive back in the queue, unless
// Invoke has given up on it meanwhile.
func (s *Server) requeue(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c != s.current || (c.state != stateQueued && c.state != stateDelivered) {
		return
	}
	c.state = stateQueued
	select {
	case s.queue <- c:
	default: // cannot happen: only s.current is ever queued
	}
}

// writeInvocation sends inv as the reply to GET /next. The payload is written
// as is: no copy, no re-encoding. It flushes so a dead connection shows up as
// an error here instead of silently losing the invocation.
func writeInvocation(w http.ResponseWriter, inv *Invocation) error {
	h := w.Header()
	h.Set(hdrRequestID, inv.RequestID)
	h.Set(hdrDeadlineMS, strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
	h.Set(hdrFunctionARN, inv.FunctionARN)
	if inv.TraceID != "" {
		h.Set(hdrTraceID, inv.TraceID)
	}
	if inv.ClientContext != "" {
		h.Set(hdrClientContext, inv.ClientContext)
	}
	if inv.CognitoIdentity != "" {
		h.Set(hdrCognitoIdentity, inv.CognitoIdentity)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(inv.Payload)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(inv.Payload); err != nil {
		return fmt.Errorf("write invocation %s: %w", inv.RequestID, err)
	}
	// A writer that cannot flush (a wrapper) is not an error: net/http
	// flushes when the handler returns.
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush invocation %s: %w", inv.RequestID, err)
	}
	return nil
}

// handleResult serves POST invocation/{id}/response and .../error.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	c, apiErr := s.claim(id)
	if apiErr != nil {
		s.log.Warn("runtime API: rejected answer", "request_id", id, "status", apiErr.status, "reason", apiErr.msg)
		writeAPIError(w, apiErr)
		return
	}
	body, tooLarge, err := readBody(r.Body, r.ContentLength, s.maxBody)
	if err != nil {
		// Incomplete body: let the runtime try again.
		s.release(c)
		s.log.Warn("runtime API: reading answer failed", "request_id", id, "err", err)
		writeAPIError(w, &apiError{http.StatusBadRequest, "InvalidRequest", "Failed to read the request body"})
		return
	}
	var res Result
	switch {
	case tooLarge:
		res = tooLargeResult(s.maxBody)
	case isError:
		res = errorResult(r.Header.Get(hdrErrorType), body)
	default:
		res = responseResult(body, r.Trailer)
	}
	if !s.complete(c, res) {
		writeAPIError(w, errNotInFlight) // Invoke gave up while we read
		return
	}
	if tooLarge {
		writeAPIError(w, &apiError{http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", s.maxBody)})
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedBody)
}

// claim reserves the in-flight call for one POST, so a concurrent duplicate
// gets 403 while the first body is still being read.
func (s *Server) claim(id string) (*call, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.current; c != nil && c.inv.RequestID == id {
		switch c.state {
		case stateDelivered:
			c.state = stateReceiving
			return c, nil
		case stateReceiving, stateAnswered:
			return nil, errAlreadyAnswered
		}
		// Queued: not (or no longer) handed to the runtime; decide below.
	}
	if _, ok := s.seen[id]; ok {
		return nil, errNotInFlight
	}
	return nil, errInvalidRequestID
}

func (s *Server) release(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state == stateReceiving {
		c.state = stateDelivered
	}
}

// complete hands res to the waiting Invoke; false if Invoke already gave up.
func (s *Server) complete(c *call, res Result) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state != stateReceiving {
		return false
	}
	c.result = res
	c.state = stateAnswered
	close(c.done)
	return true
}

// handleInitError serves POST /runtime/init/error, allowed only before the
// first GET /next.
func (s *Server) handleInitError(w http.ResponseWriter, r *http.Request) {
	if !s.initOpen() {
		writeAPIError(w, errInitDone)
		return
	}
	body, tooLarge, err := readBody(r.Body, r.ContentLength, s.maxBody)
	if err != nil {
		s.log.Warn("runtime API: reading init error failed", "err", err)
		writeAPIError(w, &apiError{http.StatusBadRequest, "InvalidRequest", "Failed to read the request body"})
		return
	}
	res := tooLargeResult(s.maxBody)
	if !tooLarge {
		res = errorResult(r.Header.Get(hdrErrorType), body)
	}

	s.mu.Lock()
	if s.ready || s.initErr != nil || s.closed {
		s.mu.Unlock()
		writeAPIError(w, errInitDone)
		return
	}
	s.initErr = &InitError{Type: res.ErrorType, Payload: res.Payload}
	close(s.initFailedCh)
	s.mu.Unlock()

	s.log.Warn("runtime API: runtime reported an init error", "error_type", res.ErrorType)
	if tooLarge {
		writeAPIError(w, &apiError{http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", s.maxBody)})
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedBody)
}

func (s *Server) initOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ready && s.initErr == nil && !s.closed
}

// readBody reads at most limit bytes, the buffer growing as the body
// arrives (bodyread.ReadAtMost): a runtime that declares 6 MB and sends a
// few bytes holds a few bytes of the worker. Reading a chunked body to EOF
// is also what makes net/http fill in r.Trailer.
func readBody(r io.Reader, contentLength, limit int64) (body []byte, tooLarge bool, err error) {
	if contentLength > limit {
		return nil, true, nil
	}
	body, err = bodyread.ReadAtMost(r, limit, contentLength, 512)
	switch {
	case errors.Is(err, bodyread.ErrTooLarge):
		return nil, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("read body: %w", err)
	case contentLength >= 0 && int64(len(body)) < contentLength:
		return nil, false, fmt.Errorf("read %d byte body: %w", contentLength, io.ErrUnexpectedEOF)
	}
	return body, false, nil
}

// responseResult interprets a /response body. A streaming runtime that fails
// mid-stream reports the error in trailers after the partial body.
func responseResult(body []byte, trailer http.Header) Result {
	typ := trailer.Get(hdrErrorType)
	if typ == "" {
		return Result{Payload: body}
	}
	if enc := trailer.Get(trlErrorBody); enc != "" {
		if payload, err := base64.StdEncoding.DecodeString(enc); err == nil {
			return Result{ErrorType: typ, Payload: payload}
		}
	}
	return Result{ErrorType: typ, Payload: errorJSON(typ, "The runtime reported an error while sending the response")}
}

// errorResult interprets an /error (or /init/error) body. The payload is
// kept as sent when it is JSON; otherwise it is wrapped so callers always get
// JSON.
func errorResult(headerType string, body []byte) Result {
	valid := json.Valid(body)
	typ := headerType
	if typ == "" && valid {
		var parsed struct {
			Type string `json:"errorType"`
		}
		_ = json.Unmarshal(body, &parsed) // a non-object or odd field just leaves Type empty
		typ = parsed.Type
	}
	if typ == "" {
		typ = errorTypeUnknown
	}
	if !valid {
		body = errorJSON(typ, string(body))
	}
	return Result{ErrorType: typ, Payload: body}
}

// tooLargeResult is what Invoke reports when the answer exceeded the limit,
// worded like AWS.
func tooLargeResult(limit int64) Result {
	return Result{
		ErrorType: errorTypeTooLarge,
		Payload: errorJSON(errorTypeTooLarge,
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", limit)),
	}
}
