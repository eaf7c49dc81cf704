package e2e

import (
	"math"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetrics: /metrics parses with the Prometheus text parser, and for a
// function its counts match the invocations made: invocations by outcome,
// cold starts and warm hits, errors, and the duration histogram.
func TestMetrics(t *testing.T) {
	d := startDaemon(t)
	d.deploy(t, "m", bin.probeDir)
	var cold, warm int
	var seconds float64
	for i := 0; i < 5; i++ {
		env := d.mustInvokeJSON(t, "m", `{"action":"echo"}`)
		if env.ColdStart {
			cold++
		} else {
			warm++
		}
		seconds += env.DurationMs / 1000
	}
	for i := 0; i < 2; i++ {
		env, _ := d.invokeJSON(t, "m", `{"action":"error"}`)
		if env.FunctionError != "Handled" {
			t.Fatalf("error action: function_error %q", env.FunctionError)
		}
		if env.ColdStart {
			cold++
		} else {
			warm++
		}
		seconds += env.DurationMs / 1000
	}
	if r := d.gust(t, "invoke", "nope"); r.code != 1 {
		t.Fatalf("invoke of a missing function: exit %d", r.code)
	}

	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	sum := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Fatalf("/metrics lacks %s", name)
		}
		total := 0.0
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				if label(m, k) != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			}
		}
		return total
	}
	fn := map[string]string{"function": "m"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"gust_invocations_total", map[string]string{"function": "m", "outcome": "success"}, 5},
		{"gust_invocations_total", map[string]string{"function": "m", "outcome": "function_error"}, 2},
		{"gust_invocation_errors_total", map[string]string{"function": "m", "kind": "Handled"}, 2},
		{"gust_cold_starts_total", fn, float64(cold)},
		{"gust_warm_hits_total", fn, float64(warm)},
		{"gust_invocation_errors_total", map[string]string{"function": "nope", "kind": "ResourceNotFoundException"}, 1},
	}
	for _, c := range checks {
		if got := sum(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if cold != 1 {
		t.Errorf("%d cold starts, want 1 (the rest warm)", cold)
	}
	if got := sum("gust_cold_starts_total", map[string]string{"function": "m", "reason": "no_sandbox"}); got != 1 {
		t.Errorf("cold start reason no_sandbox counted %v times", got)
	}
	var hist *dto.Histogram
	for _, m := range families["gust_invocation_duration_seconds"].GetMetric() {
		if label(m, "function") == "m" {
			hist = m.GetHistogram()
		}
	}
	if hist == nil || hist.GetSampleCount() != 7 {
		t.Fatalf("duration histogram for m: %v, want 7 samples", hist)
	}
	if math.Abs(hist.GetSampleSum()-seconds) > 0.001 {
		t.Errorf("duration histogram sum %.6f s, the envelopes say %.6f s", hist.GetSampleSum(), seconds)
	}
	if got := sum("gust_sandboxes", map[string]string{"state": "idle"}) + sum("gust_sandboxes", map[string]string{"state": "busy"}); got < 1 {
		t.Errorf("gust_sandboxes counts %v sandboxes, want the warm one", got)
	}
	if sum("gust_raft_has_leader", nil) != 1 {
		t.Error("gust_raft_has_leader is not 1")
	}
	// gustd dev serves its worker's gauges too; startDaemon asks for 8
	// stem cells, and the one cold start took one that is made again.
	if got := sum("gust_worker_stem_cells_target", nil); got != 8 {
		t.Errorf("gust_worker_stem_cells_target = %v, want 8 (--stem-cells)", got)
	}
	if got := sum("gust_worker_stem_cells", nil); got < 0 || got > 8 {
		t.Errorf("gust_worker_stem_cells = %v, want 0 to 8", got)
	}
	if sum("gust_billed_gb_seconds_total", fn) <= 0 {
		t.Error("no billed GB-seconds for m")
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
