package apierr

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every named error survives the trip through a gRPC status with its name,
// reason and message, and carries DESIGN.md's code and HTTP status.
func TestStatusRoundTrip(t *testing.T) {
	cases := []struct {
		err  *Error
		code codes.Code
		http int
	}{
		{New(ResourceNotFound, "function not found: x"), codes.NotFound, http.StatusNotFound},
		{New(InvalidParameterValue, "bad"), codes.InvalidArgument, http.StatusBadRequest},
		{New(RequestTooLarge, "big"), codes.InvalidArgument, http.StatusRequestEntityTooLarge},
		{&Error{Name: TooManyRequests, Reason: "ConcurrentInvocationLimitExceeded", Message: "slow down"}, codes.ResourceExhausted, http.StatusTooManyRequests},
		{New(Service, "no capacity"), codes.Unavailable, http.StatusInternalServerError},
		{New(ResourceNotReady, "draining"), codes.Unavailable, http.StatusBadGateway},
		{New(Unauthenticated, "unauthenticated: no token"), codes.Unauthenticated, http.StatusUnauthorized},
		{New(AccessDenied, "root only"), codes.PermissionDenied, http.StatusForbidden},
	}
	for _, c := range cases {
		st := c.err.GRPCStatus()
		if st.Code() != c.code {
			t.Errorf("%s: code %v, want %v", c.err.Name, st.Code(), c.code)
		}
		if c.err.HTTPStatus() != c.http {
			t.Errorf("%s: http %d, want %d", c.err.Name, c.err.HTTPStatus(), c.http)
		}
		back, _ := status.FromError(st.Err())
		got := FromStatus(back)
		if *got != *c.err {
			t.Errorf("round trip: got %+v, want %+v", got, c.err)
		}
	}
	// A status without our details still gets a name from its code.
	if got := FromStatus(status.New(codes.NotFound, "x")); got.Name != ResourceNotFound {
		t.Errorf("bare NotFound became %s", got.Name)
	}
}

// The trial's `gust logs` on a huge line got gRPC's own "message larger
// than max", shown as TooManyRequestsException: it is no throttle.
func TestBareResourceExhaustedIsNoThrottle(t *testing.T) {
	e := FromStatus(status.New(codes.ResourceExhausted, "trying to send message larger than max (24838351 vs. 16777216)"))
	if e.Name != Service {
		t.Fatalf("bare ResourceExhausted became %s", e.Name)
	}
}
