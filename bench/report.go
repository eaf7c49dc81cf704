package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is the result of a run: where, with what settings, the headline
// figures, and every measurement.
type Report struct {
	Machine Machine `json:"machine"`
	Run     RunInfo `json:"run"`
	// ElapsedS is the run's wall time.
	ElapsedS     float64        `json:"elapsed_s"`
	Figures      []Figure       `json:"figures"`
	Measurements []*Measurement `json:"measurements"`
	// Notes are what looked wrong, for people to read.
	Notes []string `json:"notes,omitempty"`
}

// RunInfo echoes the settings of a run.
type RunInfo struct {
	Modes     []string `json:"modes"`
	Samples   int      `json:"samples"`
	Clients   int      `json:"clients"`
	Rate      float64  `json:"rate_per_s"`
	Duration  string   `json:"duration"`
	Trace     string   `json:"trace,omitempty"`
	Seed      uint64   `json:"seed"`
	Gustd     string   `json:"gustd"`
	Bootstrap string   `json:"bootstrap"`
	RIE       string   `json:"rie"`
	Runc      string   `json:"runc"`
}

func runInfo(o Options) RunInfo {
	return RunInfo{Modes: o.Modes, Samples: o.Samples, Clients: o.Clients, Rate: o.Rate, Duration: o.Duration.String(),
		Trace: o.Trace, Seed: o.Seed, Gustd: o.Gustd, Bootstrap: o.Bootstrap, RIE: o.RIE, Runc: o.Runc}
}

func (r *Report) add(s *section) {
	r.Measurements = append(r.Measurements, s.measurements...)
	r.Notes = append(r.Notes, s.notes...)
}

// Measurement returns the measurement with the key, or nil.
func (r *Report) Measurement(key string) *Measurement {
	for _, m := range r.Measurements {
		if m.Key == key {
			return m
		}
	}
	return nil
}

// Figure is one headline number, as a ratio to its reference measured in
// the same run.
type Figure struct {
	Name string `json:"name"`
	// Subject and Reference are measurement keys.
	Subject   string `json:"subject"`
	Reference string `json:"reference,omitempty"`
	// Metric is the Summary field compared: p50_ms, p99_ms,
	// throughput_per_s, cold_starts_per_s, errors.
	Metric         string  `json:"metric"`
	Value          float64 `json:"value"`
	ReferenceValue float64 `json:"reference_value,omitempty"`
	// Ratio is Value over ReferenceValue (0 when there is none).
	Ratio float64 `json:"ratio,omitempty"`
	// Goal is DESIGN.md's target, for the reader.
	Goal string `json:"goal,omitempty"`
}

// metric reads one Summary field by its JSON name.
func metric(s Summary, name string) float64 {
	switch name {
	case "p50_ms":
		return s.P50
	case "p99_ms":
		return s.P99
	case "p99_9_ms":
		return s.P999
	case "throughput_per_s":
		return s.Throughput
	case "cold_starts_per_s":
		return s.ColdPerSecond
	case "errors":
		return float64(s.Errors)
	}
	return 0
}

