package e2e

// Asynchronous invocation through the CLI: the event is acknowledged with
// an id, runs, and its status and result can be read back; a failing event
// is retried max-retries times, ends failed, and reaches the on-failure
// function as a Lambda destination record.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

type invocationView struct {
	ID       string          `json:"id"`
	Function string          `json:"function"`
	Status   string          `json:"status"`
	Attempts int             `json:"attempts"`
	Payload  json.RawMessage `json:"payload"`
	Result   json.RawMessage `json:"result"`
	Error    string          `json:"error"`
}

func (d *daemon) waitInvocation(t *testing.T, id string, within time.Duration, done func(invocationView) bool) invocationView {
	t.Helper()
	var v invocationView
	testutil.Eventually(t, within, func() bool {
		r := d.gust(t, "-o", "json", "invocation", "get", id)
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &v) == nil && done(v)
	}, "invocation %s never finished: %+v", id, v)
	return v
}

func TestAsyncInvocation(t *testing.T) {
	d := startDaemon(t)
	d.waitReady(t, 20*time.Second)
	d.deploy(t, "work", bin.probeZip)
	d.deploy(t, "sink", bin.probeZip)
	d.deploy(t, "flaky", bin.probeZip, "--max-retries", "1", "--on-failure", "sink")

	r := d.mustGust(t, "-o", "json", "invoke", "work", "--async", "--payload", `{"action":"echo","data":"hi"}`)
	var ack struct {
		InvocationID string `json:"invocation_id"`
	}
	decode(t, []byte(r.stdout), &ack)
	v := d.waitInvocation(t, ack.InvocationID, 15*time.Second, func(v invocationView) bool { return v.Status == "succeeded" })
	var result struct{ Data string }
	decode(t, v.Result, &result)
	if v.Attempts != 1 || result.Data != "hi" || v.Function != "work" {
		t.Errorf("succeeded invocation: %+v", v)
	}
	// Text output is the id alone; the same idempotency key gives the same id.
	a := strings.TrimSpace(d.mustGust(t, "invoke", "work", "--async", "--idempotency-key", "k1").stdout)
	b := strings.TrimSpace(d.mustGust(t, "invoke", "work", "--async", "--idempotency-key", "k1").stdout)
	if a == "" || a != b {
		t.Errorf("idempotency key gave ids %q and %q", a, b)
	}

	id := strings.TrimSpace(d.mustGust(t, "invoke", "flaky", "--async", "--payload", `{"action":"error"}`).stdout)
	v = d.waitInvocation(t, id, 30*time.Second, func(v invocationView) bool { return v.Status == "failed" })
	if v.Attempts != 2 || v.Error == "" {
		t.Errorf("failed invocation: %+v", v)
	}
	sinkLog := filepath.Join(d.dataDir, "worker", "logs", "sink.log")
	testutil.Eventually(t, 15*time.Second, func() bool {
		b, _ := os.ReadFile(sinkLog)
		return strings.Contains(string(b), `DESTINATION RetriesExhausted {"action":"error"}`)
	}, "the on-failure function never received the failed event")

	if r := d.gust(t, "invocation", "get", "no-such-id"); r.code != 1 || !strings.HasPrefix(r.stderr, "ResourceNotFoundException") {
		t.Errorf("unknown invocation: %s", r)
	}
	big := filepath.Join(t.TempDir(), "big.json")
	os.WriteFile(big, []byte(`"`+strings.Repeat("x", 256*1024)+`"`), 0o644)
	if r := d.gust(t, "invoke", "work", "--async", "--payload", "@"+big); r.code != 1 || !strings.HasPrefix(r.stderr, "RequestTooLargeException") {
		t.Errorf("oversized async payload: %s", r)
	}
}
