package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Files names the PEM files given by --tls-ca, --tls-cert and --tls-key.
type Files struct {
	// CA is the cluster CA certificate every peer is verified against.
	CA string
	// Cert and Key are this process's certificate and private key.
	Cert, Key string
}

// Empty reports whether no file is named: TLS is off.
func (f Files) Empty() bool { return f.CA == "" && f.Cert == "" && f.Key == "" }

// TLS is loaded transport security material. The nil *TLS is valid and
// means plaintext.
type TLS struct {
	pool *x509.CertPool
	cert *tls.Certificate // nil for a client that only verifies servers
}

// Load reads the files. No files at all is (nil, nil): TLS off. A CA is
// required with anything else, and a certificate comes with its key.
func Load(f Files) (*TLS, error) {
	if f.Empty() {
		return nil, nil
	}
	if f.CA == "" {
		return nil, errors.New("tlsconf: --tls-ca is required with --tls-cert and --tls-key")
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("tlsconf: give --tls-cert and --tls-key together")
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tlsconf: %s holds no PEM certificate", f.CA)
	}
	t := &TLS{pool: pool}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: load certificate: %w", err)
		}
		t.cert = &cert
	}
	return t, nil
}

// LoadNode is Load for a coordinator or worker: all three files or none,
// and the certificate must be a node certificate signed by the CA, so a
// misconfigured node fails at start rather than at its first peer.
func LoadNode(f Files) (*TLS, error) {
	if f.Empty() {
		return nil, nil
	}
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, errors.New("tlsconf: a node needs --tls-ca, --tls-cert and --tls-key together")
	}
	t, err := Load(f)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(t.cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tlsconf: parse certificate: %w", err)
	}
	if !slices.Contains(leaf.Subject.OrganizationalUnit, NodeOU) {
		return nil, fmt.Errorf("tlsconf: %s is not a node certificate (issue one without --client)", f.Cert)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: t.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("tlsconf: %s is not valid under %s: %w", f.Cert, f.CA, err)
	}
	return t, nil
}

// ServerConfig is a listener's TLS: TLS 1.3, this process's certificate,
// client certificates checked against the CA as auth says.
func (t *TLS) ServerConfig(auth tls.ClientAuthType) *tls.Config {
	if t == nil {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS13, ClientCAs: t.pool, ClientAuth: auth}
	if t.cert != nil {
		c.Certificates = []tls.Certificate{*t.cert}
	}
	return c
}

// NodeServerConfig is a node-internal listener's TLS (Raft): only a
// verified node certificate gets through the handshake.
func (t *TLS) NodeServerConfig() *tls.Config {
	c := t.ServerConfig(tls.RequireAndVerifyClientCert)
	if c == nil {
		return nil
	}
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if !IsNode(cs) {
			return errors.New("tlsconf: peer certificate is not a gust node certificate")
		}
		return nil
	}
	return c
}

// ClientConfig is a dialer's TLS: servers verified against the CA, and this
// process's certificate offered, if it has one. The server name is taken
// from the dialled address by gRPC; other dialers set ServerName.
func (t *TLS) ClientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: t.pool}
	if t.cert != nil {
		c.Certificates = []tls.Certificate{*t.cert}
	}
	return c
}

// ClientCreds are gRPC dial credentials: TLS, or plaintext for nil.
func (t *TLS) ClientCreds() credentials.TransportCredentials {
	if t == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(t.ClientConfig())
}

// ServerOptions are a gRPC server's TLS options: credentials with the
// given client authentication, and interceptors that refuse any method
// for which nodeOnly is true unless the caller presented a verified node
// certificate. Nil for plaintext.
func (t *TLS) ServerOptions(auth tls.ClientAuthType, nodeOnly func(fullMethod string) bool) []grpc.ServerOption {
	if t == nil {
		return nil
	}
	check := func(ctx context.Context, method string) error {
		if !nodeOnly(method) {
			return nil
		}
		p, ok := peer.FromContext(ctx)
		if !ok {
			return status.Error(codes.Unauthenticated, "no peer information")
		}
		info, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok || len(info.State.VerifiedChains) == 0 {
			return status.Errorf(codes.Unauthenticated, "%s is node-internal: present a gust node certificate", method)
		}
		if !IsNode(info.State) {
			return status.Errorf(codes.PermissionDenied, "%s is node-internal: a client certificate may not call it", method)
		}
		return nil
	}
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(t.ServerConfig(auth))),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}

// IsNode reports whether a connection's peer presented a certificate that
// verified against the CA and is a node certificate.
func IsNode(cs tls.ConnectionState) bool {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return false
	}
	return slices.Contains(cs.VerifiedChains[0][0].Subject.OrganizationalUnit, NodeOU)
}
