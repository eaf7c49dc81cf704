package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/gustfaas/gust/coordinator/auth"
	"github.com/gustfaas/gust/coordinator/replica"
	"github.com/gustfaas/gust/internal/apierr"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"github.com/gustfaas/gust/raftstore"
)

// RootTokenFile is where a bootstrapping coordinator writes the root token,
// under its data dir.
const RootTokenFile = "root.token"

// tokens keeps API tokens in Raft: only their sha256 and whose they are,
// so a token made through one coordinator is valid on every one.
type tokens struct {
	store *raftstore.Store
	write *replica.Writer
	now   func() time.Time
	flag  bool         // --auth
	on    atomic.Bool  // a root token was seen: auth stays on
	file  atomic.Value // string: this coordinator's root token file, if it keeps one
}

// enabled reports whether calls must carry a token: with --auth, and on
// any coordinator of a cluster that has a root token, flag or not, so a
// coordinator started without --auth is not an open door into a cluster
// with auth (nor is a restart without it). Without either, gust behaves
// as it always did: everything is the root tenant's and nothing is checked.
func (t *tokens) enabled() bool {
	if t.flag || t.on.Load() {
		return true
	}
	if t.store.HasRootToken() { // the root token is never removed
		t.on.Store(true)
		return true
	}
	return false
}

// RequireAuth refuses to make tokens on a cluster that does not check them.
func (t *tokens) RequireAuth() error {
	if !t.enabled() {
		return apierr.New(apierr.InvalidParameterValue, "auth is off on this cluster: start its coordinators with --auth")
	}
	return nil
}

// lookup finds a token's principal. A miss first catches up with the
// leader: a token made a moment ago through another coordinator may not
// have reached this replica yet.
func (t *tokens) lookup(ctx context.Context, hash []byte) (auth.Principal, bool) {
	tok, ok := t.store.Token(hash)
	if !ok {
		if t.write.CatchUp(ctx) != nil {
			return auth.Principal{}, false
		}
		if tok, ok = t.store.Token(hash); !ok {
			return auth.Principal{}, false
		}
	}
	return auth.Principal{Tenant: tok.GetTenant(), Root: tok.GetRoot()}, true
}

// Create makes a token for tenant t and commits its hash.
func (t *tokens) Create(ctx context.Context, tn string, root bool) (string, error) {
	tok, err := auth.NewToken()
	if err != nil {
		return "", err
	}
	err = t.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdPutToken, Msg: &raftv1.PutToken{Token: &raftv1.Token{
		Hash: auth.Hash(tok), Tenant: tn, Root: root, CreatedUnixNano: t.now().UnixNano()}}}, nil)
	if err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return tok, nil
}

// find returns the stored token an id (or the token itself) names.
func (t *tokens) find(idOrToken string) (*raftv1.Token, bool) {
	if auth.IsToken(idOrToken) {
		return t.store.Token(auth.Hash(idOrToken))
	}
	for _, tok := range t.store.Tokens() {
		if auth.ID(tok.GetHash()) == idOrToken {
			return tok, true
		}
	}
	return nil, false
}

// Revoke removes the token an id (or the token itself) names. Each
// coordinator refuses it as soon as the removal has applied there.
func (t *tokens) Revoke(ctx context.Context, idOrToken string) (*raftv1.Token, error) {
	tok, ok := t.find(idOrToken)
	if !ok {
		if err := t.write.CatchUp(ctx); err != nil {
			return nil, err
		}
		if tok, ok = t.find(idOrToken); !ok {
			return nil, apierr.New(apierr.ResourceNotFound, "no token has id %q", idOrToken)
		}
	}
	if tok.GetRoot() {
		return nil, apierr.New(apierr.InvalidParameterValue, "the root token cannot be revoked")
	}
	err := t.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdDeleteToken, Msg: &raftv1.DeleteToken{Hash: tok.GetHash()}}, nil)
	if err != nil {
		return nil, named(err, "")
	}
	return tok, nil
}

