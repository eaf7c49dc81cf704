package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

const cgroupRoot = "/sys/fs/cgroup"

// Reap removes what a previous run of this manager left behind after a
// crash: sandbox processes, their cgroups and libcontainer state. Mounts
// live in each sandbox's own mount namespace and the network namespace is
// held only by an fd, so both die with the processes. It returns how many
// sandboxes it reaped.
func (m *Manager) Reap() (int, error) {
	entries, err := os.ReadDir(m.cfg.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("reap: %w", err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		if c, err := libcontainer.Load(m.cfg.StateDir, e.Name()); err == nil {
			_ = c.Signal(unix.SIGKILL)
			_ = c.Resume()
			if err := c.Destroy(); err != nil {
				m.log.Warn("reap sandbox", "id", e.Name(), "err", err)
			}
		}
		_ = os.RemoveAll(filepath.Join(m.cfg.StateDir, e.Name()))
	}
	// Cgroups whose state was lost still hold processes: kill and remove.
	n += m.reapCgroups()
	// Stem cells' code directories (their mounts died with their processes).
	if work, err := os.ReadDir(m.cfg.WorkDir); err == nil {
		for _, e := range work {
			_ = os.RemoveAll(filepath.Join(m.cfg.WorkDir, e.Name()))
		}
	}
	if n > 0 {
		m.log.Info("reaped sandboxes left by a previous run", "count", n)
	}
	return n, nil
}

// Close removes the manager's parent cgroups; sandboxes must be destroyed
// first. A shared grandparent ("gust") goes too once no other worker uses it.
func (m *Manager) Close() error {
	var errs []error
	for _, dir := range m.cgroupParentDirs() {
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
			continue
		}
		if up := filepath.Dir(dir); !isControllerRoot(up) {
			_ = unix.Rmdir(up) // busy when another worker shares it
		}
	}
	return errors.Join(errs...)
}

// LeftoverCgroups lists the sandbox cgroups that exist under this
// manager's parent; empty after a clean shutdown or a reap.
func (m *Manager) LeftoverCgroups() []string {
	var out []string
	for _, dir := range m.cgroupParentDirs() {
		children, _ := os.ReadDir(dir)
		for _, c := range children {
			if c.IsDir() {
				out = append(out, filepath.Join(dir, c.Name()))
			}
		}
	}
	return out
}

// cgroupParentDirs lists this manager's parent cgroup in every hierarchy.
func (m *Manager) cgroupParentDirs() []string {
	if cgroups.IsCgroup2UnifiedMode() {
		return []string{filepath.Join(cgroupRoot, m.cfg.CgroupParent)}
	}
	ctrls, _ := os.ReadDir(cgroupRoot)
	var out []string
	for _, c := range ctrls {
		if !c.IsDir() {
			continue
		}
		out = append(out, filepath.Join(cgroupRoot, c.Name(), m.cfg.CgroupParent))
	}
	return out
}

func isControllerRoot(dir string) bool {
	if cgroups.IsCgroup2UnifiedMode() {
		return dir == cgroupRoot
	}
	return filepath.Dir(dir) == cgroupRoot
}

// reapCgroups removes every sandbox cgroup under this manager's parent,
// one sandbox at a time across all hierarchies: thaw first (a frozen
// process cannot die), kill every process listed in any hierarchy, then
// remove the directories, polling until the kernel lets go.
func (m *Manager) reapCgroups() int {
	byName := map[string][]string{}
	for _, dir := range m.cgroupParentDirs() {
		children, _ := os.ReadDir(dir)
		for _, c := range children {
			if c.IsDir() {
				byName[c.Name()] = append(byName[c.Name()], filepath.Join(dir, c.Name()))
			}
		}
	}
	for name, dirs := range byName {
		if err := killCgroups(dirs); err != nil {
			m.log.Warn("reap cgroup", "sandbox", name, "err", err)
		}
	}
	return len(byName)
}

func killCgroups(dirs []string) error {
	for _, d := range dirs {
		_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
		_ = os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, d := range dirs {
			for _, pid := range readPids(filepath.Join(d, "cgroup.procs")) {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		var left []string
		var lastErr error
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				left, lastErr = append(left, d), err
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroups %v: %w", left, lastErr)
		}
		dirs = left
		time.Sleep(5 * time.Millisecond)
	}
}

func readPids(path string) []int {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// readKeyed returns the value of "key N" in a flat-keyed cgroup file.
func readKeyed(path, key string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
