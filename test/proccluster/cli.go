package proccluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cliTimeout bounds every CLI call: a coordinator cut off from the leader
// must not hang a test.
const cliTimeout = 30 * time.Second

// cliTimeouts counts the calls cliTimeout cut off.
var cliTimeouts atomic.Int64

// CLITimeouts is how many CLI calls of this test binary got no answer
// within 30 s.
func CLITimeouts() int64 { return cliTimeouts.Load() }

// Gust runs the CLI against addr and returns stdout, stderr and the exit
// code: -2 when it gave no answer within 30 s, -1 (and the test fails)
// when it could not run. Safe to call from any goroutine.
func (b Binaries) Gust(t testing.TB, addr string, args ...string) (string, string, int) {
	t.Helper()
	return b.GustIn(t, "", addr, args...)
}

// GustIn is Gust run in the network namespace netns.
func (b Binaries) GustIn(t testing.TB, netns, addr string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := commandContext(ctx, netns, b.Path("gust"), append([]string{"--addr", addr}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		cliTimeouts.Add(1)
		t.Logf("gust %s via %s: no answer within %v", strings.Join(args, " "), addr, cliTimeout)
		return out.String(), errb.String() + "timed out", -2
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Errorf("gust %s: %v", strings.Join(args, " "), err)
		return out.String(), errb.String(), -1
	}
	return out.String(), errb.String(), 0
}

// GustJSON runs the CLI with -o json and decodes its output into v; it
// reports whether the call succeeded and decoded.
func (b Binaries) GustJSON(t testing.TB, addr string, v any, args ...string) bool {
	t.Helper()
	out, _, code := b.Gust(t, addr, append([]string{"-o", "json"}, args...)...)
	return code == 0 && json.Unmarshal([]byte(out), v) == nil
}

// MustGust runs a CLI command that has to succeed and returns its stdout.
func (b Binaries) MustGust(t testing.TB, addr string, args ...string) string {
	t.Helper()
	out, stderr, code := b.Gust(t, addr, args...)
	if code != 0 {
		t.Fatalf("gust %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}
