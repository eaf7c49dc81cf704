package bench

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine is where a run happened: the figures mean little without it.
type Machine struct {
	Hostname string `json:"hostname"`
	// Kernel is `uname -r`.
	Kernel string `json:"kernel"`
	// Cgroup is "v2", "v1" or "v1 (hybrid)" (v1 controllers with a v2
	// hierarchy mounted beside them).
	Cgroup    string `json:"cgroup"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	MemoryMB  int64  `json:"memory_mb,omitempty"`
	GoVersion string `json:"go_version"`
	// Runc is `runc --version`'s first line.
	Runc string `json:"runc,omitempty"`
	// Date is when the run started, UTC.
	Date time.Time `json:"date"`
}

func probeMachine(ctx context.Context, runc string) Machine {
	m := Machine{
		Cgroup:    cgroupVersion(),
		CPUs:      runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Runc:      runcVersion(ctx, runc),
		Date:      time.Now().UTC().Truncate(time.Second),
	}
	m.Hostname, _ = os.Hostname()
	if out, err := exec.CommandContext(ctx, "uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		for _, c := range strings.TrimSuffix(kb, " kB") {
			if c >= '0' && c <= '9' {
				n = n*10 + int64(c-'0')
			}
		}
		m.MemoryMB = n / 1024
	}
	return m
}

// cgroupVersion tells v2 (cgroup2 mounted at /sys/fs/cgroup) from v1, and
// v1 with a v2 hierarchy beside it (hybrid).
func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "v2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		return "v1 (hybrid)"
	}
	return "v1"
}

// procField returns the value of the first "key: value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
