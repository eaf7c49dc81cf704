package raftstore

import (
	"fmt"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(CmdPutToken, applyPutToken)
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

func (ts *tokenState) put(t *raftv1.Token) {
	ts.byHash[string(t.GetHash())] = t
	ts.root = ts.root || t.GetRoot()
}

func (ts *tokenState) snapshot(recs []record) []record {
	for _, k := range sortedKeys(ts.byHash) {
		body, err := proto.Marshal(ts.byHash[k])
		if err != nil {
			panic(fmt.Sprintf("raftstore: marshal token: %v", err))
		}
		recs = append(recs, record{t: recToken, body: body})
	}
	return recs
}

func (ts *tokenState) restore(body []byte) error {
	var t raftv1.Token
	if err := proto.Unmarshal(body, &t); err != nil {
		return fmt.Errorf("restore token: %w", err)
	}
	ts.put(&t)
	return nil
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

// HasRootToken reports whether a root token was stored.
func (s *Store) HasRootToken() bool {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.st.tokens.root
}
