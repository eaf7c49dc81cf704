package e2e

// Issue 14's C1 and H3 against `gustd dev`: it serves no node-internal
// service on any port, and a deleted function's sandboxes never serve the
// function created again under its name.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
	nodev1 "github.com/gustfaas/gust/proto/gust/node/v1"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"github.com/gustfaas/gust/raftstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// The trial minted a token for any tenant through PeerService.Apply on
// `gustd dev --auth`'s gRPC port, with no credentials at all.
func TestDevServesNoNodeServices(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t, "--auth")
	conn, err := grpc.NewClient(d.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hash := sha256.Sum256([]byte("gust_forged"))
	mint, err := raftstore.Encode(raftstore.Command{Type: raftstore.CmdPutToken,
		Msg: &raftv1.PutToken{Token: &raftv1.Token{Hash: hash[:], Tenant: "bob"}}})
	if err != nil {
		t.Fatal(err)
	}
	peer := nodev1.NewPeerServiceClient(conn)
	if _, err := peer.Apply(ctx, &nodev1.ApplyRequest{Command: mint}); status.Code(err) != codes.Unimplemented {
		t.Errorf("PeerService.Apply: %v, want Unimplemented", err)
	}
	if _, err := peer.AppliedIndex(ctx, &nodev1.AppliedIndexRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("PeerService.AppliedIndex: %v, want Unimplemented", err)
	}
	if _, err := nodev1.NewWorkerServiceClient(conn).Drain(ctx, &nodev1.DrainRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("WorkerService.Drain: %v, want Unimplemented", err)
	}
	// The forged token was never stored: it is refused like any unknown one.
	if r := d.gust(t, "--token", "gust_forged", "fn", "ls"); r.code == 0 || !strings.Contains(r.stderr, "UnrecognizedClientException") {
		t.Errorf("the forged token: want refused, got\n%s", r)
	}
}

// sandboxesOf lists the live sandboxes of a function ("name:$LATEST").
func (d *daemon) sandboxesOf(t *testing.T, function string) []string {
	t.Helper()
	var list []struct{ ID, Function string }
	r := d.gust(t, "-o", "json", "sandboxes")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil {
		t.Fatalf("gust sandboxes:\n%s", r)
	}
	var ids []string
	for _, sb := range list {
		if sb.Function == function {
			ids = append(ids, sb.ID)
		}
	}
	return ids
}

// The trial deleted a function, created it again with a new secret, and
// was served by the old warm sandbox: the old code and the old secret.
func TestDeletedFunctionRetired(t *testing.T) {
	testutil.RequireRoot(t)
	d := startDaemon(t)
	envOf := func(e envelope) string {
		var out struct{ Value string }
		decode(t, e.Payload, &out)
		return out.Value
	}
	getV := `{"action":"env","key":"V"}`

	// Idle at the delete: its sandbox goes at once.
	d.deploy(t, "recr", bin.probeDir, "--env", "V=old-secret")
	first := d.mustInvokeJSON(t, "recr", getV)
	if envOf(first) != "old-secret" {
		t.Fatalf("V = %q", envOf(first))
	}
	d.mustGust(t, "fn", "rm", "recr")
	if ids := d.sandboxesOf(t, "recr:$LATEST"); len(ids) != 0 {
		t.Errorf("after fn rm, recr's sandboxes are still there: %v", ids)
	}
	d.deploy(t, "recr", bin.probeDir, "--env", "V=new")
	again := d.mustInvokeJSON(t, "recr", getV)
	if envOf(again) != "new" || !again.ColdStart || again.Sandbox == first.Sandbox {
		t.Fatalf("re-created recr: V=%q cold=%v sandbox %s (the deleted one's: %s)", envOf(again), again.ColdStart, again.Sandbox, first.Sandbox)
	}

	// Busy at the delete: re-created at once while the old one still
	// runs, the new function gets a sandbox of its own, and the old one
	// is destroyed when its invocation ends rather than kept warm.
	d.deploy(t, "busy2", bin.probeDir, "--env", "V=old-secret")
	d.mustInvokeJSON(t, "busy2", getV) // a warm sandbox to reuse below
	done := make(chan envelope, 1)
	go func() {
		r, err := runGust(d.grpc, "", "-o", "json", "invoke", "busy2", "--payload", `{"action":"sleep","n":2500}`)
		var e envelope
		if err == nil {
			json.Unmarshal([]byte(r.stdout), &e)
		}
		done <- e
	}()
	var old []string
	testutil.Eventually(t, 10*time.Second, func() bool {
		old = d.sandboxesOf(t, "busy2:$LATEST")
		return len(old) == 1
	}, "the long invocation never started")
	d.mustGust(t, "fn", "rm", "busy2")
	d.deploy(t, "busy2", bin.probeDir, "--env", "V=new")
	fresh := d.mustInvokeJSON(t, "busy2", getV)
	if envOf(fresh) != "new" || !fresh.ColdStart || slices.Contains(old, fresh.Sandbox) {
		t.Fatalf("re-created busy2 while the old ran: V=%q cold=%v sandbox %s (old %v)", envOf(fresh), fresh.ColdStart, fresh.Sandbox, old)
	}
	slow := <-done
	if slow.Sandbox != old[0] {
		t.Fatalf("the long invocation ran in %q, want %q", slow.Sandbox, old[0])
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return !slices.Contains(d.sandboxesOf(t, "busy2:$LATEST"), old[0])
	}, "the deleted function's busy sandbox was kept after its invocation")
	if again := d.mustInvokeJSON(t, "busy2", getV); envOf(again) != "new" {
		t.Fatalf("busy2 after the old sandbox ended: V=%q", envOf(again))
	}
}
