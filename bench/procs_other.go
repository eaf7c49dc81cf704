//go:build !linux

package bench

import "syscall"

// childAttr puts a child in its own process group. gustd runs on Linux
// only; elsewhere the bench can only drive a cluster on another host.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
