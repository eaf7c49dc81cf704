package main

// Attacks on the sandbox's seccomp filter and /proc (issue 14, M4, M5, L6,
// L1): sockets of families a function has no use for (vsock reaches the
// hypervisor), io_uring, taking another process's descriptor, personality
// flags that weaken memory protection, and the /proc files that show
// other sandboxes' disk activity. Each attempt maps to the errno name the
// kernel answered ("" when it succeeded), so the e2e suite judges it.

import (
	"context"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	extraActions["sandbox-filter"] = func(context.Context, Event) (any, error) { return sandboxFilter(), nil }
}

// sandboxFilterReport is what "sandbox-filter" returns.
type sandboxFilterReport struct {
	// Calls maps each attempt to its errno name, "" if it succeeded.
	Calls map[string]string `json:"calls"`
	// Files maps each /proc file to its content, or "error: ERRNO".
	Files map[string]string `json:"files"`
}

// personality(2) flags x/sys/unix does not name.
const (
	perLinux32      = 0x0008
	uname26         = 0x0020000
	addrNoRandomize = 0x0040000
	readImpliesExec = 0x0400000
)

func sandboxFilter() sandboxFilterReport {
	calls := map[string]string{}
	socket := func(name string, family, typ, proto uintptr) {
		fd, _, errno := unix.RawSyscall(unix.SYS_SOCKET, family, typ|unix.SOCK_CLOEXEC, proto)
		if errno == 0 {
			unix.Close(int(fd))
		}
		calls[name] = errnoName(errnoErr(errno))
	}
	socket("socket_vsock", unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	// The kernel reads the family as an int: high bits must not let
	// AF_VSOCK through.
	socket("socket_vsock_high_bits", 1<<32|unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	socket("socket_alg", unix.AF_ALG, unix.SOCK_SEQPACKET, 0)
	socket("socket_netlink_audit", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT)
	socket("socket_netlink_audit_high_bits", unix.AF_NETLINK, unix.SOCK_RAW, 1<<32|unix.NETLINK_AUDIT)
	// What functions use keeps working.
	socket("socket_unix", unix.AF_UNIX, unix.SOCK_STREAM, 0)
	socket("socket_inet", unix.AF_INET, unix.SOCK_STREAM, 0)
	socket("socket_inet6", unix.AF_INET6, unix.SOCK_DGRAM, 0)
	socket("socket_netlink_route", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	var pair [2]int32
	_, _, errno := unix.RawSyscall6(unix.SYS_SOCKETPAIR, unix.AF_VSOCK, unix.SOCK_STREAM, 0, uintptr(unsafe.Pointer(&pair)), 0, 0)
	calls["socketpair_vsock"] = errnoName(errnoErr(errno))
	if errno == 0 {
		unix.Close(int(pair[0]))
		unix.Close(int(pair[1]))
	}

	// io_uring: a ring of 8 entries; enter and register on no ring, which
	// the kernel would answer with EBADF.
	var params [120]byte // struct io_uring_params
	fd, _, errno := unix.RawSyscall(unix.SYS_IO_URING_SETUP, 8, uintptr(unsafe.Pointer(&params)), 0)
	if errno == 0 {
		unix.Close(int(fd))
	}
	calls["io_uring_setup"] = errnoName(errnoErr(errno))
	_, _, errno = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, ^uintptr(0), 0, 0, 0, 0, 0)
	calls["io_uring_enter"] = errnoName(errnoErr(errno))
	_, _, errno = unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, ^uintptr(0), 0, 0, 0, 0, 0)
	calls["io_uring_register"] = errnoName(errnoErr(errno))

	// pidfd_getfd on itself, which ptrace rules would allow.
	if pidfd, err := unix.PidfdOpen(os.Getpid(), 0); err != nil {
		calls["pidfd_getfd"] = "pidfd_open: " + errnoName(err)
	} else {
		fd, err := unix.PidfdGetfd(pidfd, 1, 0)
		if err == nil {
			unix.Close(fd)
		}
		calls["pidfd_getfd"] = errnoName(err)
		unix.Close(pidfd)
	}

	for name, persona := range map[string]uintptr{
		"personality_read_implies_exec":    readImpliesExec,
		"personality_addr_no_randomize":    addrNoRandomize,
		"personality_read_implies_exec_hi": 1<<32 | readImpliesExec,
		"personality_linux":                0,
		"personality_linux32":              perLinux32,
		"personality_uname26":              uname26,
		"personality_linux32_uname26":      perLinux32 | uname26,
	} {
		_, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, persona, 0, 0)
		calls[name] = errnoName(errnoErr(errno))
		unix.RawSyscall(unix.SYS_PERSONALITY, 0, 0, 0) // back to Linux for the next invocation
	}

	files := map[string]string{}
	for _, p := range []string{"/proc/diskstats", "/proc/partitions"} {
		b, err := os.ReadFile(p)
		if err != nil {
			files[p] = "error: " + errnoName(err)
		} else {
			files[p] = string(b)
		}
	}
	return sandboxFilterReport{Calls: calls, Files: files}
}

// errnoErr is errno as an error, nil for 0.
func errnoErr(errno unix.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}
