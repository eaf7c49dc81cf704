package cluster_test

// Issue 14's C1, against real processes: with --auth and a cluster secret
// but no TLS, nothing that lacks the secret reaches a node-internal
// service. The attacks are the trial's: mint a token through
// PeerService.Apply, read code by digest, take quota leases, drain the
// worker, invoke on it directly.

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/testutil"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"github.com/gustfaas/gust/raftstore"
	"github.com/gustfaas/gust/test/proccluster"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func TestClusterSecret(t *testing.T) {
	testutil.RequireRoot(t)
	secret := gustd(t, "keygen")

	// --auth with neither TLS nor a secret is refused at start, and the
	// message says what to do.
	bad := bins.NewCoordinator(t, "c0", "")
	out, err := exec.Command(bins.Path("gustd"), append(bad.Args, "--auth")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--cluster-secret") || !strings.Contains(string(out), "gustd keygen") {
		t.Fatalf("gustd coordinator --auth without TLS or a secret: %v\n%s", err, out)
	}

	c1 := bins.NewCoordinator(t, "c1", "")
	c1.Args = append(c1.Args, "--auth", "--cluster-secret", secret)
	w1 := bins.NewWorker(t, "w1", c1.Gossip)
	w1.Args = append(w1.Args, "--cluster-secret", secret)
	c := bins.Start(t, []*node{c1}, []*node{w1}, proccluster.Options{})
	var root string
	testutil.Eventually(t, 30*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(c1.DataDir, "root.token"))
		root = strings.TrimSpace(string(b))
		return err == nil && root != ""
	}, "c1 wrote no root token")
	t.Setenv("GUST_TOKEN", root)
	c.WaitHealthy(t, 45*time.Second, 2, 1)

	// Nodes that share the secret work together: the worker fetches code
	// from c1's node port, and c1 reaches the worker.
	if _, stderr, code := bins.Gust(t, c1.GRPC, "fn", "deploy", "hello", "--code", bins.Path("fn")); code != 0 {
		t.Fatalf("deploy: %s", stderr)
	}
	if _, err := invoke(t, c1.GRPC, "hello"); err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var fn struct {
		CodeDigest string `json:"code_digest"`
	}
	if !bins.GustJSON(t, c1.GRPC, &fn, "fn", "get", "hello") || fn.CodeDigest == "" {
		t.Fatal("fn get hello")
	}
	tokens := func() int {
		var list []map[string]any
		if !bins.GustJSON(t, c1.GRPC, &list, "token", "ls") {
			t.Fatal("token ls")
		}
		return len(list)
	}
	before := tokens()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mint, err := raftstore.Encode(raftstore.Command{Type: raftstore.CmdPutToken, Msg: &raftv1.PutToken{Token: &raftv1.Token{
		Hash: func() []byte { h := sha256.Sum256([]byte("gust_forged")); return h[:] }(), Tenant: "acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(addr string, opts ...grpc.DialOption) *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	withSecret := func(s string) grpc.DialOption {
		return grpc.WithContextDialer(nodeauth.Dialer(nodeauth.Secret(s), nodeauth.GRPC))
	}
	// What the attacker can reach: the user-facing port (which serves no
	// node service), and the node ports with no secret or a wrong one.
	userPort := dial(c1.GRPC)
	if _, err := nodev1.NewPeerServiceClient(userPort).Apply(ctx, &nodev1.ApplyRequest{Command: mint}); status.Code(err) != codes.Unimplemented {
		t.Errorf("PeerService.Apply on the user-facing port: %v, want Unimplemented", err)
	}
	for name, conn := range map[string]*grpc.ClientConn{
		"no handshake":     dial(c1.Raft),
		"no secret":        dial(c1.Raft, withSecret("")),
		"a wrong secret":   dial(c1.Raft, withSecret("not-the-cluster-secret")),
		"the right secret": dial(c1.Raft, withSecret(secret)),
	} {
		peer := nodev1.NewPeerServiceClient(conn)
		_, applyErr := peer.Apply(ctx, &nodev1.ApplyRequest{Command: mint})
		_, leaseErr := peer.RenewLeases(ctx, &nodev1.RenewLeasesRequest{Coordinator: "ghost",
			Demands: []*nodev1.PoolDemand{{Pool: "", Want: 20, MaxTimeoutMs: 900000}}})
		var codeErr error
		if stream, err := peer.GetCode(ctx, &nodev1.GetCodeRequest{Digest: fn.CodeDigest}); err != nil {
			codeErr = err
		} else {
			_, codeErr = stream.Recv()
		}
		if name == "the right secret" {
			// The control: the same calls from a node are answered (the
			// forged token is what a node may write; nodes are trusted).
			if codeErr != nil || leaseErr != nil {
				t.Fatalf("with the cluster secret: GetCode %v, RenewLeases %v", codeErr, leaseErr)
			}
			continue
		}
		for call, err := range map[string]error{"Apply": applyErr, "RenewLeases": leaseErr, "GetCode": codeErr} {
			if err == nil {
				t.Errorf("PeerService.%s with %s was answered", call, name)
			}
		}
	}
	if got := tokens(); got != before+1 {
		// +1: the control call above, made with the secret, minted one.
		t.Errorf("tokens: %d before, %d after; only the node's Apply may add one", before, got)
	}

	// The worker's port: nothing without the secret.
	for name, conn := range map[string]*grpc.ClientConn{
		"no handshake":   dial(w1.GRPC),
		"a wrong secret": dial(w1.GRPC, withSecret("not-the-cluster-secret")),
	} {
		wc := nodev1.NewWorkerServiceClient(conn)
		if _, err := wc.Drain(ctx, &nodev1.DrainRequest{}); err == nil {
			t.Errorf("WorkerService.Drain with %s was answered", name)
		}
		if _, err := wc.ListSandboxes(ctx, &nodev1.ListSandboxesRequest{}); err == nil {
			t.Errorf("WorkerService.ListSandboxes with %s was answered", name)
		}
		stream, err := wc.Invoke(ctx, &nodev1.InvokeRequest{Function: &nodev1.FunctionSpec{Name: "hello", Version: "$LATEST",
			Revision: 1, CodeDigest: strings.Repeat("0", 64), MemoryMb: 128, TimeoutMs: 3000}, RequestId: "forged"})
		if err == nil {
			_, err = stream.Recv()
		}
		if err == nil {
			t.Errorf("WorkerService.Invoke with %s was answered", name)
		}
	}
	// Still serving, not drained.
	if _, err := invoke(t, c1.GRPC, "hello"); err != nil {
		t.Fatalf("invoke after the attacks: %v", err)
	}
	if !strings.Contains(w1.Log(), "did not prove the cluster secret") {
		t.Error("the worker did not log the refused connections")
	}
}
