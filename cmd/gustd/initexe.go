package main

import (
	"embed"
	"fmt"
	"os"

	"github.com/gustfaas/gust/sandbox"
)

// initexe holds gustd-init when `make build` (or testutil.BuildGustd) put
// it there first; a plain `go build` embeds only the README, and sandboxes
// then run their init from gustd itself, which works but starts slower.
//
//go:embed initexe
var initexe embed.FS

// useSmallInit hands sandboxes the embedded gustd-init (sandbox.UseInit).
func useSmallInit() {
	bin, err := initexe.ReadFile("initexe/gustd-init")
	if err != nil {
		return
	}
	if err := sandbox.UseInit(bin); err != nil {
		fmt.Fprintln(os.Stderr, "gustd: warning: sandboxes start their init from gustd:", err)
	}
}
