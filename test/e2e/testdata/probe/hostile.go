package main

// The hostile actions: what a malicious or broken function tries against
// its sandbox. Each reports what the kernel answered (an errno name per
// attempt, "" when the call succeeded) so the e2e suite can judge the
// containment from the outside; none of them needs the attempt to succeed.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errnoName names the errno behind err ("EPERM"), or gives err's text
// when there is none; "" for nil.
func errnoName(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
	}
	return err.Error()
}

// ---- fork bomb ----

// bombPause is how long a bomb process waits after a failed fork: the
// bomb stays at the pids limit without taking the machine's CPUs (the
// kernel copies a process's memory map before the pids limit refuses
// the fork, so each failure costs).
var bombPause = syscall.Timespec{Sec: 1}

// rawFork forks with clone(SIGCHLD): plain fork, on every architecture.
// The child is a copy of a multi-threaded Go process with one thread, so
// it may only make raw system calls from here on.
//
//go:nosplit
func rawFork() (uintptr, syscall.Errno) {
	pid, _, errno := syscall.RawSyscall(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0)
	return pid, errno
}

// bombLoop is every bomb process's life: fork (parent and child both go
// on forking), and on failure wait a little and fork again. It never
// returns and touches nothing of the Go runtime.
//
//go:nosplit
func bombLoop() {
	for {
		if _, errno := rawFork(); errno != 0 {
			syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&bombPause)), 0, 0)
		}
	}
}

// startBomb forks the bomb's first process.
func startBomb() error {
	pid, errno := rawFork()
	if errno != 0 {
		return errno
	}
	if pid == 0 {
		bombLoop()
	}
	return nil
}

// forkBomb sets off a fork bomb, waits until this process cannot start a
// program any more (the pids limit), then kills and reaps the bomb and
// reports the error it got, as a function that survived one would.
func forkBomb() error {
	if os.Getpid() != 1 {
		return errors.New("not the init of a pid namespace: no fork bomb here")
	}
	began := time.Now()
	if err := startBomb(); err != nil {
		return fmt.Errorf("fork bomb did not start: %w", err)
	}
	var execErr error
	peak := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		peak = max(peak, countProcs())
		cmd := exec.Command("/var/task/bootstrap")
		cmd.Env = []string{"PROBE_CHILD=exit"}
		if execErr = cmd.Start(); execErr != nil {
			break
		}
		_ = cmd.Wait()
	}
	peak = max(peak, countProcs())
	if execErr == nil {
		killAll()
		return fmt.Errorf("fork bomb not stopped: %d processes after 5s", peak)
	}
	stopped := time.Since(began)
	left := killAll()
	fmt.Fprintf(os.Stderr, "fork bomb: stopped after %s, cleaned up in %s\n", stopped, time.Since(began)-stopped)
	return fmt.Errorf("fork bomb stopped at %d processes, %d left after cleanup: %w", peak, left, execErr)
}

// killAll kills every other process of the sandbox (kill(-1) from the
// namespace's init spares only init) and reaps them, and returns how many
// are left after a few seconds.
func killAll() int {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		killErr := syscall.Kill(-1, syscall.SIGKILL)
		for {
			if pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
		if errors.Is(killErr, syscall.ESRCH) && countProcs() == 1 {
			return 0
		}
	}
	return countProcs() - 1
}

// countProcs counts the processes this sandbox's /proc lists.
func countProcs() int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	return n
}

// forkBombHold is a fork bomb that never stops: only the platform's
// timeout ends it.
func forkBombHold() error {
	if os.Getpid() != 1 {
		return errors.New("not the init of a pid namespace: no fork bomb here")
	}
	if err := startBomb(); err != nil {
		return err
	}
	time.Sleep(time.Hour) // not select{}: the Go runtime would call that a deadlock
	return nil
}

// ---- CPU and disk ----

// spin burns every CPU the sandbox has until it is killed.
func spin() {
	for range runtime.NumCPU() {
		go func() {
			for x := 0; ; x++ {
				_ = x
			}
		}()
	}
	for x := 0; ; x++ {
		_ = x
	}
}

