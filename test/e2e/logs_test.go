package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// TestLogs: `gust logs NAME` shows what the function printed and its
// START/END/REPORT lines, `invoke --log` returns what it printed, and
// `gust logs -f` goes on with what is written later.
func TestLogs(t *testing.T) {
	d := startDaemon(t)
	d.deploy(t, "lg", bin.probeDir)
	env := d.mustInvokeJSON(t, "lg", `{"action":"log","line":"first line from the function"}`, "--log")
	if !strings.Contains(env.LogTail, "first line from the function") || !strings.Contains(env.LogTail, "REPORT RequestId: "+env.RequestID) {
		t.Fatalf("invoke --log tail:\n%s", env.LogTail)
	}

	r := d.mustGust(t, "logs", "lg")
	for _, want := range []string{
		"START RequestId: " + env.RequestID, "first line from the function", "END RequestId: " + env.RequestID,
		"REPORT RequestId: " + env.RequestID, "Billed Duration: ", "Memory Size: 128 MB", "Max Memory Used: ", "Init Duration: ",
		"Cold Start Reason: no_sandbox", // the first invocation of a new function
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("gust logs lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := d.gust(t, "logs", "no-such-function"); r.code != 1 || !strings.Contains(r.stderr, "ResourceNotFoundException") {
		t.Errorf("logs of a missing function: exit %d, stderr %q", r.code, r.stderr)
	}

	// Follow: a line written after the command started shows up.
	var out lockedBuffer
	follow := exec.Command(bin.gust, "--addr", d.grpc, "logs", "lg", "-f")
	follow.Stdout, follow.Stderr = &out, &out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { follow.Process.Kill(); follow.Wait() }()
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(out.String(), "first line from the function") },
		"logs -f never printed the existing log: %s", out.String())
	second := d.mustInvokeJSON(t, "lg", `{"action":"log","line":"second line, while following"}`)
	testutil.Eventually(t, 10*time.Second, func() bool {
		s := out.String()
		return strings.Contains(s, "second line, while following") && strings.Contains(s, "REPORT RequestId: "+second.RequestID)
	}, "logs -f never printed the new invocation: %s", out.String())
}
