package client

import (
	"context"

	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/grpc"
)

// Error names of refused calls on a cluster run with --auth.
const (
	// Unauthenticated: no token, or one the cluster does not know.
	Unauthenticated = apierr.Unauthenticated
	// AccessDenied: a tenant's token calling what only root may.
	AccessDenied = apierr.AccessDenied
)

// GetTenantQuota returns a tenant's concurrency limit and use (its own
// pool's, or the shared account's if it has no limit of its own); "" is
// the account's. A tenant's token gets its own whatever it asks.
func (c *Client) GetTenantQuota(ctx context.Context, tenant string) (*gustv1.Quota, error) {
	var res *gustv1.GetQuotaResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).GetQuota(ctx, &gustv1.GetQuotaRequest{Tenant: tenant})
		return err
	})
	return res.GetQuota(), err
}

// CreateToken makes an API token for tenant (root token only) and returns
// it; the cluster keeps only its hash, so it cannot be shown again. Not
// retried on another coordinator: a retry could make two tokens.
func (c *Client) CreateToken(ctx context.Context, tenant string) (string, error) {
	var res *gustv1.CreateTokenResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewTokenServiceClient(conn).CreateToken(ctx, &gustv1.CreateTokenRequest{Tenant: tenant})
		return err
	})
	return res.GetToken(), err
}
