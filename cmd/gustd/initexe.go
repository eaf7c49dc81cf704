package main

import (
	"bytes"
	"debug/buildinfo"
	"embed"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/gustfaas/gust/sandbox"
)

// initexe holds gustd-init when `make build` (or testutil.BuildGustd) put
// it there first; a plain `go build` embeds only the README, and sandboxes
// then run their init from gustd itself, which works but starts slower.
//
//go:embed initexe
var initexe embed.FS

// useSmallInit hands sandboxes the embedded gustd-init (sandbox.UseInit),
// unless it was built from other sources than this gustd: a plain `go
// build` after `make build` embeds the init of an older tree, which may not
// speak this gustd's stem-cell protocol.
func useSmallInit() {
	bin, err := initexe.ReadFile("initexe/gustd-init")
	if err != nil {
		return
	}
	self, _ := debug.ReadBuildInfo()
	embedded, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gustd: warning: sandboxes start their init from gustd: the embedded gustd-init:", err)
		return
	}
	if why := otherBuild(self, embedded); why != "" {
		fmt.Fprintf(os.Stderr, "gustd: warning: sandboxes start their init from gustd: the embedded gustd-init is stale (%s); run make build\n", why)
		return
	}
	if err := sandbox.UseInit(bin); err != nil {
		fmt.Fprintln(os.Stderr, "gustd: warning: sandboxes start their init from gustd:", err)
	}
}

// otherBuild says how embedded's build differs from self's, as far as Go's
// build information tells: another source revision, other uncommitted
// changes, or another version of a module both use. "" if none shows.
func otherBuild(self, embedded *debug.BuildInfo) string {
	if self == nil || embedded == nil {
		return ""
	}
	for _, key := range []string{"vcs.revision", "vcs.modified"} {
		if a, b := setting(self, key), setting(embedded, key); a != b {
			return fmt.Sprintf("%s %q, gustd's %q", key, b, a)
		}
	}
	mine := map[string]string{}
	for _, d := range self.Deps {
		mine[d.Path] = d.Version
	}
	for _, d := range embedded.Deps {
		if v, ok := mine[d.Path]; ok && v != d.Version {
			return fmt.Sprintf("%s %s, gustd's %s", d.Path, d.Version, v)
		}
	}
	return ""
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
