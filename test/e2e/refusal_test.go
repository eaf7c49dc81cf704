// This file proves that a real worker's refusal reaches the caller under
// the name DESIGN.md's error table gives it: with its one sandbox slot
// busy, `gustd dev`'s worker refuses a second invocation for want of
// capacity, and the caller, over gRPC and over the Lambda REST front,
// gets ServiceException saying so.
package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

func TestCapacityRefusalNamed(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	// Placement sees free memory, not --max-sandboxes: it sends the second
	// invocation to the worker, which is the one to refuse it.
	d := startDaemon(t, "--max-sandboxes", "1")
	d.deploy(t, "full", bin.probeZip, "--timeout", "30s")

	type result struct {
		r   cliResult
		err error
	}
	held := make(chan result, 1)
	go func() {
		r, err := runGust(d.grpc, "", "invoke", "full", "--payload", `{"action":"sleep","n":6000}`)
		held <- result{r, err}
	}()
	// The only slot is taken once the worker lists a busy sandbox.
	testutil.Eventually(t, 10*time.Second, func() bool {
		var list []struct{ Function, State string }
		r := d.gust(t, "-o", "json", "sandboxes")
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &list) == nil &&
			slices.ContainsFunc(list, func(sb struct{ Function, State string }) bool {
				return strings.HasPrefix(sb.Function, "full:") && sb.State == "busy"
			})
	}, "the held invocation never reached a sandbox")

	// gRPC, through the CLI.
	r := d.gust(t, "invoke", "full", "--payload", `{"action":"count"}`)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ServiceException: ") || !strings.Contains(r.stderr, "no capacity for") {
		t.Errorf("gRPC invoke with the only slot busy: want exit 1 and ServiceException: no capacity for …, got\n%s", r)
	}

	// HTTP, through the Lambda REST front.
	resp, err := http.Post("http://"+d.http+"/2015-03-31/functions/full/invocations", "application/json", strings.NewReader(`{"action":"count"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Message string `json:"message"`
	}
	if name := resp.Header.Get("X-Amzn-ErrorType"); resp.StatusCode != http.StatusInternalServerError || name != "ServiceException" ||
		json.Unmarshal(body, &e) != nil || !strings.Contains(e.Message, "no capacity for") {
		t.Errorf("HTTP invoke with the only slot busy: want 500 ServiceException saying no capacity, got %d %s %s", resp.StatusCode, name, body)
	}

	// Both refusals came while the slot was held, or they prove nothing.
	select {
	case res := <-held:
		t.Fatalf("the held invocation ended before the refusals were checked: %v\n%s", res.err, res.r)
	default:
	}
	if res := <-held; res.err != nil || res.r.code != 0 {
		t.Errorf("the invocation holding the slot: %v\n%s", res.err, res.r)
	}
	// The refusals cost nothing: the slot serves again.
	d.mustInvokeJSON(t, "full", `{"action":"count"}`)
}