// figures picks the headline numbers out of the measurements present.
func figures(ms []*Measurement) []Figure {
	byKey := map[string]*Measurement{}
	for _, m := range ms {
		byKey[m.Key] = m
	}
	var out []Figure
	add := func(name, subject, ref, metricName, goal string) {
		s := byKey[subject]
		if s == nil || s.Summary.Count == 0 && metricName != "errors" {
			return
		}
		f := Figure{Name: name, Subject: subject, Metric: metricName, Value: metric(s.Summary, metricName), Goal: goal}
		if r := byKey[ref]; r != nil && r.Summary.Count > 0 {
			f.Reference, f.ReferenceValue = ref, metric(r.Summary, metricName)
			if f.ReferenceValue > 0 {
				f.Ratio = f.Value / f.ReferenceValue
			}
		}
		out = append(out, f)
	}
	add("cold start p50: fresh function's first invoke (HTTP) vs `runc run` /bin/true", "cold.gust.http.invoke", "cold.runc", "p50_ms", "ratio ≤ 0.4")
	add("cold start p99", "cold.gust.http.invoke", "cold.runc", "p99_ms", "≤ 30 ms")
	add("warm invoke p50, one client (HTTP) vs aws-lambda-rie, same client and bootstrap", "warm.gust.http", "warm.rie", "p50_ms", "ratio ≤ 1")
	add("warm invoke p99, one client", "warm.gust.http", "warm.rie", "p99_ms", "ratio ≤ 1")
	if m := byKey["load.gust.http"]; m != nil {
		who := fmt.Sprintf("%d clients", m.Clients)
		if m.Rate > 0 {
			who = fmt.Sprintf("Poisson %g/s", m.Rate)
		}
		add("warm throughput, "+who+" vs aws-lambda-rie's serial throughput", "load.gust.http", "load.rie.serial", "throughput_per_s", "ratio ≥ 3")
		add("warm p99 under load, "+who+" (reference: RIE serial)", "load.gust.http", "load.rie.serial", "p99_ms", "≤ 5 ms")
		add("errors under load, "+who, "load.gust.http", "", "errors", "0")
	}
	add("cold starts per second on one worker, burst of fresh functions vs the same burst of `runc run`", "burst.gust.http", "burst.runc", "cold_starts_per_s", "≥ 100/s")
	add("burst first-invoke p99 vs `runc run` p99 in the same burst", "burst.gust.http", "burst.runc", "p99_ms", "")
	return out
}

