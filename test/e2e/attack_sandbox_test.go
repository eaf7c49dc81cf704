// This file checks the sandbox findings of the attack trial of issue 14:
// AF_VSOCK sockets (M4), io_uring (M5), pidfd_getfd, personality flags and
// audit netlink sockets (L6), and /proc files listing every sandbox's /tmp
// disk with its I/O counters (L1). Each runs on a cold start from a stem
// cell and on one from a sandbox made for the function, the two ways a
// worker starts a function.
package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gustfaas/gust/internal/testutil"
)

func TestAttackSandboxFilter(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		stems string // --stem-cells
		stem  bool
	}{
		{"StemCell", "2", true},
		{"Created", "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, "--stem-cells", tc.stems)
			fn := "attack-sandbox"
			d.deploy(t, fn, bin.probeZip)
			e := d.mustInvokeJSON(t, fn, `{"action":"sandbox-filter"}`)
			// A stem cell's /var/task is a directory of its own in the
			// worker's sandbox-work; a sandbox made for its function mounts
			// the code cache's.
			info, err := os.Stat(filepath.Join(d.dataDir, "worker", "sandbox-work", e.Sandbox))
			if stem := err == nil && info.IsDir(); !e.ColdStart || stem != tc.stem {
				t.Fatalf("sandbox %s: cold start %v, stem cell %v; want a cold start, stem cell %v", e.Sandbox, e.ColdStart, stem, tc.stem)
			}
			var got struct {
				Calls map[string]string `json:"calls"`
				Files map[string]string `json:"files"`
			}
			decode(t, e.Payload, &got)
			t.Logf("from the sandbox: %s", e.Payload)
			checkSandboxFilter(t, got.Calls, got.Files)
		})
	}
}

// checkSandboxFilter judges what the "sandbox-filter" probe action saw.
func checkSandboxFilter(t *testing.T, calls, files map[string]string) {
	t.Helper()
	want := map[string][]string{
		// M4: vsock reaches the hypervisor; other rare families load
		// kernel modules. Neither opens, however the family is spelt.
		"socket_vsock": {"EPERM"}, "socket_vsock_high_bits": {"EPERM"}, "socketpair_vsock": {"EPERM"},
		"socket_alg": {"EPERM"},
		// M5: io_uring looks absent, so libraries fall back.
		"io_uring_setup": {"ENOSYS"}, "io_uring_enter": {"ENOSYS"}, "io_uring_register": {"ENOSYS"},
		// L6: as ptrace is refused, so is taking another process's descriptor,
		// and so are the personality flags that weaken memory protection.
		"pidfd_getfd":                      {"EPERM"},
		"personality_read_implies_exec":    {"EPERM"},
		"personality_read_implies_exec_hi": {"EPERM"},
		"personality_addr_no_randomize":    {"EPERM"},
		"socket_netlink_audit":             {"EPERM"}, "socket_netlink_audit_high_bits": {"EPERM"},
		// What functions use still works: Go's net.Interfaces and glibc's
		// getaddrinfo read interfaces over netlink, and Docker's profile
		// allows these personalities.
		"socket_unix": {""}, "socket_inet": {""}, "socket_netlink_route": {""},
		"socket_inet6":      {"", "EAFNOSUPPORT"}, // a host without IPv6
		"personality_linux": {""}, "personality_linux32": {""}, "personality_uname26": {""},
		"personality_linux32_uname26": {""},
	}
	for name, allowed := range want {
		got, ok := calls[name]
		switch {
		case !ok:
			t.Errorf("%s: not attempted", name)
		case !contains(allowed, got):
			if got == "" {
				got = "it succeeded"
			}
			t.Errorf("%s: %s, want %q", name, got, allowed)
		}
	}
	// L1: the host lists every loop device (each sandbox's /tmp) with its
	// I/O counters; a sandbox sees none of them.
	for _, p := range []string{"/proc/diskstats", "/proc/partitions"} {
		if host, err := os.ReadFile(p); err != nil || len(host) == 0 {
			t.Errorf("host %s is empty (%v): the check below proves nothing", p, err)
		}
		if files[p] != "" {
			t.Errorf("the sandbox reads %s:\n%.300s", p, strings.TrimSpace(files[p]))
		}
	}
}
