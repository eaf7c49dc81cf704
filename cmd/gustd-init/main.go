// Command gustd-init is a sandbox's init and nothing else: gustd embeds it
// (`make build`) and its sandboxes run it instead of re-executing gustd,
// whose start-up costs several times more CPU and memory (see
// sandbox.UseInit). Run directly, it only says so.
package main

import (
	"fmt"
	"os"

	"github.com/gustfaas/gust/sandbox"
)

func main() {
	sandbox.MaybeInit()
	fmt.Fprintln(os.Stderr, "gustd-init: the init of gust's sandboxes; gustd runs it, not people")
	os.Exit(2)
}
