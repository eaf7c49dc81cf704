package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/internal/apierr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Principal is who a call acts for.
type Principal struct {
	// Tenant owns what the call creates and is all it may see; "" is root's.
	Tenant string
	// Root may call everything, cluster administration included.
	Root bool
}

// Lookup finds the principal of a token by the token's sha256.
type Lookup func(ctx context.Context, hash []byte) (Principal, bool)

// tokenPrefix makes gust tokens recognisable (in logs, in secret scanners).
const tokenPrefix = "gust_"

// NewToken returns a new random token: 192 bits, hex, so it is also a valid
// SigV4 access key id (no '/', ',' or '=').
func NewToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return tokenPrefix + hex.EncodeToString(b), nil
}

// Hash is what the cluster stores of a token.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// ID names a token by its hash in lists and revocations: 16 hex digits,
// which do not reveal the token.
func ID(hash []byte) string {
	if len(hash) < 8 {
		return hex.EncodeToString(hash)
	}
	return hex.EncodeToString(hash[:8])
}

// IsToken reports whether s looks like a token rather than its id.
func IsToken(s string) bool { return strings.HasPrefix(s, tokenPrefix) }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal an authenticated call carries; ok is
// false when auth is off (or the call was not checked).
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// CallerTenant returns the tenant whose names a call uses, and whether it
// is a tenant's (not root's, and auth on).
func CallerTenant(ctx context.Context) (string, bool) {
	p, ok := FromContext(ctx)
	if !ok || p.Root {
		return "", false
	}
	return p.Tenant, true
}

// FromAuthorization extracts the token from an Authorization header value:
// "Bearer TOKEN", or the AWS SigV4 form the Lambda SDK sends,
// "AWS4-HMAC-SHA256 Credential=TOKEN/DATE/REGION/lambda/aws4_request, …",
// where the token is the access key id. The SigV4 signature is not
// verified: the token is the secret here, sent as the key id; the secret
// access key the SDK signs with is not known to the cluster (use TLS, as
// for a bearer token).
func FromAuthorization(v string) string {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return strings.TrimSpace(rest)
	case scheme == "AWS4-HMAC-SHA256":
		for _, part := range strings.Split(rest, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == "Credential" {
				id, _, _ := strings.Cut(val, "/")
				return id
			}
		}
	}
	return ""
}

// Checker authenticates calls against a Lookup.
type Checker struct {
	lookup  Lookup
	enabled func() bool
}

// New returns a Checker that checks calls while enabled says so (nil:
// always) and lets every call through unchecked otherwise.
func New(lookup Lookup, enabled func() bool) *Checker {
	if enabled == nil {
		enabled = func() bool { return true }
	}
	return &Checker{lookup: lookup, enabled: enabled}
}

// Authenticate returns the principal of an Authorization header value, or
// an Unauthenticated error whose message starts "unauthenticated".
func (c *Checker) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	tok := FromAuthorization(authorization)
	if tok == "" {
		return Principal{}, apierr.New(apierr.Unauthenticated, "unauthenticated: this cluster requires an API token (--token or GUST_TOKEN; over HTTP, Authorization: Bearer TOKEN or the token as the AWS access key id)")
	}
	p, ok := c.lookup(ctx, Hash(tok))
	if !ok {
		return Principal{}, apierr.New(apierr.Unauthenticated, "unauthenticated: the API token is not valid on this cluster")
	}
	return p, nil
}

// checked reports whether a gRPC method is user-facing (package gust.v1).
func checked(fullMethod string) bool { return strings.HasPrefix(fullMethod, "/gust.v1.") }

func (c *Checker) grpcAuth(ctx context.Context) (context.Context, error) {
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	p, err := c.Authenticate(ctx, header)
	if err != nil {
		e, _ := apierr.As(err)
		return nil, e.GRPCStatus().Err()
	}
	return WithPrincipal(ctx, p), nil
}

// Unary checks unary calls of the user-facing services.
func (c *Checker) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !checked(info.FullMethod) || !c.enabled() {
			return handler(ctx, req)
		}
		ctx, err := c.grpcAuth(ctx)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream checks streaming calls of the user-facing services.
func (c *Checker) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !checked(info.FullMethod) || !c.enabled() {
			return handler(srv, ss)
		}
		ctx, err := c.grpcAuth(ss.Context())
		if err != nil {
			return err
		}
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

// ctxStream is a ServerStream with the authenticated context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// HTTP checks every request except those public says are open (health
// probes), answering a refusal with fail.
func (c *Checker) HTTP(next http.Handler, public func(*http.Request) bool, fail func(http.ResponseWriter, *apierr.Error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.enabled() || (public != nil && public(r)) {
			next.ServeHTTP(w, r)
			return
		}
		p, err := c.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			e, _ := apierr.As(err)
			fail(w, e)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// RequireRoot refuses a request whose principal is not root (403).
func RequireRoot(next http.Handler, fail func(http.ResponseWriter, *apierr.Error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := FromContext(r.Context()); ok && !p.Root {
			fail(w, apierr.New(apierr.AccessDenied, "only the root token may read %s", r.URL.Path))
			return
		}
		next.ServeHTTP(w, r)
	})
}
