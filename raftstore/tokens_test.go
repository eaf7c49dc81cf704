package raftstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
)

// Tokens apply, refuse what they must (a second root, a duplicate, a bad
// hash, revoking root or an unknown token), and survive a snapshot and
// restore.
func TestTokensApplyAndRoundTrip(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	put := func(tok *raftv1.Token) error {
		_, err := s.Apply(ctx, Command{Type: CmdPutToken, Msg: &raftv1.PutToken{Token: tok}})
		return err
	}
	if s.HasRootToken() {
		t.Fatal("fresh store has a root token")
	}
	cases := []struct {
		tok     *raftv1.Token
		refused bool
	}{
		{&raftv1.Token{Hash: hash("root"), Root: true}, false},
		{&raftv1.Token{Hash: hash("a"), Tenant: "acme"}, false},
		{&raftv1.Token{Hash: hash("b"), Tenant: "beta"}, false},
		{&raftv1.Token{Hash: hash("root2"), Root: true}, true}, // a second root
		{&raftv1.Token{Hash: hash("a"), Tenant: "beta"}, true}, // a hash taken
		{&raftv1.Token{Hash: []byte("short"), Tenant: "x"}, true},
	}
	for i, c := range cases {
		err := put(c.tok)
		if c.refused != errors.Is(err, ErrInvalid) || (!c.refused && err != nil) {
			t.Fatalf("case %d: err %v, refused want %v", i, err, c.refused)
		}
	}
	del := func(name string) error {
		_, err := s.Apply(ctx, Command{Type: CmdDeleteToken, Msg: &raftv1.DeleteToken{Hash: hash(name)}})
		return err
	}
	if err := del("b"); err != nil {
		t.Fatalf("revoke b: %v", err)
	}
	if err := del("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke b twice: %v, want not found", err)
	}
	if err := del("root"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoke root: %v, want refused", err)
	}
	rotate := func(old, next string) error {
		_, err := s.Apply(ctx, Command{Type: CmdRotateRoot, Msg: &raftv1.RotateRoot{OldHash: hash(old), Token: &raftv1.Token{Hash: hash(next), Root: true}}})
		return err
	}
	if err := rotate("a", "x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rotate from a tenant's token: %v, want refused", err)
	}
	if err := rotate("root", "a"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rotate onto a taken hash: %v, want refused", err)
	}
	if err := rotate("root", "root-1"); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if err := rotate("root", "root-2"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rotate from the old root again: %v, want refused", err)
	}
	if err := rotate("root-1", "root"); err != nil { // and back, for the checks below
		t.Fatalf("rotate back: %v", err)
	}
	if _, ok := s.Token(hash("root-1")); ok {
		t.Fatal("a rotated-away root token is still stored")
	}
	check := func(st *Store) {
		t.Helper()
		if _, ok := st.Token(hash("b")); ok {
			t.Error("revoked token b found")
		}
		if got := st.Tokens(); len(got) != 2 || !bytes.Equal(got[0].GetHash(), hash("root")) && !bytes.Equal(got[1].GetHash(), hash("root")) {
			t.Errorf("Tokens() = %v, want root and a", got)
		}
		if !st.HasRootToken() {
			t.Error("no root token")
		}
		if tok, ok := st.Token(hash("a")); !ok || tok.GetTenant() != "acme" || tok.GetRoot() {
			t.Errorf("token a: %v %v", tok, ok)
		}
		if tok, ok := st.Token(hash("root")); !ok || !tok.GetRoot() {
			t.Errorf("root token: %v %v", tok, ok)
		}
		if _, ok := st.Token(hash("root2")); ok {
			t.Error("refused root stored")
		}
		if _, ok := st.Token(hash("nope")); ok {
			t.Error("unknown token found")
		}
	}
	check(s)

	snap, err := s.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	fresh := newFSM()
	if err := fresh.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	check(&Store{fsm: fresh})
	// And the restored replica takes a snapshot byte-equal to the first.
	again, err := fresh.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink2 := &memSink{}
	if err := again.Persist(sink2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), sink2.Bytes()) {
		t.Error("restored snapshot differs")
	}
}
