// Package apierr is the table of errors users see, named as on AWS Lambda
// so SDK users recognise them, with their gRPC codes and HTTP statuses.
// Servers convert to the wire once, at the edge; the client SDK converts back.
package apierr

import (
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error names, as in DESIGN.md.
const (
	ResourceNotFound      = "ResourceNotFoundException"
	InvalidParameterValue = "InvalidParameterValueException"
	RequestTooLarge       = "RequestTooLargeException"
	TooManyRequests       = "TooManyRequestsException"
	Service               = "ServiceException"
	ResourceNotReady      = "ResourceNotReadyException"
	// Unauthenticated is a call without a token, or with one the cluster
	// does not know (with --auth). Its message starts "unauthenticated".
	Unauthenticated = "UnrecognizedClientException"
	// AccessDenied is a tenant's token calling what only root may.
	AccessDenied = "AccessDeniedException"
)

// domain tags ErrorInfo details that carry an error name.
const domain = "gust.dev"

// Error is an error with a user-facing name.
type Error struct {
	// Name is the Lambda-style error name, e.g. ResourceNotFoundException.
	Name string
	// Reason refines some names, e.g. ConcurrentInvocationLimitExceeded.
	Reason string
	// Message is for people.
	Message string
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// New returns an Error with a formatted message.
func New(name, format string, args ...any) *Error {
	return &Error{Name: name, Message: fmt.Sprintf(format, args...)}
}

// As finds an *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

type wire struct {
	code codes.Code
	http int
}

var table = map[string]wire{
	ResourceNotFound:      {codes.NotFound, http.StatusNotFound},
	InvalidParameterValue: {codes.InvalidArgument, http.StatusBadRequest},
	RequestTooLarge:       {codes.InvalidArgument, http.StatusRequestEntityTooLarge},
	TooManyRequests:       {codes.ResourceExhausted, http.StatusTooManyRequests},
	Service:               {codes.Unavailable, http.StatusInternalServerError},
	ResourceNotReady:      {codes.Unavailable, http.StatusBadGateway},
	Unauthenticated:       {codes.Unauthenticated, http.StatusUnauthorized},
	AccessDenied:          {codes.PermissionDenied, http.StatusForbidden},
}

// HTTPStatus is the status the Lambda REST API answers with.
func (e *Error) HTTPStatus() int {
	if w, ok := table[e.Name]; ok {
		return w.http
	}
	return http.StatusInternalServerError
}

// GRPCStatus lets grpc-go send the error with its code and name.
func (e *Error) GRPCStatus() *status.Status {
	code := codes.Internal
	if w, ok := table[e.Name]; ok {
		code = w.code
	}
	st := status.New(code, e.Error())
	md := map[string]string{"name": e.Name}
	if e.Reason != "" {
		md["reason"] = e.Reason
	}
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Name, Domain: domain, Metadata: md}); err == nil {
		return withInfo
	}
	return st
}

// FromStatus recovers a named error from a gRPC status; errors without a
// name get one from their code, so callers always see a name.
func FromStatus(st *status.Status) *Error {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == domain {
			name := info.GetMetadata()["name"]
			msg := st.Message()
			if len(msg) > len(name)+2 && msg[:len(name)+2] == name+": " {
				msg = msg[len(name)+2:]
			}
			return &Error{Name: name, Reason: info.GetMetadata()["reason"], Message: msg}
		}
	}
	name := Service
	switch st.Code() {
	case codes.NotFound:
		name = ResourceNotFound
	case codes.InvalidArgument:
		name = InvalidParameterValue
	case codes.ResourceExhausted:
		// gust's throttles carry their details (above); a bare one is
		// gRPC's own, such as a message over the size limit: not a
		// throttle the caller should back off from.
		name = Service
	case codes.Unavailable, codes.DeadlineExceeded:
		name = ResourceNotReady
	case codes.Unauthenticated:
		name = Unauthenticated
	case codes.PermissionDenied:
		name = AccessDenied
	}
	return &Error{Name: name, Message: st.Message()}
}
