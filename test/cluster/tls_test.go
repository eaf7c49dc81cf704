package cluster_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/internal/tlsconf"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	"github.com/gustfaas/gust/test/proccluster"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// security is a cluster CA made with gustd ca, a client certificate for
// the CLI, and a gossip key from gustd keygen. Its nil value is plaintext.
type security struct {
	dir, ca, gossipKey    string
	clientCert, clientKey string
}

func gustd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(bins.Path("gustd"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gustd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func newSecurity(t *testing.T) *security {
	dir := t.TempDir()
	gustd(t, "ca", "init", "--dir", dir)
	s := &security{dir: dir, ca: filepath.Join(dir, tlsconf.CAFile), gossipKey: gustd(t, "keygen")}
	gustd(t, "ca", "issue", "--dir", dir, "--name", "cli", "--client")
	s.clientCert, s.clientKey = filepath.Join(dir, "cli.pem"), filepath.Join(dir, "cli-key.pem")
	return s
}

// nodeArgs issues name's certificate (once) and returns its flags.
func (s *security) nodeArgs(t *testing.T, name string) []string {
	if s == nil {
		return nil
	}
	cert := filepath.Join(s.dir, name+".pem")
	if _, err := os.Stat(cert); err != nil {
		gustd(t, "ca", "issue", "--dir", s.dir, "--name", name, "--host", "127.0.0.1,localhost")
	}
	return []string{"--tls-ca", s.ca, "--tls-cert", cert, "--tls-key", filepath.Join(s.dir, name+"-key.pem"), "--gossip-key", s.gossipKey}
}

// useForCLI makes every gust run of the test use TLS with the client
// certificate, through GUST_TLS_* as a user would set them.
func (s *security) useForCLI(t *testing.T) {
	if s == nil {
		return
	}
	t.Setenv("GUST_TLS_CA", s.ca)
	t.Setenv("GUST_TLS_CERT", s.clientCert)
	t.Setenv("GUST_TLS_KEY", s.clientKey)
}

func (s *security) load(t *testing.T, f tlsconf.Files) *tlsconf.TLS {
	t.Helper()
	c, err := tlsconf.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// plainGust runs the CLI without any TLS setting.
func plainGust(addr string, args ...string) (string, error) {
	cmd := exec.Command(bins.Path("gust"), append([]string{"--addr", addr}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GUST_TLS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// The cluster of issue 3 with mTLS between all nodes, TLS on the client
// APIs and encrypted gossip passes the same checks; plaintext and
// non-node certificates are refused where they must be, and a node with
// another gossip key never joins.
func TestClusterTLS(t *testing.T) {
	sec := newSecurity(t)
	c := startClusterWith(t, sec)
	c.WaitHealthy(t, 45*time.Second, 5, 3)
	c1, w1 := c.Coordinators[0], c.Workers[0]

	t.Run("plaintext refused", func(t *testing.T) {
		if out, err := plainGust(c1.GRPC, "nodes"); err == nil {
			t.Fatalf("a plaintext CLI was answered:\n%s", out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, addr := range []string{c1.GRPC, w1.GRPC} {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			conn.Close()
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("plaintext gRPC health check of %s: %v, want a refused connection", addr, err)
			}
		}
		if resp, err := http.Get("http://" + c1.HTTP + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			t.Fatal("plaintext HTTP answered 200")
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: sec.load(t, tlsconf.Files{CA: sec.ca}).ClientConfig()}}
		resp, err := hc.Get("https://" + c1.HTTP + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTPS /healthz with the CA: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("raft needs a node certificate", func(t *testing.T) {
		// TLS 1.3 reports a refused client certificate on the first read;
		// an accepted connection stays silent (Raft waits for an RPC) until
		// the deadline. A refusal arrives at once, so wait long for those.
		handshake := func(f tlsconf.Files, wait time.Duration) error {
			cfg := sec.load(t, f).ClientConfig()
			cfg.ServerName = "127.0.0.1"
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			raw, err := nodeauth.Dial(ctx, c1.Raft, nil, nodeauth.Raft) // no --cluster-secret here
			if err != nil {
				return err
			}
			conn := tls.Client(raw, cfg)
			defer conn.Close()
			if err := conn.HandshakeContext(ctx); err != nil {
				return err
			}
			conn.SetReadDeadline(time.Now().Add(wait))
			if _, err = conn.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
				return nil // still open: accepted, Raft waits for an RPC
			}
			return err
		}
		node := tlsconf.Files{CA: sec.ca, Cert: filepath.Join(sec.dir, "c1.pem"), Key: filepath.Join(sec.dir, "c1-key.pem")}
		if err := handshake(node, time.Second); err != nil {
			t.Fatalf("Raft refused a node certificate: %v", err)
		}
		if err := handshake(tlsconf.Files{CA: sec.ca, Cert: sec.clientCert, Key: sec.clientKey}, 10*time.Second); err == nil {
			t.Fatal("Raft accepted a client certificate")
		}
		if err := handshake(tlsconf.Files{CA: sec.ca}, 10*time.Second); err == nil {
			t.Fatal("Raft accepted a connection without a certificate")
		}
	})

	t.Run("node-internal services need a node certificate", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, tc := range []struct {
			name  string
			files tlsconf.Files
			want  codes.Code
		}{
			{"client certificate", tlsconf.Files{CA: sec.ca, Cert: sec.clientCert, Key: sec.clientKey}, codes.PermissionDenied},
			{"no certificate", tlsconf.Files{CA: sec.ca}, codes.Unauthenticated},
		} {
			conn, err := grpc.NewClient(c1.Raft, grpc.WithTransportCredentials(sec.load(t, tc.files).ClientCreds()),
				grpc.WithContextDialer(nodeauth.Dialer(nil, nodeauth.GRPC)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = nodev1.NewPeerServiceClient(conn).AppliedIndex(ctx, &nodev1.AppliedIndexRequest{})
			conn.Close()
			if err == nil {
				t.Fatalf("PeerService answered a caller with %s", tc.name)
			}
		}
		// The user-facing port does not serve PeerService at all, even to
		// a node certificate.
		node := tlsconf.Files{CA: sec.ca, Cert: filepath.Join(sec.dir, "c1.pem"), Key: filepath.Join(sec.dir, "c1-key.pem")}
		conn, err := grpc.NewClient(c1.GRPC, grpc.WithTransportCredentials(sec.load(t, node).ClientCreds()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = nodev1.NewPeerServiceClient(conn).AppliedIndex(ctx, &nodev1.AppliedIndexRequest{})
		conn.Close()
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("PeerService on the user-facing port: %v, want Unimplemented", err)
		}
		// A worker does not even finish the handshake without one.
		conn, err = grpc.NewClient(w1.GRPC, grpc.WithTransportCredentials(sec.load(t, tlsconf.Files{CA: sec.ca, Cert: sec.clientCert, Key: sec.clientKey}).ClientCreds()),
			grpc.WithContextDialer(nodeauth.Dialer(nil, nodeauth.GRPC)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = nodev1.NewWorkerServiceClient(conn).ListSandboxes(ctx, &nodev1.ListSandboxesRequest{})
		conn.Close()
		if err == nil {
			t.Fatal("a worker answered a client certificate")
		}
	})

	t.Run("wrong gossip key does not join", func(t *testing.T) {
		other := bins.NewCoordinator(t, "c9", c1.Gossip)
		args := sec.nodeArgs(t, "c9")
		args[len(args)-1] = gustd(t, "keygen")
		other.Args = append(other.Args, args...)
		other.Start(t)
		defer other.Stop(t)
		// c1 logs each gossip stream it could not decrypt: then c9 has tried.
		testutil.Eventually(t, 15*time.Second, func() bool {
			return strings.Contains(c1.Log(), "no installed keys could decrypt")
		}, "c1 never refused c9's gossip")
		var nodes []proccluster.Member
		for _, co := range c.Coordinators {
			if !bins.GustJSON(t, co.GRPC, &nodes, "nodes") {
				t.Fatalf("gust nodes on %s failed", co.Name)
			}
			for _, n := range nodes {
				if n.Name == "c9" {
					t.Fatalf("%s lists c9, which has another gossip key: %+v", co.Name, nodes)
				}
			}
		}
		if !bins.GustJSON(t, other.GRPC, &nodes, "nodes") || len(nodes) != 1 {
			t.Fatalf("c9 sees %+v, want only itself", nodes)
		}
	})

	checkCluster(t, c)
}