// RotateRoot replaces the root token and returns the new one, and the
// root token file it rewrote if this coordinator keeps one.
//
// Losing the new token once the rotation commits would lock root out for
// good (nothing can add a second root), so nothing may lose it: with a
// token file, the new token is written beside it (root.token.next) before
// the commit; a failed write is checked against the store, since a write
// can fail after it committed; and when the outcome cannot be known the
// error carries the new token, for the root caller alone.
func (t *tokens) RotateRoot(ctx context.Context) (tok, file string, err error) {
	var old *raftv1.Token
	for _, st := range t.store.Tokens() {
		if st.GetRoot() {
			old = st
		}
	}
	if old == nil {
		return "", "", apierr.New(apierr.InvalidParameterValue, "this cluster has no root token to rotate")
	}
	if tok, err = auth.NewToken(); err != nil {
		return "", "", err
	}
	path, _ := t.file.Load().(string)
	if _, statErr := os.Stat(path); path == "" || statErr != nil {
		path = "" // this coordinator keeps no token file
	}
	if path != "" {
		if err := writeTokenFile(path+".next", tok); err != nil {
			return "", "", err
		}
	}
	err = t.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdRotateRoot, Msg: &raftv1.RotateRoot{OldHash: old.GetHash(),
		Token: &raftv1.Token{Hash: auth.Hash(tok), Root: true, CreatedUnixNano: t.now().UnixNano()}}}, nil)
	if err != nil {
		switch cerr := t.write.CatchUp(ctx); {
		case cerr == nil:
			if _, ok := t.store.Token(auth.Hash(tok)); !ok { // it did not commit: the old token stands
				if path != "" {
					_ = os.Remove(path + ".next")
				}
				return "", "", named(err, "")
			}
			// It committed after all.
		case path != "":
			return "", "", apierr.New(apierr.ResourceNotReady, "the rotation may or may not have committed (%v); "+
				"if the old root token is refused, the new one is in %s.next", err, path)
		default:
			return "", "", apierr.New(apierr.ResourceNotReady, "the rotation may or may not have committed (%v); "+
				"if the old root token is refused, the new one is %s", err, tok)
		}
	}
	if path != "" {
		if err := os.Rename(path+".next", path); err != nil {
			return tok, "", fmt.Errorf("root token rotated, but move it to %s: %w (the new token is in this answer)", path, err)
		}
		file = path
	}
	return tok, file, nil
}

// writeTokenFile writes tok to path, readable by its owner only.
func writeTokenFile(path, tok string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("write root token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write root token: %w", err)
	}
	return nil
}

// EnsureRootToken makes the root token at a cluster's first start: if Raft
// holds none, it writes a new one to dataDir/root.token (0600) and commits
// its hash. The file is written first: a crash between the two leaves a
// token that never worked, replaced at the next start, rather than a root
// token nobody has. Call it on the bootstrapping coordinator once it
// leads; elsewhere (or with a root token stored) it does nothing.
func (c *Coordinator) EnsureRootToken(ctx context.Context, dataDir string) error {
	c.KeepRootTokenFile(dataDir)
	if !c.cfg.Auth || !c.raft.IsLeader() {
		return nil
	}
	if _, err := c.raft.LeaderApplied(); err != nil { // the whole log is applied here
		return err
	}
	if c.raft.HasRootToken() {
		return nil
	}
	tok, err := auth.NewToken()
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, RootTokenFile)
	if err := writeTokenFile(path, tok); err != nil {
		return err
	}
	err = c.write.Apply(ctx, raftstore.Command{Type: raftstore.CmdPutToken, Msg: &raftv1.PutToken{Token: &raftv1.Token{
		Hash: auth.Hash(tok), Root: true, CreatedUnixNano: time.Now().UnixNano()}}}, nil)
	if errors.Is(err, raftstore.ErrInvalid) && c.raft.HasRootToken() {
		return nil // made by another start a moment ago
	}
	if err != nil {
		return fmt.Errorf("store root token: %w", err)
	}
	c.log.Info("root token written", "path", path)
	return nil
}

// KeepRootTokenFile names the data dir whose root token file, if there is
// one, rotations through this coordinator rewrite.
func (c *Coordinator) KeepRootTokenFile(dataDir string) {
	c.tokens.file.Store(filepath.Join(dataDir, RootTokenFile))
}

// List returns the tokens, of one tenant or ("") all, as the leader has
// them: a list shows what was made through any coordinator.
func (t *tokens) List(ctx context.Context, tenant string) ([]*raftv1.Token, error) {
	if err := t.write.CatchUp(ctx); err != nil {
		return nil, err
	}
	var out []*raftv1.Token
	for _, tok := range t.store.Tokens() {
		if tenant == "" || tok.GetTenant() == tenant && !tok.GetRoot() {
			out = append(out, tok)
		}
	}
	return out, nil
}
