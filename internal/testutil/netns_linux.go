package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gustfaas/gust/internal/loopback"
	"golang.org/x/sys/unix"
)

// NewNetNS makes a network namespace holding only a loopback interface,
// up, and returns a path naming it (for nsenter --net=PATH). In it, a
// listener on 0.0.0.0 is reachable on loopback alone, so a test may bind
// every interface without exposing anything. It is gone at the test's end.
func NewNetNS(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, now in the new namespace, ends with
		// this goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := loopback.Up(); err != nil {
			errc <- err
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind %s: %w", self, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("network namespace: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(path, unix.MNT_DETACH) })
	return path
}
