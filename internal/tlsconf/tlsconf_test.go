package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// newPKI makes a CA directory with a node and a client certificate.
func newPKI(t *testing.T) (string, Files, Files) {
	t.Helper()
	dir := t.TempDir()
	if err := InitCA(dir, ""); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, CAFile)
	nc, nk, err := Issue(dir, dir, IssueRequest{Name: "n1", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	cc, ck, err := Issue(dir, dir, IssueRequest{Name: "cli", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return dir, Files{CA: ca, Cert: nc, Key: nk}, Files{CA: ca, Cert: cc, Key: ck}
}

func mustLoad(t *testing.T, f Files) *TLS {
	t.Helper()
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoad(t *testing.T) {
	dir, node, client := newPKI(t)
	if c, err := Load(Files{}); c != nil || err != nil {
		t.Fatalf("no files: %v %v, want plaintext", c, err)
	}
	if _, err := LoadNode(node); err != nil {
		t.Fatalf("node certificate: %v", err)
	}
	if _, err := LoadNode(client); err == nil {
		t.Fatal("a client certificate was accepted as a node's")
	}
	if _, err := LoadNode(Files{CA: node.CA}); err == nil {
		t.Fatal("a node without a certificate was accepted")
	}
	if _, err := Load(Files{Cert: node.Cert, Key: node.Key}); err == nil {
		t.Fatal("a certificate without a CA was accepted")
	}
	other := t.TempDir()
	if err := InitCA(other, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNode(Files{CA: filepath.Join(other, CAFile), Cert: node.Cert, Key: node.Key}); err == nil {
		t.Fatal("a node certificate of another CA was accepted")
	}
	if err := InitCA(dir, ""); !errors.Is(err, ErrExists) {
		t.Fatalf("second InitCA: %v, want ErrExists", err)
	}
	if _, _, err := Issue(dir, dir, IssueRequest{Name: "n1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Issue: %v, want ErrExists", err)
	}
}

// The node-internal listener (Raft): a node certificate of this CA gets
// through; another CA's, a client certificate, none, or plaintext do not.
func TestNodeListener(t *testing.T) {
	_, node, client := newPKI(t)
	other := t.TempDir()
	if err := InitCA(other, ""); err != nil {
		t.Fatal(err)
	}
	oc, ok, err := Issue(other, other, IssueRequest{Name: "n1", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := mustLoad(t, node)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.NodeServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("ok"))
				}
			}()
		}
	}()
	addr := ln.Addr().String()
	dial := func(cfg *tls.Config) error {
		cfg.ServerName = "127.0.0.1"
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if string(b) != "ok" {
			return errors.New("refused")
		}
		return nil
	}
	if err := dial(srv.ClientConfig()); err != nil {
		t.Fatalf("node certificate refused: %v", err)
	}
	if err := dial(mustLoad(t, client).ClientConfig()); err == nil {
		t.Fatal("client certificate accepted on a node-internal listener")
	}
	if err := dial(mustLoad(t, Files{CA: node.CA}).ClientConfig()); err == nil {
		t.Fatal("no client certificate accepted")
	}
	foreign := mustLoad(t, Files{CA: node.CA, Cert: oc, Key: ok})
	if err := dial(foreign.ClientConfig()); err == nil {
		t.Fatal("another CA's certificate accepted")
	}
	// The dialer side: a server of another CA is refused.
	if _, err := tls.Dial("tcp", addr, mustLoad(t, Files{CA: filepath.Join(other, CAFile)}).ClientConfig()); err == nil {
		t.Fatal("server certificate of this CA accepted by a client of another CA")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("plaintext\n"))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); strings.Contains(string(b), "ok") {
		t.Fatal("plaintext accepted")
	}
	c.Close()
}

// A gRPC server with ServerOptions: user methods take TLS clients with or
// without a certificate; node-only methods need a node certificate;
// plaintext is refused.
func TestGRPCServerOptions(t *testing.T) {
	_, node, client := newPKI(t)
	srv := mustLoad(t, node)
	nodeOnly := func(m string) bool { return strings.HasSuffix(m, "/Watch") }
	gs := grpc.NewServer(srv.ServerOptions(tls.VerifyClientCertIfGiven, nodeOnly)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	defer gs.Stop()
	addr := ln.Addr().String()

	call := func(creds *TLS, plaintext, watch bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		opt := grpc.WithTransportCredentials(creds.ClientCreds())
		if plaintext {
			opt = grpc.WithTransportCredentials(insecure.NewCredentials())
		}
		conn, err := grpc.NewClient(addr, opt)
		if err != nil {
			return err
		}
		defer conn.Close()
		hc := healthpb.NewHealthClient(conn)
		if !watch {
			_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}
		s, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	anon := mustLoad(t, Files{CA: node.CA})
	for _, tc := range []struct {
		name      string
		creds     *TLS
		plaintext bool
		watch     bool
		want      codes.Code
	}{
		{"node, user method", srv, false, false, codes.OK},
		{"node, node method", srv, false, true, codes.OK},
		{"client cert, user method", mustLoad(t, client), false, false, codes.OK},
		{"no cert, user method", anon, false, false, codes.OK},
		{"client cert, node method", mustLoad(t, client), false, true, codes.PermissionDenied},
		{"no cert, node method", anon, false, true, codes.Unauthenticated},
		{"plaintext", nil, true, false, codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(call(tc.creds, tc.plaintext, tc.watch)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
