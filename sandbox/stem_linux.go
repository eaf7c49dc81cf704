package sandbox

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// A stem cell is a sandbox made before anyone knows which function it is
// for: namespaces, cgroup, mounts, seccomp and the Runtime API listener are
// done, and its init waits at exec. Assign fills in what is per function —
// the code (hard links into the sandbox's own /var/task directory, which is
// already bind-mounted), the memory limit and the output — and Start lets
// it run. The process it execs is this same binary (/proc/self/exe of the
// waiting init), whose C constructor (stem_linux.c) reads the function's
// environment from its stdin and execs /var/task/bootstrap with it:
// libcontainer fixes a process's environment when the container is
// created, so the environment has to arrive another way.

// stemMarker in a process's environment makes stem_linux.c take over.
const stemMarker = "_GUST_STEM=1"

type stemState struct {
	dir      string   // host directory mounted at /var/task
	stdin    *os.File // write end: the function's environment, NUL-separated
	output   *os.File // read end of the process's stdout and stderr
	memoryMB int
	env      []string // set by Assign, sent by Start
	assigned bool
}

// CreateStem makes a stem cell ahead, with the manager's default memory
// limit and the least CPU weight there is, so its creation yields to the
// functions running meanwhile.
func (m *Manager) CreateStem(ctx context.Context, id string) (*Sandbox, error) {
	return m.createStem(ctx, id, true)
}

// CreateStemNow makes a stem cell for a cold start that waits for it, with
// the weight of a function of the default memory.
func (m *Manager) CreateStemNow(ctx context.Context, id string) (*Sandbox, error) {
	return m.createStem(ctx, id, false)
}

func (m *Manager) createStem(ctx context.Context, id string, background bool) (_ *Sandbox, err error) {
	if !StemsSupported() {
		return nil, fmt.Errorf("%w: stem cells re-execute this binary inside the sandbox, which has no shared libraries: it must be linked statically", ErrNotSupported)
	}
	dir := filepath.Join(m.cfg.WorkDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stem %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	// The process's stdout and stderr are one pipe it holds directly, as
	// for any sandbox, so the worker can tell how much output is unread.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stem %s: %w", id, err)
	}
	defer inR.Close() // the child holds its own copy
	outR, outW, err := os.Pipe()
	if err != nil {
		inW.Close()
		return nil, fmt.Errorf("stem %s: %w", id, err)
	}
	defer outW.Close()
	st := &stemState{dir: dir, stdin: inW, output: outR, memoryMB: m.cfg.StemMemoryMB}
	sb, err := m.create(ctx, Spec{
		ID: id, CodeDir: dir, MemoryMB: st.memoryMB, TmpMB: m.cfg.StemTmpMB,
		Args: []string{"/proc/self/exe"}, Env: []string{stemMarker},
		Stdout: outW, Stderr: outW, background: background,
	}, inR, initFiles())
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	sb.stem = st
	return sb, nil
}

// StemsSupported reports whether this binary can serve as a stem cell's
// launcher: the sandbox's root filesystem has no dynamic loader, so only a
// statically linked binary (gustd as `make build` links it) runs there.
func StemsSupported() bool {
	staticOnce.Do(func() {
		f, err := elf.Open("/proc/self/exe")
		if err != nil {
			return
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return
			}
		}
		static = true
	})
	return static
}

var (
	staticOnce sync.Once
	static     bool
)

// Assignment is what makes a stem cell one function's sandbox.
type Assignment struct {
	// CodeDir is the function's extracted code; it is hard-linked (copied
	// across filesystems) into the sandbox's /var/task.
	CodeDir string
	// Env is the function's environment, KEY=VALUE.
	Env []string
	// MemoryMB is the function's memory limit; CPU shares follow it.
	MemoryMB int
}

// Assign fills a stem cell in; Start then runs the function.
func (s *Sandbox) Assign(a Assignment) error {
	st := s.stem
	if st == nil || st.assigned {
		return fmt.Errorf("sandbox %s: not an unassigned stem cell", s.id)
	}
	if err := linkTree(a.CodeDir, st.dir); err != nil {
		return fmt.Errorf("assign sandbox %s: code: %w", s.id, err)
	}
	// The stem was made with the least CPU weight (its creation yielded to
	// running functions); the function gets the weight of its memory.
	if a.MemoryMB != st.memoryMB {
		cfg := s.c.Config()
		res := *cfg.Cgroups.Resources
		res.Memory = int64(a.MemoryMB) << 20
		res.CpuShares = cpuShares(a.MemoryMB)
		cg := *cfg.Cgroups
		cg.Resources = &res
		cfg.Cgroups = &cg
		if err := s.c.Set(cfg); err != nil {
			return fmt.Errorf("assign sandbox %s: memory %d MB: %w", s.id, a.MemoryMB, err)
		}
	} else if err := s.setCPUShares(cpuShares(a.MemoryMB)); err != nil {
		return fmt.Errorf("assign sandbox %s: cpu weight: %w", s.id, err)
	}
	st.env = append([]string{defaultPath}, a.Env...)
	st.assigned = true
	return nil
}

// Output is the read end of a stem cell's stdout and stderr (one pipe);
// the caller owns it from Assign on. Nil for other sandboxes, whose output
// goes where their Spec said.
func (s *Sandbox) Output() *os.File {
	if s.stem == nil {
		return nil
	}
	return s.stem.output
}

// sendEnv hands the stem its function's environment, after Exec.
func (st *stemState) sendEnv() error {
	var buf bytes.Buffer
	for _, kv := range st.env {
		buf.WriteString(kv)
		buf.WriteByte(0)
	}
	_, err := st.stdin.Write(buf.Bytes())
	return errors.Join(err, st.stdin.Close())
}

// linkTree recreates src's tree under dst with hard links (copies when
// src and dst are on different filesystems) and the same symlinks.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.Mkdir(target, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			err := os.Link(path, target)
			if errors.Is(err, unix.EXDEV) {
				return copyFile(path, target)
			}
			return err
		default:
			return nil // devices, sockets, fifos: never part of code
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setCPUShares sets the sandbox's CPU weight alone: one file, where Set
// would rewrite every controller's. Without a cpu controller there is no
// weight to set.
func (s *Sandbox) setCPUShares(shares uint64) error {
	if s.cgroupCPU == "" {
		return nil
	}
	var err error
	if s.cgroupV2 {
		err = cgroups.WriteFile(s.cgroupCPU, "cpu.weight", strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(shares), 10))
	} else {
		err = cgroups.WriteFile(s.cgroupCPU, "cpu.shares", strconv.FormatUint(shares, 10))
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
