package replica

import (
	"errors"
	"fmt"

	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrLeaderUnreachable: the leader did not answer a forwarded write in
// time. The write may or may not have been applied.
var ErrLeaderUnreachable = errors.New("leader unreachable")

// storeErrors is the one map between the Raft store's errors and
// PeerService's wire, both ways: a forwarded write fails on the follower
// with the error it would have had on the leader.
var storeErrors = []struct {
	err  error
	code codes.Code
}{
	{raftstore.ErrNotLeader, codes.FailedPrecondition},
	{raftstore.ErrNotFound, codes.NotFound},
	{raftstore.ErrInvalid, codes.InvalidArgument},
}

// storeStatus converts a store error for the wire.
func storeStatus(err error) error {
	for _, e := range storeErrors {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// fromStatus gives back the store error a peer answered with. A leader
// that cannot answer for now (Unavailable) is no leader to this caller.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.Unavailable {
		return fmt.Errorf("%s: %w", st.Message(), raftstore.ErrNotLeader)
	}
	for _, e := range storeErrors {
		if e.code == st.Code() {
			return fmt.Errorf("%s: %w", st.Message(), e.err)
		}
	}
	return err
}
