package client

import (
	"context"
	"time"

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
	tok, _, err := c.CreateTokenWithID(ctx, tenant)
	return tok, err
}

// CreateTokenWithID is CreateToken that also returns the token's id, which
// names it in ListTokens and RevokeToken.
func (c *Client) CreateTokenWithID(ctx context.Context, tenant string) (token, id string, err error) {
	var res *gustv1.CreateTokenResponse
	err = c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewTokenServiceClient(conn).CreateToken(ctx, &gustv1.CreateTokenRequest{Tenant: tenant})
		return err
	})
	return res.GetToken(), res.GetId(), err
}

// Token describes an API token without revealing it.
type Token struct {
	ID      string    `json:"id"`
	Tenant  string    `json:"tenant"`
	Root    bool      `json:"root"`
	Created time.Time `json:"created"`
}

func tokenFrom(t *gustv1.TokenInfo) Token {
	return Token{ID: t.GetId(), Tenant: t.GetTenant(), Root: t.GetRoot(), Created: time.Unix(0, t.GetCreatedUnixNano()).UTC()}
}

// ListTokens describes the cluster's tokens, a tenant's only if tenant is
// not "" (root token only).
func (c *Client) ListTokens(ctx context.Context, tenant string) ([]Token, error) {
	var res *gustv1.ListTokensResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewTokenServiceClient(conn).ListTokens(ctx, &gustv1.ListTokensRequest{Tenant: tenant})
		return err
	})
	out := make([]Token, 0, len(res.GetTokens()))
	for _, t := range res.GetTokens() {
		out = append(out, tokenFrom(t))
	}
	return out, err
}

// RevokeToken removes the token that id names (the id ListTokens and
// CreateTokenWithID give, or the token itself) and describes it. The root
// token cannot be revoked.
func (c *Client) RevokeToken(ctx context.Context, id string) (Token, error) {
	var res *gustv1.RevokeTokenResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewTokenServiceClient(conn).RevokeToken(ctx, &gustv1.RevokeTokenRequest{Id: id})
		return err
	})
	if err != nil {
		return Token{}, err
	}
	return tokenFrom(res.GetToken()), nil
}

// RotatedRoot is a new root token, shown once.
type RotatedRoot struct {
	Token string `json:"token"`
	ID    string `json:"id"`
	// File is the root token file the serving coordinator rewrote, if it
	// keeps one; "" if none.
	File string `json:"file,omitempty"`
}

// RotateRootToken replaces the root token (root token only): the one this
// client calls with is refused from then on. Not retried on another
// coordinator: a retry would fail, the token having changed.
func (c *Client) RotateRootToken(ctx context.Context) (RotatedRoot, error) {
	var res *gustv1.RotateRootTokenResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewTokenServiceClient(conn).RotateRootToken(ctx, &gustv1.RotateRootTokenRequest{})
		return err
	})
	if err != nil {
		return RotatedRoot{}, err
	}
	return RotatedRoot{Token: res.GetToken(), ID: res.GetId(), File: res.GetFile()}, nil
}
