package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	cgmanager "github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"

	// Device rules in the cgroup need the devices controller code.
	_ "github.com/opencontainers/cgroups/devices"
)

// Config places a Manager's state on the host.
type Config struct {
	// StateDir holds libcontainer's per-sandbox state; Reap reads it after a crash.
	StateDir string
	// RootFS is the runtime's root filesystem, mounted read-only.
	RootFS string
	// CgroupParent is the cgroup path, from each hierarchy's root, under
	// which every sandbox's cgroup is made, e.g. "/gust/3f2a…"; one per
	// worker so a worker reaps only its own. It is made absolute: a relative
	// parent would land under gustd's own cgroup, which changes with how
	// gustd was started (systemd, a container, a shell).
	CgroupParent string
	// WorkDir holds each stem cell's /var/task directory; it must be on the
	// same filesystem as the code cache for Assign to hard-link code.
	// Default: StateDir + "-work".
	WorkDir string
	// StemMemoryMB is a stem cell's memory limit until Assign sets the
	// function's (default 128, Lambda's default memory size).
	StemMemoryMB int
	// StemTmpMB is the size of a stem cell's /tmp (default 512).
	StemTmpMB int
	// TotalPids bounds the processes and threads of all sandboxes together,
	// so that many fork bombs at once, each within its own pids limit,
	// still leave the host room to fork. Default: three quarters of the
	// lower of the kernel's pid_max and threads-max.
	TotalPids int64
	// Logger receives lifecycle events.
	Logger *slog.Logger
}

// defaultPath is every sandboxed process's PATH.
const defaultPath = "PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin"

// Manager creates sandboxes and cleans up after them.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	tmp  *tmpDisks // nil: /tmp is a tmpfs
	uids *uidPool
}

// NewManager prepares the state directory and the root filesystem.
func NewManager(cfg Config) (*Manager, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: must run as root", ErrNotSupported)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.CgroupParent = filepath.Join("/", cfg.CgroupParent)
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Clean(cfg.StateDir) + "-work"
	}
	if cfg.StemMemoryMB <= 0 {
		cfg.StemMemoryMB = 128
	}
	if cfg.StemTmpMB <= 0 {
		cfg.StemTmpMB = 512
	}
	var err error
	if err = os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox state dir: %w", err)
	}
	// The stem directories are mounted into sandboxes, so the path to them
	// must be searchable by the sandbox user.
	if err := os.MkdirAll(cfg.WorkDir, 0o711); err != nil {
		return nil, fmt.Errorf("sandbox work dir: %w", err)
	}
	if err := EnsureRootFS(cfg.RootFS); err != nil {
		return nil, err
	}
	if cfg.TotalPids <= 0 {
		cfg.TotalPids = defaultTotalPids()
	}
	if err := limitParentPids(cfg.CgroupParent, cfg.TotalPids); err != nil {
		return nil, fmt.Errorf("sandbox parent cgroup %s: %w", cfg.CgroupParent, err)
	}
	if err := weighParent(cfg.CgroupParent); err != nil {
		cfg.Logger.Warn("sandbox parent cgroup: cpu weight not set; functions may starve under load", "err", err)
	}
	seed := sha256.Sum256([]byte(cfg.CgroupParent)) // one per worker
	m := &Manager{cfg: cfg, log: cfg.Logger, uids: newUIDPool(uidLockDir, binary.BigEndian.Uint64(seed[:8]))}
	if m.tmp, err = newTmpDisks(filepath.Clean(cfg.StateDir)+"-tmp", cfg.StemTmpMB); err != nil {
		m.log.Warn("sandbox /tmp is a tmpfs, which counts against each function's memory", "err", err)
	}
	return m, nil
}

// Sandbox is one container running (or about to run) one function process.
type Sandbox struct {
	id        string
	c         *libcontainer.Container
	proc      *libcontainer.Process
	ns        *netNS
	cgroupMem string // memory cgroup dir, for the OOM counter
	cgroupCPU string // cpu cgroup dir (the same one on v2)
	cgroupV2  bool
	exited    chan struct{}
	exit      Exit
	uid       int
	uids      *uidPool   // uid goes back here on Destroy
	passwd    string     // the host file bound at its /etc/passwd
	stem      *stemState // nil unless made by CreateStem
	statsMu   sync.Mutex
	peakFile  *os.File // the memory cgroup's peak usage, opened on first Stats
}

// Create makes a sandbox and leaves it waiting at exec: namespaces,
// cgroups and mounts are done, the function's process has not started.
// Start lets it run.
func (m *Manager) Create(ctx context.Context, spec Spec) (*Sandbox, error) {
	return m.create(ctx, spec, nil, nil)
}

