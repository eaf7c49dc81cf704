package api

import (
	"errors"
	"log/slog"

	"github.com/gustfaas/gust/coordinator/replica"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/grpcopt"
	"github.com/gustfaas/gust/raftstore"
)

// toStatus maps an error to gRPC, once, using apierr's table.
func toStatus(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if st := grpcopt.ContextStatus(err); st != nil {
		return st
	}
	e := toAPIError(err).(*apierr.Error)
	if e.Name == apierr.Service {
		log.Error("internal error", "err", err)
	}
	return e.GRPCStatus().Err()
}

// toAPIError names an error for users: named errors pass through; the
// platform's own sentinels get their name; anything else is a ServiceException.
func toAPIError(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := apierr.As(err); ok {
		return e
	}
	if errors.Is(err, raftstore.ErrNotLeader) || errors.Is(err, replica.ErrLeaderUnreachable) {
		return apierr.New(apierr.ResourceNotReady, "%v", err)
	}
	return apierr.New(apierr.Service, "%v", err)
}
