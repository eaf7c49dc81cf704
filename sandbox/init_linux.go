package sandbox

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor joins namespaces before the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// MaybeInit turns the process into a sandbox's init when libcontainer
// re-executed it as "<binary> init". Call it first thing in main (and in
// TestMain of packages that create sandboxes); it returns only when the
// process is not a sandbox init. (A stem cell's launcher never gets this
// far: stem_linux.c runs before the Go runtime.)
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init() // never returns
	}
}
