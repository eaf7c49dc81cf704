package raftstore

import (
	"fmt"
	"sort"
	"time"

	"github.com/gustfaas/gust/internal/tenant"
	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(CmdPutFunction, applyPutFunction)
	register(CmdDeleteFunction, applyDeleteFunction)
	registerRecord(recFunction, "function", func(s *state, fn *gustv1.Function) error {
		s.functions.byName[fn.GetConfig().GetName()] = fn
		return nil
	})
}

// functionState holds every function's $LATEST, by name.
type functionState struct {
	byName map[string]*gustv1.Function
	v      versionState
}

func newFunctionState() functionState {
	return functionState{byName: map[string]*gustv1.Function{}, v: newVersionState()}
}

func applyPutFunction(s *state, body []byte) any {
	var c raftv1.PutFunction
	mustUnmarshal(body, &c)
	fn := c.GetFunction()
	name := fn.GetConfig().GetName()
	if !tenant.ValidStored(name) {
		// The API checks names; this holds the line for anything else
		// that reaches the log, since names become keys and paths.
		return fmt.Errorf("function name %q: %w", name, ErrInvalid)
	}
	if prev, ok := s.functions.byName[name]; ok {
		fn.Revision = prev.GetRevision() + 1
		fn.Incarnation = prev.GetIncarnation()
	} else {
		fn.Revision = 1
		fn.Incarnation = s.index
	}
	s.functions.byName[name] = fn
	return proto.Clone(fn)
}

func applyDeleteFunction(s *state, body []byte) any {
	var c raftv1.DeleteFunction
	mustUnmarshal(body, &c)
	if _, ok := s.functions.byName[c.GetName()]; !ok {
		return fmt.Errorf("function %q: %w", c.GetName(), ErrNotFound)
	}
	delete(s.functions.byName, c.GetName())
	s.functions.v.forget(c.GetName())
	return nil
}

func (f *functionState) snapshot(recs []record) []record {
	recs = appendSorted(recs, recFunction, f.byName)
	return f.v.snapshot(recs)
}

// Function returns a copy of a function's $LATEST.
func (s *Store) Function(name string) (*gustv1.Function, error) {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	fn, ok := s.fsm.st.functions.byName[name]
	if !ok {
		return nil, fmt.Errorf("function %q: %w", name, ErrNotFound)
	}
	return proto.Clone(fn).(*gustv1.Function), nil
}

// Functions returns copies of every function, sorted by name.
func (s *Store) Functions() []*gustv1.Function {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	out := make([]*gustv1.Function, 0, len(s.fsm.st.functions.byName))
	for _, name := range sortedKeys(s.fsm.st.functions.byName) {
		out = append(out, proto.Clone(s.fsm.st.functions.byName[name]).(*gustv1.Function))
	}
	return out
}

func timeFromNano(n int64) time.Time { return time.Unix(0, n).UTC() }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