// fillTmp writes /tmp/fill until a write fails, removes it and reports
// how far it got, the error, and what statfs says /tmp is.
func fillTmp() map[string]any {
	out := map[string]any{}
	var st unix.Statfs_t
	if err := unix.Statfs("/tmp", &st); err == nil {
		out["fs_type"] = fmt.Sprintf("0x%x", st.Type)
		out["size_mb"] = int64(st.Blocks) * st.Bsize >> 20
	}
	f, err := os.Create("/tmp/fill")
	if err != nil {
		out["err"] = errnoName(err)
		return out
	}
	defer os.Remove("/tmp/fill")
	defer f.Close()
	chunk := make([]byte, 4<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	var written int64
	start := time.Now()
	for {
		n, err := f.Write(chunk)
		written += int64(n)
		if err != nil {
			out["err"] = errnoName(err)
			out["err_text"] = err.Error()
			break
		}
	}
	out["written_mb"] = written >> 20
	out["ms"] = time.Since(start).Milliseconds()
	return out
}

// ---- privileged calls ----

// mountAttempts tries each way of changing the sandbox's mounts; source
// names each mount so the host can look for it.
func mountAttempts(source string) map[string]string {
	_ = os.MkdirAll("/tmp/m", 0o755)
	out := map[string]string{
		"mount_tmpfs":   errnoName(unix.Mount(source, "/tmp/m", "tmpfs", 0, "size=1m")),
		"mount_bind":    errnoName(unix.Mount("/", "/tmp/m", "", unix.MS_BIND|unix.MS_REC, "")),
		"mount_proc":    errnoName(unix.Mount(source, "/tmp/m", "proc", 0, "")),
		"remount_root":  errnoName(unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND, "")),
		"umount_proc":   errnoName(unix.Unmount("/proc", unix.MNT_DETACH)),
		"umount_task":   errnoName(unix.Unmount("/var/task", unix.MNT_DETACH)),
		"unshare_user":  errnoName(unix.Unshare(unix.CLONE_NEWUSER | unix.CLONE_NEWNS)),
		"clone_newuser": errnoName(cloneNewUser()),
		"chroot":        errnoName(unix.Chroot("/tmp")),
		"pivot_root":    errnoName(unix.PivotRoot("/tmp", "/tmp/m")),
	}
	fd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	out["fsopen"] = errnoName(err)
	fd, err = unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE)
	if err == nil {
		unix.Close(fd)
	}
	out["open_tree"] = errnoName(err)
	return out
}

// cloneNewUser tries clone(CLONE_NEWUSER), the way around a denied
// unshare; a child it makes exits at once.
func cloneNewUser() error {
	pid, errno := rawClone(unix.CLONE_NEWUSER | uintptr(syscall.SIGCHLD))
	if errno != 0 {
		return errno
	}
	if pid == 0 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
	_, _ = syscall.Wait4(int(pid), nil, 0, nil)
	return nil
}

//go:nosplit
func rawClone(flags uintptr) (uintptr, syscall.Errno) {
	pid, _, errno := syscall.RawSyscall(syscall.SYS_CLONE, flags, 0, 0)
	return pid, errno
}

