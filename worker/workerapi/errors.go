package workerapi

import (
	"errors"

	"github.com/gustfaas/gust/internal/grpcopt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain marks the reasons below as gust's worker refusals.
const errorDomain = "worker.gust.dev"

// wireErrors is the one map between the refusals and gRPC: the code says
// what kind of failure it is to any gRPC client, and the reason (an
// ErrorInfo detail) names the sentinel, so the coordinator's errors.Is
// sees the worker's error exactly. ErrNoWarm is not here: it is an answer
// on the Invoke stream, not an error.
var wireErrors = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{ErrDraining, codes.FailedPrecondition, "DRAINING"},
	{ErrCapacity, codes.ResourceExhausted, "NO_CAPACITY"},
	{ErrCode, codes.FailedPrecondition, "CODE_UNAVAILABLE"},
	{ErrInvalidFunction, codes.InvalidArgument, "INVALID_FUNCTION"},
}

// toStatus converts a worker's error for the wire.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, w := range wireErrors {
		if errors.Is(err, w.err) {
			st, derr := status.New(w.code, err.Error()).WithDetails(&errdetails.ErrorInfo{Reason: w.reason, Domain: errorDomain})
			if derr != nil {
				return status.Error(w.code, err.Error())
			}
			return st.Err()
		}
	}
	if st := grpcopt.ContextStatus(err); st != nil {
		return st
	}
	return status.Error(codes.Internal, err.Error())
}

// fromStatus gives back the sentinel a worker refused with, wrapped with
// the worker's message; other errors are returned as they are.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		for _, w := range wireErrors {
			if w.reason == info.GetReason() {
				return &refusal{sentinel: w.err, msg: st.Message()}
			}
		}
	}
	return err
}

// refusal is a sentinel error as it arrived from a remote worker, with the
// worker's own message (which already names the sentinel).
type refusal struct {
	sentinel error
	msg      string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.sentinel }
