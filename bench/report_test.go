package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeReport has one measurement per figure and a few beside them.
func fakeReport() *Report {
	mk := func(key, mode, ref string, isRef bool, base time.Duration, n int, elapsed time.Duration, cold Cold) *Measurement {
		m := &Measurement{Key: key, Name: key + " `name`", Mode: mode, Reference: ref, IsReference: isRef, Client: "http", Elapsed: elapsed}
		for i := 0; i < n; i++ {
			m.Latencies = append(m.Latencies, base+time.Duration(i)*base/time.Duration(n))
			m.Cold = append(m.Cold, cold)
		}
		m.summarize()
		return m
	}
	ms := []*Measurement{
		mk("cold.runc", ModeCold, "", true, 20*time.Millisecond, 100, 0, ColdUnknown),
		mk("cold.gust.http.invoke", ModeCold, "cold.runc", false, 10*time.Millisecond, 100, 0, ColdYes),
		mk("warm.rie", ModeWarm, "", true, time.Millisecond, 1000, 0, ColdNo),
		mk("warm.gust.http", ModeWarm, "warm.rie", false, 2*time.Millisecond, 1000, 0, ColdNo),
		mk("load.rie.serial", "load", "", true, time.Millisecond, 1000, time.Second, ColdNo),
		mk("load.gust.http", "load", "load.rie.serial", false, 4*time.Millisecond, 4000, time.Second, ColdNo),
		mk("burst.runc", ModeBurst, "", true, 100*time.Millisecond, 50, 500*time.Millisecond, ColdYes),
		mk("burst.gust.http", ModeBurst, "burst.runc", false, 200*time.Millisecond, 50, time.Second, ColdYes),
	}
	ms[5].Clients = 16
	ms[5].Errors, ms[5].Summary.Errors, ms[5].ErrorKinds, ms[5].FirstError = 3, 3, map[string]int{"TooManyRequestsException": 3}, "HTTP 429 TooManyRequestsException: Rate Exceeded."
	return &Report{
		Machine:      Machine{Hostname: "h", Kernel: "6.1.0", Cgroup: "v2", CPUs: 2, GoVersion: "go1.26", Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)},
		Run:          RunInfo{Modes: []string{"cold", "warm", "burst"}, Clients: 16, Duration: "10s", Seed: 1},
		Measurements: ms,
		Figures:      figures(ms),
		Notes:        []string{"something <odd> & noted"},
	}
}

