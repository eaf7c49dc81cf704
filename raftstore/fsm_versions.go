package raftstore

import (
	"fmt"
	"sort"
	"strconv"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func init() {
	register(CmdPublishVersion, applyPublishVersion)
	register(CmdPutAlias, applyPutAlias)
	register(CmdDeleteVersion, applyDeleteVersion)
	registerRecord(recVersion, "version", func(s *state, fn *gustv1.Function) error {
		s.functions.v.restoreVersion(fn)
		return nil
	})
	registerRecord(recCounter, "version counter", func(s *state, c *raftv1.VersionCounter) error {
		s.functions.v.next[c.GetName()] = c.GetNext()
		return nil
	})
	registerRecord(recAlias, "alias", func(s *state, a *gustv1.Alias) error {
		s.functions.v.restoreAlias(a)
		return nil
	})
}

// versionState holds published versions and aliases, per function.
type versionState struct {
	versions map[string]map[string]*gustv1.Function // name → version → frozen copy
	next     map[string]uint64                      // name → next version number
	aliases  map[string]map[string]*gustv1.Alias    // name → alias → alias
}

func newVersionState() versionState {
	return versionState{versions: map[string]map[string]*gustv1.Function{}, next: map[string]uint64{},
		aliases: map[string]map[string]*gustv1.Alias{}}
}

func applyPublishVersion(s *state, body []byte) any {
	var c raftv1.PublishVersion
	mustUnmarshal(body, &c)
	latest, ok := s.functions.byName[c.GetName()]
	if !ok {
		return fmt.Errorf("function %q: %w", c.GetName(), ErrNotFound)
	}
	v := &s.functions.v
	// Publishing an unchanged $LATEST returns the version already made of it.
	var newest *gustv1.Function
	for _, fn := range v.versions[c.GetName()] {
		n, _ := strconv.ParseUint(fn.GetVersion(), 10, 64)
		if m, _ := strconv.ParseUint(newest.GetVersion(), 10, 64); newest == nil || n > m {
			newest = fn
		}
	}
	if newest != nil && newest.GetRevision() == latest.GetRevision() {
		return proto.Clone(newest)
	}
	if v.next[c.GetName()] == 0 {
		v.next[c.GetName()] = 1
	}
	fn := proto.Clone(latest).(*gustv1.Function)
	fn.Version = strconv.FormatUint(v.next[c.GetName()], 10)
	fn.Description = c.GetDescription()
	fn.LastModified = timestamppb.New(timeFromNano(c.GetPublishedUnixNano()))
	v.next[c.GetName()]++
	if v.versions[c.GetName()] == nil {
		v.versions[c.GetName()] = map[string]*gustv1.Function{}
	}
	v.versions[c.GetName()][fn.Version] = fn
	return proto.Clone(fn)
}

func applyPutAlias(s *state, body []byte) any {
	var c raftv1.PutAlias
	mustUnmarshal(body, &c)
	a := c.GetAlias()
	if a.GetName() == "" {
		return fmt.Errorf("alias without a name: %w", ErrInvalid)
	}
	name := a.GetFunction()
	if _, ok := s.functions.byName[name]; !ok {
		return fmt.Errorf("function %q: %w", name, ErrNotFound)
	}
	v := &s.functions.v
	exists := func(version string) bool {
		if version == "$LATEST" {
			return true
		}
		_, ok := v.versions[name][version]
		return ok
	}
	if !exists(a.GetVersion()) {
		return fmt.Errorf("version %s of %s: %w", a.GetVersion(), name, ErrNotFound)
	}
	total := 0.0
	for ver, w := range a.GetAdditionalWeights() {
		if !exists(ver) || ver == a.GetVersion() || w < 0 || w > 1 {
			return fmt.Errorf("routing weight %s=%v: %w", ver, w, ErrInvalid)
		}
		total += w
	}
	if total > 1 {
		return fmt.Errorf("routing weights add up to %v, more than 1: %w", total, ErrInvalid)
	}
	prev, had := v.aliases[name][a.GetName()]
	switch {
	case had && c.GetCreateOnly():
		return fmt.Errorf("alias %s of %s already exists: %w", a.GetName(), name, ErrInvalid)
	case !had && c.GetUpdateOnly():
		return fmt.Errorf("alias %s of %s: %w", a.GetName(), name, ErrNotFound)
	}
	a.Revision = prev.GetRevision() + 1
	if v.aliases[name] == nil {
		v.aliases[name] = map[string]*gustv1.Alias{}
	}
	v.aliases[name][a.GetName()] = a
	return proto.Clone(a)
}

func applyDeleteVersion(s *state, body []byte) any {
	var c raftv1.DeleteVersion
	mustUnmarshal(body, &c)
	v := &s.functions.v
	if _, ok := v.versions[c.GetName()][c.GetVersion()]; !ok {
		return fmt.Errorf("version %s of %s: %w", c.GetVersion(), c.GetName(), ErrNotFound)
	}
	for _, a := range v.aliases[c.GetName()] {
		if a.GetVersion() == c.GetVersion() || a.GetAdditionalWeights()[c.GetVersion()] > 0 {
			return fmt.Errorf("version %s is used by alias %s: %w", c.GetVersion(), a.GetName(), ErrInvalid)
		}
	}
	delete(v.versions[c.GetName()], c.GetVersion())
	return nil
}

// forget drops every version and alias of a deleted function.
func (v *versionState) forget(name string) {
	delete(v.versions, name)
	delete(v.next, name)
	delete(v.aliases, name)
}

func (v *versionState) snapshot(recs []record) []record {
	for _, name := range sortedKeys(v.versions) {
		recs = appendSorted(recs, recVersion, v.versions[name])
	}
	for _, name := range sortedKeys(v.next) {
		recs = appendRecord(recs, recCounter, &raftv1.VersionCounter{Name: name, Next: v.next[name]})
	}
	for _, name := range sortedKeys(v.aliases) {
		recs = appendSorted(recs, recAlias, v.aliases[name])
	}
	return recs
}

// restoreVersion adds one published version from a snapshot.
func (v *versionState) restoreVersion(fn *gustv1.Function) {
	name := fn.GetConfig().GetName()
	if v.versions[name] == nil {
		v.versions[name] = map[string]*gustv1.Function{}
	}
	v.versions[name][fn.GetVersion()] = fn
}

// restoreAlias adds one alias from a snapshot.
func (v *versionState) restoreAlias(a *gustv1.Alias) {
	if v.aliases[a.GetFunction()] == nil {
		v.aliases[a.GetFunction()] = map[string]*gustv1.Alias{}
	}
	v.aliases[a.GetFunction()][a.GetName()] = a
}

// FunctionVersion returns a copy of one published version.
func (s *Store) FunctionVersion(name, version string) (*gustv1.Function, error) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	fn, ok := s.fsm.st.functions.v.versions[name][version]
	if !ok {
		return nil, fmt.Errorf("version %s of %s: %w", version, name, ErrNotFound)
	}
	return proto.Clone(fn).(*gustv1.Function), nil
}

// Versions returns copies of a function's published versions, oldest first.
func (s *Store) Versions(name string) []*gustv1.Function {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	var out []*gustv1.Function
	for _, fn := range s.fsm.st.functions.v.versions[name] {
		out = append(out, proto.Clone(fn).(*gustv1.Function))
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].GetVersion())
		b, _ := strconv.Atoi(out[j].GetVersion())
		return a < b
	})
	return out
}

// Alias returns a copy of one alias.
func (s *Store) Alias(name, alias string) (*gustv1.Alias, error) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	a, ok := s.fsm.st.functions.v.aliases[name][alias]
	if !ok {
		return nil, fmt.Errorf("alias %s of %s: %w", alias, name, ErrNotFound)
	}
	return proto.Clone(a).(*gustv1.Alias), nil
}

// Aliases returns copies of a function's aliases, sorted by name.
func (s *Store) Aliases(name string) []*gustv1.Alias {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	m := s.fsm.st.functions.v.aliases[name]
	out := make([]*gustv1.Alias, 0, len(m))
	for _, a := range sortedKeys(m) {
		out = append(out, proto.Clone(m[a]).(*gustv1.Alias))
	}
	return out
}