// WriteJSON writes the report as indented JSON; with samples, every
// measurement carries its latencies in microseconds too.
func (r *Report) WriteJSON(w io.Writer, samples bool) error {
	for _, m := range r.Measurements {
		m.SamplesUS = nil
		if samples {
			m.SamplesUS = make([]int64, len(m.Latencies))
			for i, d := range m.Latencies {
				m.SamplesUS[i] = d.Microseconds()
			}
		}
	}
	defer func() {
		for _, m := range r.Measurements {
			m.SamplesUS = nil
		}
	}()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// sectionTitles say what each section compares.
var sectionTitles = map[string]string{
	ModeCold: "Cold start: a fresh function per sample, subjects taking turns; ratios to `runc run` /bin/true",
	ModeWarm: "Warm invoke, one client, subjects taking turns; ratios to aws-lambda-rie (same HTTP client, same bootstrap)",
	"load":   "Load: warm invokes for the round's duration; ratios to aws-lambda-rie's serial throughput",
	ModeBurst: "Burst: fresh functions invoked at once on one worker; ratios to the same burst of `runc run` /bin/true " +
		"(/s is cold starts per second)",
	ModeTrace:   "Trace replay, open loop (each request timed from its scheduled arrival)",
	ModeCluster: "Cluster: 3 coordinators and 1 worker; invoke via a follower vs via the leader",
	ModeQuotas:  "Concurrency quotas: closed-loop throughput with admission on vs off (alternating rounds on fresh gustd dev)",
	ModeAsync:   "Durable async (3 coordinators, 1 worker)",
}

// WriteMarkdown writes the report for people (and BENCHMARKS.md).
func (r *Report) WriteMarkdown(w io.Writer) error {
	b := &strings.Builder{}
	m := r.Machine
	fmt.Fprintf(b, "Run %s on %s: kernel %s, cgroup %s, %d CPUs", m.Date.Format("2006-01-02 15:04 UTC"), m.Hostname, m.Kernel, m.Cgroup, m.CPUs)
	if m.CPUModel != "" {
		fmt.Fprintf(b, " (%s)", m.CPUModel)
	}
	if m.MemoryMB > 0 {
		fmt.Fprintf(b, ", %d MB", m.MemoryMB)
	}
	fmt.Fprintf(b, ", %s", m.GoVersion)
	if m.Runc != "" {
		fmt.Fprintf(b, ", %s", m.Runc)
	}
	fmt.Fprintf(b, "; %.0f s.\n", r.ElapsedS)
	ri := r.Run
	load := fmt.Sprintf("%d closed-loop clients", ri.Clients)
	if ri.Rate > 0 {
		load = fmt.Sprintf("open loop, Poisson %g/s", ri.Rate)
	}
	samples := "mode defaults"
	if ri.Samples > 0 {
		samples = fmt.Sprint(ri.Samples)
	}
	fmt.Fprintf(b, "Modes %s; samples %s", strings.Join(ri.Modes, ", "), samples)
	usesLoad := func(m string) bool {
		return m == ModeWarm || m == ModeQuotas || m == ModeAsync || m == ModeTrace && ri.Trace == ""
	}
	if slices.ContainsFunc(ri.Modes, usesLoad) {
		fmt.Fprintf(b, "; load %s for %s", load, ri.Duration)
	}
	if ri.Trace != "" {
		fmt.Fprintf(b, "; trace %s", ri.Trace)
	}
	fmt.Fprintf(b, "; seed %d.\n", ri.Seed)

	if len(r.Figures) > 0 {
		b.WriteString("\n## Figures\n\n| figure | gust | reference | ratio | goal |\n|---|---|---|---|---|\n")
		for _, f := range r.Figures {
			ref, ratio := "—", "—"
			if f.Reference != "" {
				ref = formatMetric(f.Metric, f.ReferenceValue)
				if f.Ratio > 0 {
					ratio = fmt.Sprintf("%.2f×", f.Ratio)
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", f.Name, formatMetric(f.Metric, f.Value), ref, ratio, f.Goal)
		}
	}

	byKey := map[string]*Measurement{}
	var order []string
	groups := map[string][]*Measurement{}
	for _, m := range r.Measurements {
		byKey[m.Key] = m
		if groups[m.Mode] == nil {
			order = append(order, m.Mode)
		}
		groups[m.Mode] = append(groups[m.Mode], m)
	}
	for _, mode := range order {
		title := sectionTitles[mode]
		if title == "" {
			title = mode
		}
		fmt.Fprintf(b, "\n## %s\n\n%s.\n\n", mode, title)
		b.WriteString("| measurement | client | n | errors | cold | p50 ms | p99 ms | p99.9 ms | mean ms | /s | p50 ratio | p99 ratio | /s ratio |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, m := range groups[mode] {
			s := m.Summary
			ref := byKey[m.Reference]
			ratio := func(get func(Summary) float64) string {
				switch {
				case m.IsReference && get(s) > 0:
					return "1 (reference)"
				case m.IsReference || ref == nil || get(ref.Summary) <= 0 || get(s) <= 0:
					return "—"
				}
				return fmt.Sprintf("%.2f×", get(s)/get(ref.Summary))
			}
			perS := func(s Summary) float64 {
				if mode == ModeBurst {
					return s.ColdPerSecond
				}
				return s.Throughput
			}
			fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				m.Name, m.Client, s.Count, s.Errors, coldCell(s), fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.P999), fmtMS(s.Mean),
				fmtRate(perS(s)),
				ratio(func(s Summary) float64 { return s.P50 }), ratio(func(s Summary) float64 { return s.P99 }), ratio(perS))
		}
	}

	var errs []string
	for _, m := range r.Measurements {
		if m.Errors == 0 {
			continue
		}
		var kinds []string
		for k, v := range m.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
		}
		slices.Sort(kinds)
		errs = append(errs, fmt.Sprintf("- %s: %d errors (%s); first: %s", m.Key, m.Errors, strings.Join(kinds, ", "), oneLine(m.FirstError, 300)))
	}
	if len(errs) > 0 {
		b.WriteString("\n## Errors\n\n" + strings.Join(errs, "\n") + "\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes a compact aligned table of every measurement, for a
// terminal.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tN\tERR\tP50 MS\tP99 MS\tP99.9 MS\t/S")
	for _, m := range r.Measurements {
		s := m.Summary
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", m.Key, s.Count, s.Errors, fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.P999), fmtRate(s.Throughput))
	}
	return tw.Flush()
}

func coldCell(s Summary) string {
	n := s.ColdStarts + s.WarmStarts
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%d/%d", s.ColdStarts, n)
}

func formatMetric(name string, v float64) string {
	switch {
	case strings.HasSuffix(name, "_ms"):
		return fmtMS(v) + " ms"
	case strings.HasSuffix(name, "_per_s"):
		return fmtRate(v) + "/s"
	}
	return fmt.Sprintf("%.0f", v)
}

// fmtMS prints milliseconds with three significant digits or two decimals.
func fmtMS(v float64) string {
	switch {
	case v == 0:
		return "—"
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtRate(v float64) string {
	switch {
	case v == 0:
		return "—"
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
