package raftstore

import (
	"context"
	"errors"
	"testing"

	raftv1 "github.com/gustfaas/gust/proto/gust/raft/v1"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/protobuf/proto"
)

func TestVersionsAndAliases(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	apply := func(c Command) (any, error) { return s.Apply(ctx, c) }
	putFn(t, s, "f", "d1")
	v1, err := apply(Command{Type: CmdPublishVersion, Msg: &raftv1.PublishVersion{Name: "f", Description: "first"}})
	if err != nil || v1.(*gustv1.Function).GetVersion() != "1" || v1.(*gustv1.Function).GetCodeDigest() != "d1" {
		t.Fatalf("publish: %v %v", v1, err)
	}
	// Unchanged $LATEST: the same version comes back.
	again, _ := apply(Command{Type: CmdPublishVersion, Msg: &raftv1.PublishVersion{Name: "f"}})
	if again.(*gustv1.Function).GetVersion() != "1" {
		t.Fatalf("republish unchanged gave %v", again)
	}
	putFn(t, s, "f", "d2")
	v2, _ := apply(Command{Type: CmdPublishVersion, Msg: &raftv1.PublishVersion{Name: "f"}})
	if v2.(*gustv1.Function).GetVersion() != "2" {
		t.Fatalf("second publish %v", v2)
	}
	if fn, _ := s.FunctionVersion("f", "1"); fn.GetCodeDigest() != "d1" {
		t.Fatal("version 1 changed after $LATEST moved on")
	}
	cases := []struct {
		alias *gustv1.Alias
		want  error
	}{
		{&gustv1.Alias{Function: "f", Name: "live", Version: "1", AdditionalWeights: map[string]float64{"2": 0.1}}, nil},
		{&gustv1.Alias{Function: "f", Name: "bad", Version: "9"}, ErrNotFound},
		{&gustv1.Alias{Function: "f", Name: "bad", Version: "1", AdditionalWeights: map[string]float64{"2": 1.5}}, ErrInvalid},
		{&gustv1.Alias{Function: "nope", Name: "x", Version: "1"}, ErrNotFound},
	}
	for _, c := range cases {
		_, err := apply(Command{Type: CmdPutAlias, Msg: &raftv1.PutAlias{Alias: c.alias}})
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("alias %v: err %v, want %v", c.alias, err, c.want)
		}
	}
	if _, err := apply(Command{Type: CmdPutAlias, Msg: &raftv1.PutAlias{Alias: &gustv1.Alias{Function: "f", Name: "live", Version: "2"}, CreateOnly: true}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("create-only over an existing alias: %v", err)
	}
	if _, err := apply(Command{Type: CmdDeleteVersion, Msg: &raftv1.DeleteVersion{Name: "f", Version: "2"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("deleting a version an alias routes to: %v", err)
	}
	// Snapshot round trip keeps versions, the counter and aliases.
	snap, _ := s.fsm.Snapshot()
	sink := &memSink{}
	snap.Persist(sink)
	fresh := newFSM()
	if err := fresh.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	r := &Store{fsm: fresh}
	a, err := r.Alias("f", "live")
	want, _ := s.Alias("f", "live")
	if err != nil || !proto.Equal(a, want) || len(r.Versions("f")) != 2 || fresh.st.functions.v.next["f"] != 3 {
		t.Fatalf("restored alias %v versions %d next %d", a, len(r.Versions("f")), fresh.st.functions.v.next["f"])
	}
	// Deleting the function forgets versions and aliases; numbering restarts.
	apply(Command{Type: CmdDeleteFunction, Msg: &raftv1.DeleteFunction{Name: "f"}})
	if len(s.Versions("f")) != 0 || len(s.Aliases("f")) != 0 {
		t.Fatal("versions or aliases outlived their function")
	}
}
