package sandbox

import (
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside a sandbox. Most already need
// capabilities the sandbox lacks; the filter is the second wall, and it also
// covers calls open to unprivileged users (unshare, userfaultfd, bpf, …)
// that widen the kernel's attack surface.
var deniedSyscalls = []string{
	"acct", "add_key", "bpf", "chroot", "clock_adjtime", "clock_settime",
	"create_module", "delete_module", "finit_module", "fsconfig", "fsmount",
	"fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module",
	"ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
	"lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount",
	"move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
	"open_tree", "perf_event_open", "pivot_root", "process_vm_readv",
	"process_vm_writev", "ptrace", "query_module", "quotactl", "reboot",
	"request_key", "set_mempolicy", "setns", "settimeofday", "stime",
	"swapoff", "swapon", "syslog", "umount", "umount2", "unshare", "uselib",
	"userfaultfd", "ustat", "vhangup", "vm86", "vm86old",
}

func seccompFilter() *configs.Seccomp {
	eperm := uint(1)
	s := &configs.Seccomp{
		DefaultAction: configs.Allow,
		Architectures: []string{"amd64", "x86", "x32", "arm64", "arm"},
	}
	for _, name := range deniedSyscalls {
		s.Syscalls = append(s.Syscalls, &configs.Syscall{Name: name, Action: configs.Errno, ErrnoRet: &eperm})
	}
	// clone with a namespace flag reaches unshare without unshare(2): one
	// rule per flag, since rules for one syscall are OR'd.
	for _, flag := range []uint64{
		unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
		unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
	} {
		s.Syscalls = append(s.Syscalls, &configs.Syscall{
			Name: "clone", Action: configs.Errno, ErrnoRet: &eperm,
			Args: []*configs.Arg{{Index: 0, Value: flag, ValueTwo: flag, Op: configs.MaskEqualTo}},
		})
	}
	// clone3 passes its flags in memory the filter cannot read; ENOSYS makes
	// libc fall back to clone, which the rules above can check.
	enosys := uint(unix.ENOSYS)
	s.Syscalls = append(s.Syscalls, &configs.Syscall{Name: "clone3", Action: configs.Errno, ErrnoRet: &enosys})
	return s
}