// create makes the sandbox; stdin and extra (descriptors 3 on) go to its
// init and on to its process.
func (m *Manager) create(ctx context.Context, spec Spec, stdin *os.File, extra []*os.File) (_ *Sandbox, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns, err := newNetNS()
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
	}
	defer func() {
		if err != nil {
			ns.close()
		}
	}()
	if spec.TmpMB <= 0 {
		spec.TmpMB = 512
	}
	var disk *tmpDisk
	if m.tmp != nil && m.tmp.fits(spec.TmpMB, m.log) {
		if disk, err = m.tmp.make(spec.ID, spec.TmpMB); err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
		}
		defer disk.release() // mounted by then, or never to be
	}
	uid, err := m.uids.get()
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
	}
	defer func() {
		if err != nil {
			m.uids.put(uid)
		}
	}()
	passwd := filepath.Join(m.cfg.WorkDir, spec.ID+".passwd")
	if err := os.WriteFile(passwd, passwdFor(uid), 0o644); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.ID, err)
	}
	defer func() {
		if err != nil {
			os.Remove(passwd)
		}
	}()
	config := m.config(spec, ns, disk, passwd)
	c, err := libcontainer.Create(m.cfg.StateDir, spec.ID, config)
	if err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", spec.ID, err)
	}
	defer func() {
		if err != nil {
			_ = c.Destroy()
		}
	}()
	args := spec.Args
	if len(args) == 0 {
		args = []string{"/var/task/bootstrap"}
	}
	proc := &libcontainer.Process{
		Args:       args,
		Env:        append([]string{defaultPath}, spec.Env...),
		UID:        uid,
		GID:        GID,
		Cwd:        "/var/task",
		Stdout:     spec.Stdout,
		Stderr:     spec.Stderr,
		ExtraFiles: extra,
		Init:       true,
	}
	if stdin != nil {
		proc.Stdin = stdin
	}
	if err := c.Start(proc); err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
	}
	s := &Sandbox{id: spec.ID, c: c, proc: proc, ns: ns, exited: make(chan struct{}), uid: uid, uids: m.uids, passwd: passwd}
	if st, err := c.State(); err == nil {
		if p, ok := st.CgroupPaths["memory"]; ok {
			s.cgroupMem, s.cgroupCPU = p, st.CgroupPaths["cpu"]
		} else if p, ok := st.CgroupPaths[""]; ok {
			s.cgroupMem, s.cgroupCPU, s.cgroupV2 = p, p, true
		}
	}
	go s.wait()
	return s, nil
}

// passwdFor is a sandbox's /etc/passwd: its uid is Lambda's user.
func passwdFor(uid int) []byte {
	return fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:%d:%d::/home/sbx_user1051:/sbin/nologin\n", uid, GID)
}

