package node_test

// Tokens across coordinators: the root token written by the bootstrapping
// coordinator, a tenant's token made through one follower and used at once
// through another, and a coordinator started without --auth that checks
// tokens all the same, its replica holding the cluster's root token.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/nodeauth"
	"github.com/gustfaas/gust/internal/testutil"
	"github.com/gustfaas/gust/node"
)

func TestTokensAcrossCoordinators(t *testing.T) {
	base := t.TempDir()
	var cos []*node.Coordinator
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, co := range cos {
			co.Stop(ctx)
		}
	})
	var seeds []string
	for i, auth := range []bool{true, false, true} { // c2 without --auth
		name := "c" + string(rune('1'+i))
		co, err := node.StartCoordinator(node.CoordinatorConfig{
			Name: name, DataDir: filepath.Join(base, name),
			GRPCAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), GossipAddr: testutil.FreeAddr(t),
			Join: seeds, Bootstrap: i == 0, FastGossip: true, FastRaft: true, Auth: auth, ClusterSecret: testSecret,
		})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		cos = append(cos, co)
		seeds = append(seeds, co.Gossip.LocalAddr())
	}
	var root string
	testutil.Eventually(t, 20*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(base, "c1", "root.token"))
		root = strings.TrimSpace(string(b))
		return err == nil && root != ""
	}, "no root token written")
	testutil.Eventually(t, 30*time.Second, func() bool {
		for _, co := range cos {
			if peers, err := co.Store.Peers(); err != nil || len(peers) != len(cos) || !co.Store.HasRootToken() {
				return false
			}
		}
		return true
	}, "coordinators never all voters with the root token")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	via := func(i int, token string) *client.Client {
		c, err := client.New([]string{cos[i].GRPCAddr()}, token)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	leader := -1
	for i, co := range cos {
		if co.Store.IsLeader() {
			leader = i
		}
	}
	var followers []int
	for i := range cos {
		if i != leader {
			followers = append(followers, i)
		}
	}
	// Made through one follower (forwarded to the leader), used at once
	// through the other: a token unknown to a replica makes it catch up.
	tok, err := via(followers[0], root).CreateToken(ctx, "acme")
	if err != nil {
		t.Fatalf("create token through %s: %v", cos[followers[0]].Name(), err)
	}
	other := via(followers[1], tok)
	if _, err := other.ListFunctions(ctx); err != nil {
		t.Fatalf("new token through %s: %v", cos[followers[1]].Name(), err)
	}
	if _, err := other.CreateToken(ctx, "x"); !isNamed(err, apierr.AccessDenied) {
		t.Errorf("tenant making a token: %v", err)
	}
	// c2 was started without --auth: it checks tokens anyway.
	for i := range cos {
		if _, err := via(i, "").ListFunctions(ctx); !isNamed(err, apierr.Unauthenticated) || !strings.Contains(err.Error(), "unauthenticated") {
			t.Errorf("%s without a token: %v", cos[i].Name(), err)
		}
		if _, err := via(i, "gust_0123").ListFunctions(ctx); !isNamed(err, apierr.Unauthenticated) {
			t.Errorf("%s with an unknown token: %v", cos[i].Name(), err)
		}
	}
}

// testSecret is the cluster secret of these tests' nodes.
var testSecret = nodeauth.Secret("node-test-cluster-secret")

// TestAuthNeedsClosedInternal: --auth on a node whose node-internal
// services anyone could call is refused at start, saying how to fix it.
func TestAuthNeedsClosedInternal(t *testing.T) {
	_, err := node.StartCoordinator(node.CoordinatorConfig{
		Name: "c1", DataDir: t.TempDir(),
		GRPCAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), GossipAddr: testutil.FreeAddr(t),
		Bootstrap: true, Auth: true,
	})
	if !errors.Is(err, node.ErrOpenInternal) || !strings.Contains(err.Error(), "--cluster-secret") || !strings.Contains(err.Error(), "--tls-ca") {
		t.Fatalf("start with --auth and neither TLS nor a secret: %v", err)
	}
	_, err = node.StartCoordinator(node.CoordinatorConfig{
		Name: "c1", DataDir: t.TempDir(),
		GRPCAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), GossipAddr: testutil.FreeAddr(t),
		Bootstrap: true, Auth: true, ClusterSecret: nodeauth.Secret("short"),
	})
	if err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("start with a 5-byte secret: %v", err)
	}
}

func isNamed(err error, name string) bool {
	e, ok := apierr.As(err)
	return ok && e.Name == name
}
