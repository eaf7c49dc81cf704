package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestOtherBuild(t *testing.T) {
	build := func(rev, modified, runc string) *debug.BuildInfo {
		return &debug.BuildInfo{
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}},
			Deps:     []*debug.Module{{Path: "github.com/opencontainers/runc", Version: runc}, {Path: "golang.org/x/sys", Version: "v0.50.0"}},
		}
	}
	self := build("abc", "false", "v1.5.2")
	for _, c := range []struct {
		init *debug.BuildInfo
		want string // "" or a word the reason names
	}{
		{build("abc", "false", "v1.5.2"), ""},
		{build("def", "false", "v1.5.2"), "vcs.revision"},
		{build("abc", "true", "v1.5.2"), "vcs.modified"},
		{build("abc", "false", "v1.4.0"), "runc"},
		{&debug.BuildInfo{Settings: self.Settings}, ""}, // fewer modules: only shared ones count
		{nil, ""},
	} {
		got := otherBuild(self, c.init)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("otherBuild(%v) = %q, want one naming %q", c.init, got, c.want)
		}
	}
}
