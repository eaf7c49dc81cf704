package client

import (
	"context"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/grpc"
)

// SetTenantCaps sets the caps on tenant's reserved and provisioned
// concurrency (root token only): a nil cap is left as it is, a negative
// one returns to the default. It returns the tenant's quota.
func (c *Client) SetTenantCaps(ctx context.Context, tenant string, maxReserved, maxProvisioned *int64) (*gustv1.Quota, error) {
	var res *gustv1.SetTenantCapsResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewClusterServiceClient(conn).SetTenantCaps(ctx, &gustv1.SetTenantCapsRequest{
			Tenant: tenant, MaxReserved: maxReserved, MaxProvisioned: maxProvisioned})
		return err
	})
	return res.GetQuota(), err
}