// ptraceAttempts tries to trace: itself (TRACEME, from a child), a child
// of its own (ATTACH, SEIZE, process_vm_readv, each on a fresh child),
// which an unprivileged parent may do outside a sandbox, and init.
func ptraceAttempts() map[string]string {
	runtime.LockOSThread() // ptrace requests come from the tracer thread
	defer runtime.UnlockOSThread()
	out := map[string]string{}
	traceme := exec.Command("/var/task/bootstrap")
	traceme.Env = []string{"PROBE_CHILD=traceme"}
	if b, err := traceme.Output(); err != nil {
		out["traceme"] = "child: " + err.Error()
	} else {
		out["traceme"] = strings.TrimSpace(string(b))
	}
	onChild := func(name string, try func(pid int) error) {
		cmd := exec.Command("/var/task/bootstrap")
		cmd.Env = []string{"PROBE_CHILD=sleep"}
		if err := cmd.Start(); err != nil {
			out[name] = "start child: " + err.Error()
			return
		}
		out[name] = errnoName(try(cmd.Process.Pid))
		_ = cmd.Process.Kill() // a tracee dies with SIGKILL too
		_ = cmd.Wait()
	}
	onChild("attach_child", unix.PtraceAttach)
	onChild("seize_child", unix.PtraceSeize)
	onChild("process_vm_readv", func(pid int) error {
		// The child is this same static binary: its globals sit at the
		// same addresses.
		var buf [8]byte
		local := []unix.Iovec{{Base: &buf[0], Len: 8}}
		remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&bombPause)), Len: 8}}
		_, err := unix.ProcessVMReadv(pid, local, remote, 0)
		return err
	})
	out["attach_init"] = errnoName(unix.PtraceAttach(1))
	return out
}

// traceMe is the PROBE_CHILD=traceme child: it asks to be traced by its
// parent and prints the errno.
func traceMe() {
	var err error
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0, 0, 0, 0); errno != 0 {
		err = errno
	}
	fmt.Println(errnoName(err))
}

// moduleAttempts tries to load and unload kernel modules. The image is
// garbage, so even a kernel that let the call through would refuse it.
func moduleAttempts() map[string]string {
	out := map[string]string{}
	image := []byte("not a kernel module")
	out["init_module"] = errnoName(unix.InitModule(image, ""))
	f, err := os.Open("/var/task/bootstrap")
	if err != nil {
		out["finit_module"] = "open: " + err.Error()
	} else {
		out["finit_module"] = errnoName(unix.FinitModule(int(f.Fd()), "", 0))
		f.Close()
	}
	out["delete_module"] = errnoName(unix.DeleteModule("gust_probe_no_such_module", unix.O_NONBLOCK))
	return out
}

// rawSocketAttempts tries to open raw and packet sockets (and an ICMP
// "ping" socket, which some hosts allow unprivileged users).
func rawSocketAttempts() map[string]string {
	try := func(domain, typ, proto int) string {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		if err == nil {
			unix.Close(fd)
		}
		return errnoName(err)
	}
	ethPAll := int(uint16(unix.ETH_P_ALL)>>8 | uint16(unix.ETH_P_ALL)<<8) // htons
	return map[string]string{
		"inet_raw_icmp":   try(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP),
		"inet_raw_raw":    try(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW),
		"inet6_raw_icmp":  try(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6),
		"packet_raw":      try(unix.AF_PACKET, unix.SOCK_RAW, ethPAll),
		"packet_dgram":    try(unix.AF_PACKET, unix.SOCK_DGRAM, ethPAll),
		"inet_ping_dgram": try(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP),
	}
}

// ---- the host and other sandboxes ----

// connectAttempts dials each address: "tcp:host:port", "udp:host:port"
// (a datagram is sent; only the receiver can tell) or "unix:@name".
func connectAttempts(addrs []string) map[string]string {
	out := map[string]string{}
	for _, a := range addrs {
		network, addr, _ := strings.Cut(a, ":")
		c, err := net.DialTimeout(network, addr, 500*time.Millisecond)
		if err == nil {
			if network == "udp" {
				_, err = c.Write([]byte("gust-hostile"))
			}
			c.Close()
		}
		out[a] = errText(err)
	}
	return out
}

// errText is an error's text without the dial's addresses: "connection
// refused", "network is unreachable", "i/o timeout".
func errText(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "i/o timeout"
	}
	return err.Error()
}

// fileReport is what "files" saw of the host's files.
type fileReport struct {
	// Read maps a path to its first bytes, or to "error: ERRNO".
	Read map[string]string `json:"read"`
	// OpenWrite maps a path to the errno of opening it for writing ("" if
	// it opened; nothing is ever written).
	OpenWrite map[string]string `json:"open_write"`
	// Procs maps each pid this sandbox's /proc lists to its command line.
	Procs map[string]string `json:"procs"`
	// MarkerIn lists the /proc files in which the marker was found.
	MarkerIn []string `json:"marker_in"`
	// Init is pid 1's environment.
	Init []string `json:"init_environ"`
}

