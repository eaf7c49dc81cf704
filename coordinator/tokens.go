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
	"github.com/gustfaas/gust/internal/apierr"
	"github.com/gustfaas/gust/internal/tenant"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
)

// RootTokenFile is where a bootstrapping coordinator writes the root token,
// under its data dir.
const RootTokenFile = "root.token"

// tokens keeps API tokens in Raft: only their sha256 and whose they are,
// so a token made through one coordinator is valid on every one.
type tokens struct {
	store *raftstore.Store
	write *writer
	now   func() time.Time
	flag  bool        // --auth
	on    atomic.Bool // a root token was seen: auth stays on
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
	if t.store.HasRootToken() { // no token is ever removed
		t.on.Store(true)
		return true
	}
	return false
}

// lookup finds a token's principal. A miss first catches up with the
// leader: a token made a moment ago through another coordinator may not
// have reached this replica yet.
func (t *tokens) lookup(ctx context.Context, hash []byte) (auth.Principal, bool) {
	tok, ok := t.store.Token(hash)
	if !ok {
		if t.write.catchUp(ctx) != nil {
			return auth.Principal{}, false
		}
		if tok, ok = t.store.Token(hash); !ok {
			return auth.Principal{}, false
		}
	}
	return auth.Principal{Tenant: tok.GetTenant(), Root: tok.GetRoot()}, true
}

// create makes a token for tenant t and commits its hash.
func (t *tokens) create(ctx context.Context, tn string, root bool) (string, error) {
	tok, err := auth.NewToken()
	if err != nil {
		return "", err
	}
	err = t.write.apply(ctx, raftstore.Command{Type: raftstore.CmdPutToken, Msg: &raftv1.PutToken{Token: &raftv1.Token{
		Hash: auth.Hash(tok), Tenant: tn, Root: root, CreatedUnixNano: t.now().UnixNano()}}}, nil)
	if err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return tok, nil
}

// EnsureRootToken makes the root token at a cluster's first start: if Raft
// holds none, it writes a new one to dataDir/root.token (0600) and commits
// its hash. The file is written first: a crash between the two leaves a
// token that never worked, replaced at the next start, rather than a root
// token nobody has. Call it on the bootstrapping coordinator once it
// leads; elsewhere (or with a root token stored) it does nothing.
func (c *Coordinator) EnsureRootToken(ctx context.Context, dataDir string) error {
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
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("write root token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write root token: %w", err)
	}
	err = c.write.apply(ctx, raftstore.Command{Type: raftstore.CmdPutToken, Msg: &raftv1.PutToken{Token: &raftv1.Token{
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

// tokenServer serves TokenService (root only: the tenancy interceptor
// refuses tenants).
type tokenServer struct {
	gustv1.UnimplementedTokenServiceServer
	c *Coordinator
}

func (s *tokenServer) CreateToken(ctx context.Context, req *gustv1.CreateTokenRequest) (*gustv1.CreateTokenResponse, error) {
	if !s.c.tokens.enabled() {
		return nil, toStatus(s.c.log, apierr.New(apierr.InvalidParameterValue, "auth is off on this cluster: start its coordinators with --auth"))
	}
	if !tenant.Valid(req.GetTenant()) {
		return nil, toStatus(s.c.log, apierr.New(apierr.InvalidParameterValue,
			"tenant %q must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a letter or digit", req.GetTenant()))
	}
	tok, err := s.c.tokens.create(ctx, req.GetTenant(), false)
	if err != nil {
		return nil, toStatus(s.c.log, err)
	}
	return &gustv1.CreateTokenResponse{Token: tok, Tenant: req.GetTenant()}, nil
}
