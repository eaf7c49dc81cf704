package bench

import "syscall"

// childAttr puts a child in its own process group, so a Ctrl-C at the
// terminal reaches the bench alone and the bench stops its children in
// order; SIGTERM if the bench dies first, so no gustd outlives it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