func TestFigures(t *testing.T) {
	r := fakeReport()
	want := map[string]float64{ // subject/metric → ratio
		"cold.gust.http.invoke/p50_ms":      0.5,
		"warm.gust.http/p50_ms":             2,
		"load.gust.http/throughput_per_s":   4,
		"burst.gust.http/cold_starts_per_s": 0.5,
	}
	got := map[string]float64{}
	for _, f := range r.Figures {
		got[f.Subject+"/"+f.Metric] = f.Ratio
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 0.01 {
			t.Errorf("figure %s ratio %v, want %v", k, got[k], v)
		}
	}
	var errs *Figure
	for i := range r.Figures {
		if r.Figures[i].Metric == "errors" {
			errs = &r.Figures[i]
		}
	}
	if errs == nil || errs.Value != 3 || !strings.Contains(errs.Name, "16 clients") {
		t.Errorf("errors figure %+v", errs)
	}
	if len(figures(nil)) != 0 {
		t.Error("figures out of nothing")
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := fakeReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"kernel 6.1.0, cgroup v2, 2 CPUs",
		"## Figures",
		"| cold start p50: fresh function's first invoke (HTTP) vs `runc run` /bin/true | 14.90 ms | 29.80 ms | 0.50× |",
		"## cold", "## warm", "## load", "## burst",
		"| cold.runc `name` | http | 100 | 0 | — | 29.80 | 39.60 | 39.80 | 29.90 | — | 1 (reference) | 1 (reference) | — |",
		"1 (reference)",
		"| 4000 | 3 |",
		"TooManyRequestsException ×3",
		"## Notes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	r := fakeReport()
	for _, samples := range []bool{false, true} {
		var b bytes.Buffer
		if err := r.WriteJSON(&b, samples); err != nil {
			t.Fatal(err)
		}
		var back struct {
			Machine      Machine
			Figures      []Figure
			Measurements []struct {
				Key       string
				Summary   map[string]float64
				SamplesUS []int64 `json:"samples_us"`
			}
		}
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if back.Machine.Kernel != "6.1.0" || back.Machine.Cgroup != "v2" || len(back.Figures) != len(r.Figures) {
			t.Errorf("machine %+v, %d figures", back.Machine, len(back.Figures))
		}
		m := back.Measurements[5]
		for _, k := range []string{"count", "errors", "p50_ms", "p99_ms", "p99_9_ms", "mean_ms", "throughput_per_s", "cold_share"} {
			if _, ok := m.Summary[k]; !ok {
				t.Errorf("summary lacks %s", k)
			}
		}
		if m.Summary["throughput_per_s"] != 4000 || m.Summary["errors"] != 3 {
			t.Errorf("summary %v", m.Summary)
		}
		if samples != (len(m.SamplesUS) == 4000) || samples && m.SamplesUS[0] != 4000 {
			t.Errorf("samples=%v: %d samples", samples, len(m.SamplesUS))
		}
	}
	if r.Measurements[0].SamplesUS != nil {
		t.Error("WriteJSON left samples behind")
	}
}

func TestWriteSVG(t *testing.T) {
	r := fakeReport()
	r.Measurements = append(r.Measurements, &Measurement{Key: "empty", Mode: ModeTrace}) // no samples: no line
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, one polyline per measurement with samples, one
	// panel per section, references dashed.
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	var lines, panels, dashed int
	var keys, texts []string
	var inText bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range el.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch {
			case el.Name.Local == "polyline":
				lines++
				keys = append(keys, attr["data-key"])
				if attr["stroke-dasharray"] != "" {
					dashed++
				}
				if n := len(strings.Fields(attr["points"])); n < 2 || n > maxPolyPoint+1 {
					t.Errorf("%s: %d points", attr["data-key"], n)
				}
			case el.Name.Local == "g" && attr["class"] == "panel":
				panels++
			}
			inText = el.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(el))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if lines != 8 || panels != 4 || dashed != 4 {
		t.Errorf("%d lines, %d panels, %d dashed", lines, panels, dashed)
	}
	if keys[0] != "cold.runc" || slices.Contains(keys, "empty") {
		t.Errorf("keys %v", keys)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"latency, ms (log scale)", "99.9%", "50%", "kernel 6.1.0", "cold.runc name —", "(reference)"} {
		if !strings.Contains(all, want) {
			t.Errorf("chart text lacks %q", want)
		}
	}
}

func TestSpectrum(t *testing.T) {
	if got := spectrumIndices(5, 10); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("small: %v", got)
	}
	got := spectrumIndices(100000, 600)
	if len(got) > 601 || got[0] != 0 || got[len(got)-1] != 99999 || !slices.IsSorted(got) {
		t.Errorf("large: %d indices, first %d last %d", len(got), got[0], got[len(got)-1])
	}
	// The tail keeps detail: many points beyond p99.
	tail := 0
	for _, i := range got {
		if i >= 99000 {
			tail++
		}
	}
	if tail < 150 {
		t.Errorf("only %d points beyond p99", tail)
	}
	// The nearest-rank p99 of 1,000 (index 989) sits at the 99% tick.
	if x := spectrumX(989, 1000); math.Abs(x-2) > 0.03 {
		t.Errorf("p99 at x %v", x)
	}
	var labels []string
	for _, tk := range percentileTicks(4) {
		labels = append(labels, tk.label)
	}
	if !slices.Equal(labels, []string{"0%", "50%", "90%", "99%", "99.9%", "99.99%"}) {
		t.Errorf("ticks %v", labels)
	}
	for v, want := range map[float64]string{0.01: "0.01", 0.5: "0.5", 2: "2", 100: "100"} {
		if got := tickMS(v); got != want {
			t.Errorf("tickMS(%v) = %q", v, got)
		}
	}
}

func TestParseModes(t *testing.T) {
	for in, want := range map[string][]string{
		"all":             AllModes,
		"figures":         FigureModes,
		"warm,cold":       {"cold", "warm"},
		" burst , burst ": {"burst"},
		"async,figures":   {"cold", "warm", "burst", "trace", "async"},
	} {
		got, err := ParseModes(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseModes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "hot", "cold,,nope"} {
		if _, err := ParseModes(bad); err == nil {
			t.Errorf("ParseModes(%q) accepted", bad)
		}
	}
}
