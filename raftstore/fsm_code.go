package raftstore

import (
	"fmt"

	"github.com/gustfaas/gust/internal/tenant"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
)

func init() {
	register(CmdClaimCode, applyClaimCode)
	registerRecord(recCodeClaim, "code claim", func(s *state, c *raftv1.ClaimCode) error {
		if c.GetDigest() == "" {
			return fmt.Errorf("restore code claim: no digest: %w", ErrInvalid)
		}
		s.code.claim(c.GetTenant(), c.GetDigest())
		return nil
	})
}

// codeState records which tenants uploaded each code digest. The code
// store is shared and content-addressed, so knowing a digest (printed by
// every deploy) must not let one tenant attach another's code.
type codeState struct {
	owners map[string]map[string]bool // digest → tenants that uploaded it
}

func newCodeState() codeState { return codeState{owners: map[string]map[string]bool{}} }

func applyClaimCode(s *state, body []byte) any {
	var c raftv1.ClaimCode
	mustUnmarshal(body, &c)
	if c.GetDigest() == "" {
		return fmt.Errorf("claim code without a digest: %w", ErrInvalid)
	}
	s.code.claim(c.GetTenant(), c.GetDigest())
	return nil
}

func (c *codeState) claim(t, digest string) {
	byTenant := c.owners[digest]
	if byTenant == nil {
		byTenant = map[string]bool{}
		c.owners[digest] = byTenant
	}
	byTenant[t] = true
}

// snapshot writes one ClaimCode record per tenant and digest, sorted.
func (c *codeState) snapshot(recs []record) []record {
	for _, digest := range sortedKeys(c.owners) {
		for _, t := range sortedKeys(c.owners[digest]) {
			recs = appendRecord(recs, recCodeClaim, &raftv1.ClaimCode{Tenant: t, Digest: digest})
		}
	}
	return recs
}

// CodeClaimed reports whether tenant t uploaded the code digest.
func (s *Store) CodeClaimed(t, digest string) bool {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.st.code.owners[digest][t]
}

// MayUseCode reports whether tenant t may name the code digest in a
// function: it uploaded it, or one of its functions or their published
// versions already runs it (functions stored before uploads were
// recorded, and code its own functions already use).
func (s *Store) MayUseCode(t, digest string) bool {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	st := s.fsm.st
	if st.code.owners[digest][t] {
		return true
	}
	for name, fn := range st.functions.byName {
		if !tenant.Owns(t, name) {
			continue
		}
		if fn.GetCodeDigest() == digest {
			return true
		}
		for _, v := range st.functions.v.versions[name] {
			if v.GetCodeDigest() == digest {
				return true
			}
		}
	}
	return false
}
