package coordinator

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDashboardMetricsExist: every metric the Grafana dashboard queries is
// one the coordinator registers, with the labels the query matches on, so
// the dashboard cannot drift from metrics.go.
func TestDashboardMetricsExist(t *testing.T) {
	known := registeredMetrics(t)
	data, err := os.ReadFile("../deploy/grafana/gust-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q has a target without an expression", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("only %d queries in the dashboard", len(exprs))
	}
	// A metric name, and the label matchers in braces right after it.
	selector := regexp.MustCompile(`\b((?:gust|go|process)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
	matcher := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, m := range selector.FindAllStringSubmatch(e, -1) {
			name := m[1]
			labels, ok := known[name]
			if !ok {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base := strings.TrimSuffix(name, suffix); base != name {
						if l, hist := known[base]; hist {
							labels, ok = l, true
							if suffix == "_bucket" {
								labels = append(append([]string{}, l...), "le")
							}
						}
					}
				}
			}
			if !ok {
				t.Errorf("dashboard queries %s, which metrics.go does not register: %s", name, e)
				continue
			}
			seen[name] = true
			for _, lm := range matcher.FindAllStringSubmatch(m[2], -1) {
				if !contains(labels, lm[1]) && lm[1] != "job" && lm[1] != "instance" {
					t.Errorf("dashboard matches label %s on %s, which has only %v: %s", lm[1], name, labels, e)
				}
			}
		}
	}
	for _, must := range []string{"gust_invocations_total", "gust_invocation_errors_total", "gust_invocation_duration_seconds_bucket",
		"gust_cold_starts_total", "gust_warm_hits_total", "gust_throttles_total", "gust_sandboxes", "gust_billed_gb_seconds_total",
		"gust_raft_has_leader", "gust_gossip_members"} {
		if !seen[must] {
			t.Errorf("dashboard has no panel for %s", must)
		}
	}
}

type dashPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

// registeredMetrics maps each registered metric to its variable labels,
// read from the collectors' descriptors.
func registeredMetrics(t *testing.T) map[string][]string {
	m := newMetrics(&clusterCollector{})
	ch := make(chan *prometheus.Desc, 1000)
	for _, c := range m.collectors {
		c.Describe(ch)
	}
	close(ch)
	desc := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	for d := range ch {
		s := desc.FindStringSubmatch(d.String())
		if s == nil {
			t.Fatalf("cannot read descriptor %s", d)
		}
		var labels []string
		for _, l := range strings.Split(s[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		out[s[1]] = labels
	}
	if _, ok := out["gust_invocations_total"]; !ok {
		t.Fatalf("registry read wrong: %v", out)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
