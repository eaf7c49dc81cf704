package api

import (
	"context"
	"log/slog"

	"github.com/gustfaas/gust/coordinator/auth"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/tenant"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
)

// tokenServer serves TokenService (root only: the tenancy interceptor
// refuses tenants).
type tokenServer struct {
	gustv1.UnimplementedTokenServiceServer
	tokens Tokens
	log    *slog.Logger
}

func (s *tokenServer) CreateToken(ctx context.Context, req *gustv1.CreateTokenRequest) (*gustv1.CreateTokenResponse, error) {
	if err := s.tokens.RequireAuth(); err != nil {
		return nil, toStatus(s.log, err)
	}
	if !tenant.Valid(req.GetTenant()) {
		return nil, toStatus(s.log, apierr.New(apierr.InvalidParameterValue,
			"tenant %q must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter or digit", req.GetTenant()))
	}
	tok, err := s.tokens.Create(ctx, req.GetTenant(), false)
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.CreateTokenResponse{Token: tok, Tenant: req.GetTenant(), Id: auth.ID(auth.Hash(tok))}, nil
}

func (s *tokenServer) ListTokens(ctx context.Context, req *gustv1.ListTokensRequest) (*gustv1.ListTokensResponse, error) {
	list, err := s.tokens.List(ctx, req.GetTenant())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	res := &gustv1.ListTokensResponse{}
	for _, t := range list {
		res.Tokens = append(res.Tokens, tokenInfo(t))
	}
	return res, nil
}

func (s *tokenServer) RotateRootToken(ctx context.Context, _ *gustv1.RotateRootTokenRequest) (*gustv1.RotateRootTokenResponse, error) {
	if err := s.tokens.RequireAuth(); err != nil {
		return nil, toStatus(s.log, err)
	}
	tok, file, err := s.tokens.RotateRoot(ctx)
	if err != nil && tok == "" {
		return nil, toStatus(s.log, err)
	}
	if err != nil {
		s.log.Error("root token rotated", "err", err)
	}
	return &gustv1.RotateRootTokenResponse{Token: tok, Id: auth.ID(auth.Hash(tok)), File: file}, nil
}

func (s *tokenServer) RevokeToken(ctx context.Context, req *gustv1.RevokeTokenRequest) (*gustv1.RevokeTokenResponse, error) {
	if req.GetId() == "" {
		return nil, toStatus(s.log, apierr.New(apierr.InvalidParameterValue, "a token id (or the token) is required"))
	}
	tok, err := s.tokens.Revoke(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(s.log, err)
	}
	return &gustv1.RevokeTokenResponse{Token: tokenInfo(tok)}, nil
}

func tokenInfo(t *raftv1.Token) *gustv1.TokenInfo {
	return &gustv1.TokenInfo{Id: auth.ID(t.GetHash()), Tenant: t.GetTenant(), Root: t.GetRoot(), CreatedUnixNano: t.GetCreatedUnixNano()}
}