// config is the container for spec. /tmp is disk's filesystem, or a
// tmpfs of spec.TmpMB if disk is nil; passwd is bound at /etc/passwd.
func (m *Manager) config(spec Spec, ns *netNS, disk *tmpDisk, passwd string) *configs.Config {
	const noexec = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV
	tmp := &configs.Mount{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: fmt.Sprintf("mode=1777,size=%dm", spec.TmpMB)}
	if disk != nil {
		tmp = &configs.Mount{Source: disk.dev.Name(), Destination: "/tmp", Device: "ext4", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME}
	}
	pids := spec.PidsLimit
	if pids <= 0 {
		pids = 1024
	}
	memory := int64(spec.MemoryMB) << 20
	shares := cpuShares(spec.MemoryMB)
	if spec.background {
		shares = minShares
	}
	oomAdj := 1000
	var rules []*devconfig.Rule
	for _, d := range specconv.AllowedDevices {
		rules = append(rules, &d.Rule)
	}
	if disk != nil {
		// The init opens the loop device to mount it. The sandbox has no
		// node for it in its /dev, and cannot make one.
		rules = append(rules, &devconfig.Rule{Type: devconfig.BlockDevice, Major: disk.major, Minor: disk.minor, Permissions: "rw", Allow: true})
	}
	return &configs.Config{
		Rootfs:     m.cfg.RootFS,
		Readonlyfs: true,
		Hostname:   "gust",
		Namespaces: configs.Namespaces{
			{Type: configs.NEWNS},
			{Type: configs.NEWUTS},
			{Type: configs.NEWIPC},
			{Type: configs.NEWPID},
			{Type: configs.NEWCGROUP},
			{Type: configs.NEWNET, Path: ns.path()},
		},
		Capabilities:    &configs.Capabilities{},
		NoNewPrivileges: true,
		NoNewKeyring:    true,
		Seccomp:         seccompFilter(),
		OomScoreAdj:     &oomAdj,
		Rlimits:         []configs.Rlimit{{Type: unix.RLIMIT_NOFILE, Hard: 1024, Soft: 1024}, {Type: unix.RLIMIT_CORE, Hard: 0, Soft: 0}},
		Devices:         specconv.AllowedDevices,
		// runc's masks, and the block devices' list and I/O counters: each
		// sandbox's /tmp is a loop device, so they would let one function
		// watch another's /tmp activity.
		MaskPaths: []string{
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
			"/proc/diskstats", "/proc/partitions",
		},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		Mounts: []*configs.Mount{
			{Source: "proc", Destination: "/proc", Device: "proc", Flags: noexec},
			{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
			{Source: spec.CodeDir, Destination: "/var/task", Device: "bind", Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV},
			{Source: passwd, Destination: "/etc/passwd", Device: "bind", Flags: unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
			tmp,
		},
		Cgroups: &cgroups.Cgroup{
			Name:   spec.ID,
			Parent: m.cfg.CgroupParent,
			Resources: &cgroups.Resources{
				Memory:    memory,
				CpuShares: shares,
				PidsLimit: &pids,
				Devices:   rules,
			},
		},
	}
}

// cpuShares is 1,024 per 1,769 MB: that buys one full vCPU on Lambda, and
// shares keep the proportion under contention without capping a lone
// function's cold start.
func cpuShares(memoryMB int) uint64 {
	return max(uint64(memoryMB)*1024/1769, minShares)
}

// minShares is the least CPU weight cgroup v1 takes (v2's weight 1).
const minShares = 2

// ID names the sandbox.
func (s *Sandbox) ID() string { return s.id }

// UID is the host uid the sandbox's processes run as.
func (s *Sandbox) UID() int { return s.uid }

// Listener is the Runtime API listener inside the sandbox's network namespace.
func (s *Sandbox) Listener() net.Listener { return s.ns.listener }

// Start lets the created sandbox exec its process; a stem cell must have
// been assigned first.
func (s *Sandbox) Start() error {
	if s.stem != nil && !s.stem.assigned {
		return fmt.Errorf("start sandbox %s: stem cell not assigned", s.id)
	}
	if err := s.c.Exec(); err != nil {
		return fmt.Errorf("exec sandbox %s: %w", s.id, err)
	}
	if s.stem != nil {
		if err := s.stem.sendEnv(); err != nil {
			return fmt.Errorf("start sandbox %s: environment: %w", s.id, err)
		}
	}
	return nil
}

// Pause freezes every process in the sandbox; a frozen sandbox uses no CPU.
func (s *Sandbox) Pause() error {
	if err := s.c.Pause(); err != nil {
		return fmt.Errorf("freeze sandbox %s: %w", s.id, err)
	}
	return nil
}

// Resume thaws a frozen sandbox.
func (s *Sandbox) Resume() error {
	if err := s.c.Resume(); err != nil {
		return fmt.Errorf("thaw sandbox %s: %w", s.id, err)
	}
	return nil
}

// Stats reads the sandbox's memory use and OOM kills.
func (s *Sandbox) Stats() (Stats, error) {
	peak, err := s.MemoryPeak()
	if err != nil {
		return Stats{}, err
	}
	return Stats{MemoryPeakBytes: peak, OOMKills: s.oomKills()}, nil
}

// MemoryPeak is the highest memory use seen. It runs after every
// invocation, so it reads the one cgroup file it needs through a
// descriptor kept open, not libcontainer's statistics (dozens of files).
func (s *Sandbox) MemoryPeak() (uint64, error) {
	peak, err := s.memoryPeak()
	if err != nil {
		return 0, fmt.Errorf("memory of sandbox %s: %w", s.id, err)
	}
	return peak, nil
}

func (s *Sandbox) memoryPeak() (uint64, error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.peakFile == nil {
		if s.cgroupMem == "" {
			return 0, errors.New("no memory cgroup")
		}
		names := []string{"memory.max_usage_in_bytes"}
		if s.cgroupV2 {
			names = []string{"memory.peak", "memory.current"} // memory.peak needs Linux 5.19
		}
		var err error
		for _, n := range names {
			if s.peakFile, err = os.Open(filepath.Join(s.cgroupMem, n)); err == nil {
				break
			}
		}
		if err != nil {
			return 0, err
		}
	}
	var buf [32]byte
	n, err := s.peakFile.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(buf[:n])), 10, 64)
}

