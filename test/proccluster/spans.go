package proccluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/testutil"
)

// Span is when one invocation of the e2e probe's "span" action ran, in
// Unix nanoseconds.
type Span struct{ Start, End int64 }

// MaxOverlap is the largest number of spans running at one instant.
func MaxOverlap(spans []Span) int {
	return testutil.MaxOverlap(len(spans), func(i int) (int64, int64) { return spans[i].Start, spans[i].End })
}

// HTTPResult is the answer to InvokeSpan.
type HTTPResult struct {
	Status    int
	ErrorType string // X-Amzn-ErrorType
	Span      Span   // zero unless the function ran and answered
}

// InvokeSpan calls the Lambda REST Invoke endpoint of one coordinator
// (its HTTP address) with the probe's "span" action for ms milliseconds.
// A 200 whose payload is not a span is an error.
func InvokeSpan(hc *http.Client, httpAddr, fn string, ms int) (HTTPResult, error) {
	body := fmt.Sprintf(`{"action":"span","n":%d}`, ms)
	resp, err := hc.Post("http://"+httpAddr+"/2015-03-31/functions/"+fn+"/invocations", "application/json", strings.NewReader(body))
	if err != nil {
		return HTTPResult{}, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return HTTPResult{}, fmt.Errorf("read answer: %w", err)
	}
	r := HTTPResult{Status: resp.StatusCode, ErrorType: resp.Header.Get("X-Amzn-ErrorType")}
	if resp.StatusCode == 200 && resp.Header.Get("X-Amz-Function-Error") == "" {
		var out struct {
			Start int64 `json:"start_ns"`
			End   int64 `json:"end_ns"`
		}
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
			return r, fmt.Errorf("payload %q: %w", buf.String(), err)
		}
		r.Span = Span{out.Start, out.End}
	}
	return r, nil
}

// WorkerSpans reads every span function fn logged, from the workers'
// retained function logs: it includes invocations whose caller never saw
// the answer.
func (c *Cluster) WorkerSpans(fn string) []Span {
	var out []Span
	for _, w := range c.Workers {
		starts, ends := testutil.LogSpans(w.DataDir, fn)
		for i := range starts {
			out = append(out, Span{starts[i], ends[i]})
		}
	}
	return out
}

// SettledSpans polls WorkerSpans until the logs stop growing.
func (c *Cluster) SettledSpans(t testing.TB, fn string) []Span {
	t.Helper()
	var spans []Span
	testutil.Eventually(t, 20*time.Second, func() bool {
		before := len(c.WorkerSpans(fn))
		time.Sleep(700 * time.Millisecond) // the logs are flushed asynchronously
		spans = c.WorkerSpans(fn)
		return len(spans) == before
	}, "function logs of %s never settled", fn)
	return spans
}
