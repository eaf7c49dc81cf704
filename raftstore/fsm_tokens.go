package raftstore

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(CmdPutToken, applyPutToken)
	register(CmdDeleteToken, applyDeleteToken)
	register(CmdRotateRoot, applyRotateRoot)
	registerRecord(recToken, "token", func(s *state, t *raftv1.Token) error {
		s.tokens.put(t)
		return nil
	})
}

// tokenState holds API token hashes (never tokens) and whose each is, so
// a token made through one coordinator is valid on all of them.
type tokenState struct {
	byHash map[string]*raftv1.Token // key: the raw sha256
	root   bool                     // a root token exists
}

func newTokenState() tokenState { return tokenState{byHash: map[string]*raftv1.Token{}} }

func applyPutToken(s *state, body []byte) any {
	var c raftv1.PutToken
	mustUnmarshal(body, &c)
	t := c.GetToken()
	if len(t.GetHash()) != 32 {
		return fmt.Errorf("token hash of %d bytes, want 32: %w", len(t.GetHash()), ErrInvalid)
	}
	if t.GetRoot() && s.tokens.root {
		// Two bootstrapping starts racing must not leave two roots.
		return fmt.Errorf("a root token exists already: %w", ErrInvalid)
	}
	if _, dup := s.tokens.byHash[string(t.GetHash())]; dup {
		return fmt.Errorf("token exists already: %w", ErrInvalid)
	}
	s.tokens.put(t)
	return proto.Clone(t)
}

func applyDeleteToken(s *state, body []byte) any {
	var c raftv1.DeleteToken
	mustUnmarshal(body, &c)
	t, ok := s.tokens.byHash[string(c.GetHash())]
	if !ok {
		return fmt.Errorf("token: %w", ErrNotFound)
	}
	if t.GetRoot() {
		// Auth stays on once a root token exists (tokens.enabled): without
		// it nobody could administer the cluster again.
		return fmt.Errorf("the root token cannot be revoked: %w", ErrInvalid)
	}
	delete(s.tokens.byHash, string(c.GetHash()))
	return proto.Clone(t)
}

func applyRotateRoot(s *state, body []byte) any {
	var c raftv1.RotateRoot
	mustUnmarshal(body, &c)
	old, ok := s.tokens.byHash[string(c.GetOldHash())]
	if !ok || !old.GetRoot() {
		return fmt.Errorf("the root token changed meanwhile: %w", ErrInvalid)
	}
	t := c.GetToken()
	if len(t.GetHash()) != 32 || !t.GetRoot() || t.GetTenant() != "" {
		return fmt.Errorf("a new root token must be a root's 32-byte hash: %w", ErrInvalid)
	}
	if _, dup := s.tokens.byHash[string(t.GetHash())]; dup {
		return fmt.Errorf("token exists already: %w", ErrInvalid)
	}
	delete(s.tokens.byHash, string(c.GetOldHash()))
	s.tokens.put(t)
	return proto.Clone(t)
}

func (ts *tokenState) put(t *raftv1.Token) {
	ts.byHash[string(t.GetHash())] = t
	ts.root = ts.root || t.GetRoot()
}

func (ts *tokenState) snapshot(recs []record) []record {
	return appendSorted(recs, recToken, ts.byHash)
}

// Token returns the token with this sha256, if there is one.
func (s *Store) Token(hash []byte) (*raftv1.Token, bool) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	t, ok := s.fsm.st.tokens.byHash[string(hash)]
	if !ok {
		return nil, false
	}
	return proto.Clone(t).(*raftv1.Token), true
}

// Tokens returns every stored token, oldest first.
func (s *Store) Tokens() []*raftv1.Token {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	out := make([]*raftv1.Token, 0, len(s.fsm.st.tokens.byHash))
	for _, t := range s.fsm.st.tokens.byHash {
		out = append(out, proto.Clone(t).(*raftv1.Token))
	}
	slices.SortFunc(out, func(a, b *raftv1.Token) int {
		if c := cmp.Compare(a.GetCreatedUnixNano(), b.GetCreatedUnixNano()); c != 0 {
			return c
		}
		return bytes.Compare(a.GetHash(), b.GetHash())
	})
	return out
}

// HasRootToken reports whether a root token was stored.
func (s *Store) HasRootToken() bool {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.st.tokens.root
}