// files reads paths, opens control files for writing (and closes them
// unwritten), and searches every process's environment and command line
// for marker.
func files(paths []string, marker string) fileReport {
	r := fileReport{Read: map[string]string{}, OpenWrite: map[string]string{}, Procs: map[string]string{}, MarkerIn: []string{}}
	for _, p := range paths {
		b, err := readHead(p, 512)
		if err != nil {
			r.Read[p] = "error: " + errnoName(err)
		} else {
			r.Read[p] = string(b)
		}
	}
	for _, p := range []string{
		"/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
		"/proc/sys/vm/drop_caches", "/proc/sys/kernel/hostname", "/var/task/bootstrap", "/etc/passwd",
	} {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		r.OpenWrite[p] = errnoName(err)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		r.Procs[e.Name()] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		for _, f := range []string{"cmdline", "environ"} {
			b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if marker != "" && strings.Contains(string(b), marker) {
				r.MarkerIn = append(r.MarkerIn, "/proc/"+e.Name()+"/"+f)
			}
		}
	}
	env, _ := os.ReadFile("/proc/1/environ")
	r.Init = strings.Split(strings.TrimRight(string(env), "\x00"), "\x00")
	return r
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := f.Read(buf)
	if m == 0 && err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:m], nil
}

// planted is what "plant" left for another sandbox to look for; kept
// reachable so the listener stays open while the sandbox is warm.
var planted net.Listener

// plant leaves traces for another function to find: a file in /tmp, a
// process whose command line holds marker, and a listener on loopback
// port port.
func plant(marker string, port int) (map[string]any, error) {
	if err := os.WriteFile("/tmp/"+marker, []byte(marker), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("/var/task/bootstrap", marker)
	cmd.Env = []string{"PROBE_CHILD=sleep"}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait() }()
	if planted == nil {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return nil, err
		}
		planted = ln
	}
	return map[string]any{"child_pid": cmd.Process.Pid}, nil
}

// look searches for another function's traces from its own sandbox,
// then tries to kill every process it can reach, and signal 0 each host
// pid in pids.
func look(marker string, port int, pids []int) map[string]any {
	_, statErr := os.Stat("/tmp/" + marker)
	c, dialErr := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 500*time.Millisecond)
	if dialErr == nil {
		c.Close()
	}
	r := files(nil, marker)
	signals := map[string]string{}
	for _, pid := range pids {
		signals[strconv.Itoa(pid)] = errnoName(syscall.Kill(pid, 0))
	}
	// Its own children would die; nothing else may. Only as a namespace's
	// init: elsewhere kill(-1) would reach every process of the user.
	killErr := errors.New("not the init of a pid namespace")
	if os.Getpid() == 1 {
		killErr = syscall.Kill(-1, syscall.SIGKILL)
	}
	return map[string]any{
		"tmp_marker": errnoName(statErr), "dial": errText(dialErr), "procs": r.Procs, "marker_in": r.MarkerIn,
		"signal0": signals, "kill_all": errnoName(killErr),
	}
}

// inotifyHold opens inotify instances until the kernel refuses and keeps
// them open (the sandbox stays warm with them); inotifyOne opens one.
var inotifyHeld []int

func inotifyHold() map[string]any {
	var err error
	for {
		var fd int
		if fd, err = unix.InotifyInit1(unix.IN_CLOEXEC); err != nil {
			break
		}
		inotifyHeld = append(inotifyHeld, fd)
	}
	return map[string]any{"held": len(inotifyHeld), "err": errnoName(err)}
}

func inotifyRelease() {
	for _, fd := range inotifyHeld {
		unix.Close(fd)
	}
	inotifyHeld = nil
}

func inotifyOne() map[string]any {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	return map[string]any{"err": errnoName(err)}
}
