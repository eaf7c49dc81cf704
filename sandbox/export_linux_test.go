package sandbox

import (
	"os"
	"path/filepath"
	"strings"
)

// InitPid is the pid, on the host, of the sandbox's init (its process once
// started).
func InitPid(s *Sandbox) int {
	st, err := s.c.State()
	if err != nil {
		return 0
	}
	return st.InitProcessPid
}

// ResetInit undoes UseInit, so later tests re-execute the test binary.
func ResetInit() {
	smallInitMu.Lock()
	defer smallInitMu.Unlock()
	if smallInit != nil {
		smallInit.Close()
		smallInit = nil
	}
}

// CPUWeight reads the sandbox's cpu.shares (v1) or cpu.weight (v2).
func CPUWeight(s *Sandbox) (string, error) {
	name := "cpu.shares"
	if s.cgroupV2 {
		name = "cpu.weight"
	}
	b, err := os.ReadFile(filepath.Join(s.cgroupCPU, name))
	return strings.TrimSpace(string(b)), err
}
