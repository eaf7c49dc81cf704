package auth

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gustfaas/gust/internal/apierr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestFromAuthorization(t *testing.T) {
	cases := []struct{ header, want string }{
		{"", ""},
		{"Bearer gust_abc", "gust_abc"},
		{"bearer  gust_abc ", "gust_abc"},
		{"Basic dXNlcjpwYXNz", ""},
		// What aws-sdk-go-v2 sends, with the token as the access key id.
		{"AWS4-HMAC-SHA256 Credential=gust_abc/20261201/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00ff", "gust_abc"},
		{"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00ff", ""},
		{"Bearer", ""},
	}
	for _, c := range cases {
		if got := FromAuthorization(c.header); got != c.want {
			t.Errorf("FromAuthorization(%q) = %q, want %q", c.header, got, c.want)
		}
	}
}

func testChecker(t *testing.T) (*Checker, string, string) {
	t.Helper()
	root, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	acme, _ := NewToken()
	if root == acme || !strings.HasPrefix(root, tokenPrefix) || strings.ContainsAny(root, "/,= ") {
		t.Fatalf("tokens %q %q", root, acme)
	}
	known := map[string]Principal{string(Hash(root)): {Root: true}, string(Hash(acme)): {Tenant: "acme"}}
	return New(func(_ context.Context, h []byte) (Principal, bool) {
		p, ok := known[string(h)]
		return p, ok
	}, nil), root, acme
}

func TestAuthenticate(t *testing.T) {
	c, root, acme := testChecker(t)
	ctx := context.Background()
	for _, tc := range []struct {
		header string
		want   Principal
		ok     bool
	}{
		{"Bearer " + root, Principal{Root: true}, true},
		{"Bearer " + acme, Principal{Tenant: "acme"}, true},
		{"AWS4-HMAC-SHA256 Credential=" + acme + "/20261201/us-east-1/lambda/aws4_request, Signature=1", Principal{Tenant: "acme"}, true},
		{"", Principal{}, false},
		{"Bearer gust_0000", Principal{}, false},
	} {
		p, err := c.Authenticate(ctx, tc.header)
		if tc.ok != (err == nil) || p != tc.want {
			t.Errorf("%q: %+v, %v", tc.header, p, err)
		}
		if err != nil {
			e, ok := apierr.As(err)
			if !ok || e.Name != apierr.Unauthenticated || !strings.HasPrefix(e.Message, "unauthenticated") {
				t.Errorf("%q: refusal %v", tc.header, err)
			}
		}
	}
}

// The interceptor checks gust.v1 calls only, and hands the handler the
// caller's principal.
func TestUnaryInterceptor(t *testing.T) {
	c, _, acme := testChecker(t)
	in := c.Unary()
	var seen Principal
	handler := func(ctx context.Context, _ any) (any, error) {
		seen, _ = FromContext(ctx)
		return "ok", nil
	}
	call := func(method, header string) error {
		ctx := context.Background()
		if header != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", header))
		}
		_, err := in(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, handler)
		return err
	}
	if err := call("/gust.v1.FunctionService/ListFunctions", ""); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("no token: %v", err)
	}
	if err := call("/gust.v1.InvokeService/Invoke", "Bearer nope"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("bad token: %v", err)
	}
	if err := call("/gust.v1.InvokeService/Invoke", "Bearer "+acme); err != nil || seen.Tenant != "acme" {
		t.Fatalf("acme: %v %+v", err, seen)
	}
	// While auth is off (no --auth, no root token yet) nothing is checked.
	off := New(c.lookup, func() bool { return false }).Unary()
	if _, err := off(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/gust.v1.FunctionService/ListFunctions"}, handler); err != nil {
		t.Errorf("auth off: %v", err)
	}
	for _, open := range []string{"/gust.node.v1.PeerService/Apply", "/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
		if err := call(open, ""); err != nil {
			t.Errorf("%s: %v", open, err)
		}
	}
}

func TestHTTP(t *testing.T) {
	c, root, acme := testChecker(t)
	fail := func(w http.ResponseWriter, e *apierr.Error) {
		w.Header().Set("X-Amzn-ErrorType", e.Name)
		w.WriteHeader(e.HTTPStatus())
		w.Write([]byte(e.Message))
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		w.Write([]byte("tenant=" + p.Tenant))
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", RequireRoot(ok, fail))
	mux.Handle("/", ok)
	h := c.HTTP(mux, func(r *http.Request) bool { return r.URL.Path == "/healthz" }, fail)
	for _, tc := range []struct {
		path, header string
		status       int
		body         string
	}{
		{"/healthz", "", 200, "tenant="},
		{"/2015-03-31/functions/", "", 401, "unauthenticated"},
		{"/2015-03-31/functions/", "Bearer wrong", 401, "unauthenticated"},
		{"/2015-03-31/functions/", "Bearer " + acme, 200, "tenant=acme"},
		{"/metrics", "Bearer " + acme, 403, "root"},
		{"/metrics", "Bearer " + root, 200, "tenant="},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || !bytes.Contains(w.Body.Bytes(), []byte(tc.body)) {
			t.Errorf("%s %q: %d %q", tc.path, tc.header, w.Code, w.Body)
		}
	}
}
