// Command probe reports what a process sees from inside a sandbox, as JSON
// on stdout, then serves one line to the Runtime API listener to prove the
// listener is reachable from inside.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userName looks uid up in /etc/passwd.
func userName(uid int) string {
	b, _ := os.ReadFile("/etc/passwd")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) > 2 && f[2] == fmt.Sprint(uid) {
			return f[0]
		}
	}
	return ""
}

// tmpInfo describes /tmp before anything is written to it: its
// filesystem's magic number, its mode and what it holds.
func tmpInfo() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/tmp", &st); err != nil {
		return err.Error()
	}
	fi, err := os.Stat("/tmp")
	if err != nil {
		return err.Error()
	}
	names := []string{}
	entries, _ := os.ReadDir("/tmp")
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return fmt.Sprintf("0x%x %v %v", st.Type, fi.Mode(), names)
}

func main() {
	if (len(os.Args) > 1 && os.Args[1] == "alloc") || os.Getenv("PROBE_MODE") == "alloc" {
		var keep [][]byte
		for i := 0; i < 1000; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println(len(keep))
		return
	}
	out := map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "pid": os.Getpid(), "extra_fds": extraFDs()}
	_, err := os.ReadFile("/etc/shadow")
	out["shadow_err"] = errString(err)
	cmdline, _ := os.ReadFile("/proc/1/cmdline")
	out["pid1"] = strings.ReplaceAll(string(cmdline), "\x00", " ")
	out["task_write_err"] = errString(os.WriteFile("/var/task/x", []byte("x"), 0o644))
	out["tmp"] = tmpInfo()
	out["user"] = userName(os.Getuid())
	out["tmp_write_err"] = errString(os.WriteFile("/tmp/x", []byte("x"), 0o644))
	out["root_write_err"] = errString(os.WriteFile("/x", []byte("x"), 0o644))
	ifaces, _ := net.Interfaces()
	var names []string
	for _, i := range ifaces {
		names = append(names, i.Name)
	}
	out["ifaces"] = names
	out["env"] = os.Getenv("PROBE_ENV")
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapEff:") || strings.HasPrefix(l, "NoNewPrivs:") || strings.HasPrefix(l, "Seccomp:") {
			k, v, _ := strings.Cut(l, ":")
			out[k] = strings.TrimSpace(v)
		}
	}
	out["filtered"] = filtered()
	conn, err := net.Dial("tcp", os.Getenv("AWS_LAMBDA_RUNTIME_API"))
	out["api_err"] = errString(err)
	if err == nil {
		conn.Write([]byte("hello\n"))
		conn.Close()
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

// extraFDs lists the descriptors above stderr the process was started with
// (aside from the one reading the list and the Go runtime's poller): a
// function should get only stdio.
func extraFDs() []string {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return []string{err.Error()}
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return []string{err.Error()}
	}
	extra := []string{}
	for _, n := range names {
		if n == "0" || n == "1" || n == "2" || n == fmt.Sprint(d.Fd()) {
			continue
		}
		link, _ := os.Readlink("/proc/self/fd/" + n)
		if link != "anon_inode:[eventpoll]" && link != "anon_inode:[eventfd]" {
			extra = append(extra, n+" -> "+link)
		}
	}
	return extra
}

// ioUringParams is io_uring_setup's struct io_uring_params; a global, since
// a stack that moves would leave its address behind.
var ioUringParams [120]byte

// filtered makes calls the seccomp filter decides on and reads files the
// sandbox masks: each maps to the errno name it got ("" for success) or to
// the file's length.
func filtered() map[string]string {
	out := map[string]string{}
	call := func(name string, trap uintptr, args ...uintptr) {
		args = append(args, make([]uintptr, 3)...)
		r, _, errno := unix.RawSyscall(trap, args[0], args[1], args[2])
		out[name] = ""
		if errno != 0 {
			out[name] = unix.ErrnoName(errno)
		} else if trap == unix.SYS_SOCKET || trap == unix.SYS_IO_URING_SETUP {
			unix.Close(int(r))
		}
	}
	call("socket_vsock", unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM)
	call("socket_vsock_high_bits", unix.SYS_SOCKET, 1<<32|unix.AF_VSOCK, unix.SOCK_STREAM)
	call("socket_netlink_audit", unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT)
	call("socket_netlink_route", unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	call("io_uring_setup", unix.SYS_IO_URING_SETUP, 8, uintptr(unsafe.Pointer(&ioUringParams)))
	call("personality_read_implies_exec", unix.SYS_PERSONALITY, 0x0400000)
	call("personality_uname26", unix.SYS_PERSONALITY, 0x0020000)
	call("personality_linux", unix.SYS_PERSONALITY, 0)
	if pidfd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		fd, err := unix.PidfdGetfd(pidfd, 1, 0)
		out["pidfd_getfd"] = ""
		if errno, ok := err.(syscall.Errno); ok {
			out["pidfd_getfd"] = unix.ErrnoName(errno)
		}
		if err == nil {
			unix.Close(fd)
		}
	}
	for _, p := range []string{"/proc/diskstats", "/proc/partitions"} {
		b, err := os.ReadFile(p)
		out[p] = fmt.Sprintf("%d bytes %s", len(b), errString(err))
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
