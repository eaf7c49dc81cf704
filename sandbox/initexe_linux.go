package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/opencontainers/runc/libcontainer/exeseal"
	"golang.org/x/sys/unix"
)

// smallInit is the sealed copy of the binary UseInit was given; stem cells
// pass it to their init as descriptor 3 (initexe_linux.c execs it).
var (
	smallInitMu sync.Mutex
	smallInit   *os.File
)

// UseInit makes every stem cell created from now on run its init from
// bin, a static binary whose main calls MaybeInit (cmd/gustd-init), instead
// of re-executing this one: a small init starts in a fraction of the CPU
// time and memory. bin is copied into a sealed memory file, kept open for
// the life of the process. On error stem cells run their init from this
// binary, as without it.
func UseInit(bin []byte) error {
	if len(bin) == 0 {
		return errors.New("use init: no binary")
	}
	sealed, err := exeseal.CloneBinary(bytes.NewReader(bin), int64(len(bin)), "gustd-init", os.TempDir())
	if err != nil {
		return fmt.Errorf("use init: %w", err)
	}
	if seals, err := unix.FcntlInt(sealed.Fd(), unix.F_GET_SEALS, 0); err != nil || seals&unix.F_SEAL_WRITE == 0 {
		// Not a sealed memfd (exeseal fell back to a file): the init would
		// not take it, so do without.
		sealed.Close()
		return errors.New("use init: the kernel cannot seal a memory file")
	}
	smallInitMu.Lock()
	defer smallInitMu.Unlock()
	if smallInit != nil {
		smallInit.Close()
	}
	smallInit = sealed
	return nil
}

// initFiles is what a stem cell's init is passed: the small init, if any.
func initFiles() []*os.File {
	smallInitMu.Lock()
	defer smallInitMu.Unlock()
	if smallInit == nil {
		return nil
	}
	return []*os.File{smallInit}
}