// Exited is closed once the sandbox's main process has ended.
func (s *Sandbox) Exited() <-chan struct{} { return s.exited }

// Exit says how the process ended; valid once Exited is closed.
func (s *Sandbox) Exit() Exit { return s.exit }

func (s *Sandbox) wait() {
	st, err := s.proc.Wait()
	e := Exit{Code: -1, At: time.Now()}
	if st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal().String()
		} else {
			e.Code = st.ExitCode()
		}
	} else if err != nil {
		e.Signal = err.Error()
	}
	e.OOM = s.oomKills() > 0
	s.exit = e
	close(s.exited)
}

// oomKills reads the kernel's count of OOM kills in the sandbox's cgroup.
func (s *Sandbox) oomKills() uint64 {
	if s.cgroupMem == "" {
		return 0
	}
	file, key := "memory.oom_control", "oom_kill"
	if s.cgroupV2 {
		file = "memory.events"
	}
	return readKeyed(filepath.Join(s.cgroupMem, file), key)
}

// Destroy kills every process in the sandbox and removes its cgroups,
// state and network namespace. It is safe to call more than once.
func (s *Sandbox) Destroy() error {
	_ = s.c.Signal(unix.SIGKILL)
	_ = s.c.Resume() // a frozen process cannot die
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
	err := s.c.Destroy()
	s.ns.close()
	if s.uids != nil && err == nil { // its processes are gone: the uid is free
		s.uids.put(s.uid)
		s.uids = nil
	}
	if e := os.Remove(s.passwd); e != nil && !errors.Is(e, os.ErrNotExist) {
		err = errors.Join(err, e)
	}
	s.statsMu.Lock()
	if s.peakFile != nil {
		s.peakFile.Close()
		s.peakFile = nil
	}
	s.statsMu.Unlock()
	if s.stem != nil {
		s.stem.stdin.Close()
		if !s.stem.assigned {
			s.stem.output.Close() // nobody took it over
		}
		if e := os.RemoveAll(s.stem.dir); e != nil {
			err = errors.Join(err, e)
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("destroy sandbox %s: %w", s.id, err)
	}
	return nil
}

// limitParentPids makes the sandboxes' parent cgroup and sets its pids
// limit; every sandbox's cgroup is made below it.
func limitParentPids(parent string, limit int64) error {
	// SkipDevices: an empty device list here would deny every device to
	// the sandboxes below.
	res := &cgroups.Resources{PidsLimit: &limit, SkipDevices: true}
	mgr, err := cgmanager.New(&cgroups.Cgroup{Path: parent, Resources: res})
	if err != nil {
		return err
	}
	if err := mgr.Apply(-1); err != nil { // create it, move no process in
		return err
	}
	return mgr.Set(res)
}

// weighParent gives the sandboxes' parent cgroup, and each of its ancestors
// below the root, the CPU weight of as many busy processes as the host has
// CPUs. By default the whole group weighs as much as one process of the
// root cgroup, so under load gustd's and the clients' threads took the CPUs
// and every invocation waited inside the function for its share: with 16
// clients on 2 CPUs the p99 fell from 63–80 ms to 27 ms and throughput rose
// 1.2–1.5× once the group weighed 2 CPUs. A sandbox's own share (by its
// memory) still divides the group among functions.
func weighParent(parent string) error {
	ncpu := runtime.NumCPU()
	var errs []error
	for p := parent; p != "/" && p != "." && p != ""; p = filepath.Dir(p) {
		if cgroups.IsCgroup2UnifiedMode() {
			f := filepath.Join("/sys/fs/cgroup", p, "cpu.weight")
			if _, err := os.Stat(f); err == nil { // absent: the cpu controller is not enabled there
				errs = append(errs, os.WriteFile(f, []byte(strconv.Itoa(min(100*ncpu, 10000))), 0))
			}
			continue
		}
		f := filepath.Join("/sys/fs/cgroup/cpu", p, "cpu.shares")
		if _, err := os.Stat(f); err == nil {
			errs = append(errs, os.WriteFile(f, []byte(strconv.Itoa(1024*ncpu)), 0))
		}
	}
	return errors.Join(errs...)
}

func defaultTotalPids() int64 {
	var limit int64
	for _, f := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		if b, err := os.ReadFile(f); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (limit == 0 || n < limit) {
				limit = n
			}
		}
	}
	if limit == 0 {
		limit = 32768
	}
	return limit * 3 / 4
}
