package sandbox

import (
	"slices"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside a sandbox. Most already need
// capabilities the sandbox lacks; the filter is the second wall, and it also
// covers calls open to unprivileged users (unshare, userfaultfd, bpf, …)
// that widen the kernel's attack surface. pidfd_getfd takes a descriptor
// from another process, as ptrace would.
var deniedSyscalls = []string{
	"acct", "add_key", "bpf", "chroot", "clock_adjtime", "clock_settime",
	"create_module", "delete_module", "finit_module", "fsconfig", "fsmount",
	"fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module",
	"ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
	"lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount",
	"move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
	"open_tree", "perf_event_open", "pidfd_getfd", "pivot_root",
	"process_vm_readv", "process_vm_writev", "ptrace", "query_module",
	"quotactl", "reboot", "request_key", "set_mempolicy", "setns",
	"settimeofday", "stime", "swapoff", "swapon", "syslog", "umount",
	"umount2", "unshare", "uselib", "userfaultfd", "ustat", "vhangup", "vm86",
	"vm86old",
}

// absentSyscalls fail with ENOSYS, as on a kernel built without them, so
// that libraries fall back (libuv, for one, to its thread pool). io_uring
// has been a steady source of privilege escalations, and the filter cannot
// see the operations it submits; Docker, ChromeOS and Android block it.
var absentSyscalls = []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}

// socketFamilies are the address families a function may open sockets of:
// Unix, IPv4, IPv6, and netlink, which Go's net.Interfaces, glibc's
// getaddrinfo and libuv's interface listing use. Every other family fails
// with EPERM: AF_VSOCK reaches the hypervisor and is not network-namespaced,
// and the rarer ones (RDS, TIPC, DCCP, ALG, …) load kernel modules on first
// use, a known path to kernel bugs. AF_PACKET already needs CAP_NET_RAW.
var socketFamilies = []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

// personalityFlags are the personality(2) flags a function may set, alone
// or together: PER_LINUX32 and UNAME26, as in Docker's default profile
// (values 0, 0x8, 0x20000 and 0x20008). The others disable address-space
// randomisation (ADDR_NO_RANDOMIZE), make readable memory executable
// (READ_IMPLIES_EXEC), map page zero, and so on. Docker also allows the
// query 0xffffffff; here it fails too, since allowing that one value among
// denied ones takes an AND the filter's rules cannot express.
const personalityFlags = perLinux32 | uname26

// personality(2) flags x/sys/unix does not name.
const (
	perLinux32 = 0x0008
	uname26    = 0x0020000
)

func seccompFilter() *configs.Seccomp {
	s := &configs.Seccomp{
		DefaultAction: configs.Allow,
		Architectures: []string{"amd64", "x86", "x32", "arm64", "arm"},
	}
	deny := func(name string, errno unix.Errno, args ...*configs.Arg) {
		ret := uint(errno)
		s.Syscalls = append(s.Syscalls, &configs.Syscall{Name: name, Action: configs.Errno, ErrnoRet: &ret, Args: args})
	}
	for _, name := range deniedSyscalls {
		deny(name, unix.EPERM)
	}
	for _, name := range absentSyscalls {
		deny(name, unix.ENOSYS)
	}
	// clone with a namespace flag reaches unshare without unshare(2): one
	// rule per flag, since rules for one syscall are OR'd.
	for _, flag := range []uint64{
		unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
		unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
	} {
		deny("clone", unix.EPERM, &configs.Arg{Index: 0, Value: flag, ValueTwo: flag, Op: configs.MaskEqualTo})
	}
	// clone3 passes its flags in memory the filter cannot read; ENOSYS makes
	// libc fall back to clone, which the rules above can check.
	deny("clone3", unix.ENOSYS)

	// Rules compare all 64 bits of a register while the kernel reads an
	// int, so a value above the allowed ones (even one that only has high
	// bits set) is denied, not truncated into an allowed one. A rule with
	// two conditions on one argument would become two rules (libcontainer
	// ORs them), so each rule checks one value or one bound.
	//
	// On 32-bit x86, libseccomp turns these rules into rules for
	// socketcall(SYS_SOCKET), whose arguments are in memory: there every
	// socketcall socket fails, closed rather than open.
	topFamily := slices.Max(socketFamilies)
	for _, call := range []string{"socket", "socketpair"} {
		for family := uint64(unix.AF_UNSPEC + 1); family < topFamily; family++ {
			if !slices.Contains(socketFamilies, family) {
				deny(call, unix.EPERM, &configs.Arg{Index: 0, Value: family, Op: configs.EqualTo})
			}
		}
		deny(call, unix.EPERM, &configs.Arg{Index: 0, Value: topFamily, Op: configs.GreaterThan})
	}
	// The audit netlink socket speaks to the kernel's audit subsystem.
	deny("socket", unix.EPERM,
		&configs.Arg{Index: 0, Value: unix.AF_NETLINK, Op: configs.EqualTo},
		&configs.Arg{Index: 2, Value: 0xffffffff, ValueTwo: unix.NETLINK_AUDIT, Op: configs.MaskEqualTo})
	// personality: any value above the flags allowed, and any below them
	// with a bit they lack.
	for bit := uint64(1); bit < personalityFlags; bit <<= 1 {
		if bit&personalityFlags == 0 {
			deny("personality", unix.EPERM, &configs.Arg{Index: 0, Value: bit, ValueTwo: bit, Op: configs.MaskEqualTo})
		}
	}
	deny("personality", unix.EPERM, &configs.Arg{Index: 0, Value: personalityFlags, Op: configs.GreaterThan})
	return s
}
