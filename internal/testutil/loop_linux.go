package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RequireLoopDevices skips a test of disk-backed /tmp where the host has
// no loop devices (sandboxes then use a tmpfs, by design), except under
// CI=true, whose machine has them: there it fails.
func RequireLoopDevices(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err == nil {
		f.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no loop devices (%v), and CI=true: refusing to skip", err)
	}
	t.Skipf("no loop devices: %v", err)
}

// LoopDevices lists the loop devices (loopN) whose backing file's path
// contains s: sandboxes' /tmp disks, whose images are named after them.
func LoopDevices(s string) []string {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), s) {
			out = append(out, filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	return out
}
