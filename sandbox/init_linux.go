package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/exeseal"
	"golang.org/x/sys/unix"
	// nsenter's C constructor joins namespaces before the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// init keeps the main goroutine on the main thread, so no other goroutine
// ever runs there. Each container creation runs a goroutine that locks its
// thread, joins the new container's mount namespace and exits without
// unlocking, so that Go ends the thread. Go cannot end the main thread: run
// there, it stays parked in that namespace for the life of the process,
// pinning the sandbox's mounts (its /tmp disk, or a tmpfs's memory) long
// after the sandbox is destroyed.
func init() { runtime.LockOSThread() }

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

// sealedEnv marks a process already re-executed by SealSelf.
const sealedEnv = "_GUST_SEALED"

// SealSelf re-executes this binary, once, from a sealed in-memory copy of
// itself. libcontainer never lets a sandbox's init run from the binary on
// disk (a container that could reach it could overwrite it, CVE-2019-5736);
// unless the running binary is already such a copy, it makes one for every
// sandbox, which costs a 20 MB copy or an overlay mount per cold start.
// Call it early in main, before any goroutine matters, in processes that
// create sandboxes. It returns only when there is nothing to do or the
// copy failed (the caller then runs as before).
func SealSelf() error {
	if os.Getenv(sealedEnv) != "" {
		os.Unsetenv(sealedEnv)
		// Exec named the process after the descriptor ("8"); name it again.
		name := append([]byte(filepath.Base(os.Args[0])), 0)
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
		return nil
	}
	if os.Geteuid() != 0 || exeseal.IsSelfExeCloned() {
		return nil
	}
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("seal self: %w", err)
	}
	defer self.Close()
	st, err := self.Stat()
	if err != nil {
		return fmt.Errorf("seal self: %w", err)
	}
	sealed, err := exeseal.CloneBinary(self, st.Size(), "/proc/self/exe", os.TempDir())
	if err != nil {
		return fmt.Errorf("seal self: %w", err)
	}
	env := append(os.Environ(), sealedEnv+"=1")
	err = unix.Exec(fmt.Sprintf("/proc/self/fd/%d", sealed.Fd()), os.Args, env)
	sealed.Close()
	return fmt.Errorf("seal self: exec: %w", err)
}
