package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// The chart is one panel per section, each a percentile spectrum (as
// HdrHistogram plots it): latency on a log scale against the percentile,
// spaced by log10(1/(1−p)) so that 90%, 99% and 99.9% are equally far
// apart and the tail is as visible as the median. One line per
// measurement; references are dashed; dots mark p50, p99 and p99.9.
const (
	chartWidth   = 980
	plotLeft     = 80
	plotRight    = 30
	plotHeight   = 280
	panelTop     = 48 // title and subtitle above the plot
	axisBelow    = 46 // tick labels and axis title below the plot
	legendLine   = 17
	panelGap     = 26
	maxPolyPoint = 600
)

// palette is Tableau 10: distinct for most eyes, and in print.
var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f"}

// WriteSVG draws the latency distribution of every measurement that has
// samples, grouped by section, as an SVG document.
func (r *Report) WriteSVG(w io.Writer) error {
	var order []string
	groups := map[string][]*Measurement{}
	for _, m := range r.Measurements {
		if len(m.Latencies) == 0 {
			continue
		}
		if groups[m.Mode] == nil {
			order = append(order, m.Mode)
		}
		groups[m.Mode] = append(groups[m.Mode], m)
	}
	var body bytes.Buffer
	y := 70.0
	for _, mode := range order {
		y = drawPanel(&body, y, mode, groups[mode]) + panelGap
	}
	if len(order) == 0 {
		fmt.Fprintf(&body, `<text x="%d" y="%.0f" font-size="14">no samples</text>`+"\n", plotLeft, y+20)
		y += 40
	}
	height := y + 10
	var out bytes.Buffer
	fmt.Fprintf(&out, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="#ffffff"/>
`, chartWidth, height, chartWidth, height)
	m := r.Machine
	fmt.Fprintf(&out, `<text x="%d" y="28" font-size="18" font-weight="bold">%s</text>`+"\n", plotLeft, esc("gust bench: latency distributions"))
	fmt.Fprintf(&out, `<text x="%d" y="48" font-size="12" fill="#555">%s</text>`+"\n", plotLeft,
		esc(fmt.Sprintf("%s · kernel %s · cgroup %s · %d CPUs · %s", m.Date.Format("2006-01-02 15:04 UTC"), m.Kernel, m.Cgroup, m.CPUs, m.GoVersion)))
	out.Write(body.Bytes())
	out.WriteString("</svg>\n")
	_, err := w.Write(out.Bytes())
	return err
}

// drawPanel draws one section's panel with its top at y and returns its
// bottom.
func drawPanel(b *bytes.Buffer, y float64, mode string, series []*Measurement) float64 {
	plotW := float64(chartWidth - plotLeft - plotRight)
	top := y + panelTop
	bottom := top + plotHeight
	title := sectionTitles[mode]
	if title == "" {
		title = mode
	}
	fmt.Fprintf(b, `<g class="panel" id="panel-%s">`+"\n", esc(mode))
	fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="15" font-weight="bold">%s</text>`+"\n", plotLeft, y+18, esc(mode))
	fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="11" fill="#555">%s</text>`+"\n", plotLeft, y+35, esc(plain(title)))

	// Scales: x from p0 to the largest sample count's top percentile, y over
	// whole decades around every sample.
	maxN, lo, hi := 0, math.Inf(1), math.Inf(-1)
	for _, m := range series {
		maxN = max(maxN, len(m.Latencies))
		for _, d := range m.Latencies {
			v := math.Max(ms(d), 0.001)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	xMax := math.Max(2, math.Ceil(spectrumX(maxN-1, maxN)-1e-9))
	yLo, yHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yHi <= yLo {
		yHi = yLo + 1
	}
	xOf := func(p float64) float64 { return plotLeft + plotW*math.Min(p, xMax)/xMax } // p in log10(1/(1-q))
	yOf := func(v float64) float64 {
		return bottom - plotHeight*(math.Log10(math.Max(v, 0.001))-yLo)/(yHi-yLo)
	}

	// Frame and grid.
	fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="#fafafa" stroke="#999"/>`+"\n", plotLeft, top, plotW, plotHeight)
	for e := yLo; e <= yHi; e++ {
		for _, mult := range []float64{1, 2, 5} {
			v := mult * math.Pow(10, e)
			if math.Log10(v) > yHi+1e-9 {
				continue
			}
			yy := yOf(v)
			stroke, width := "#e3e3e3", 1.0
			if mult == 1 {
				stroke, width = "#c8c8c8", 1.0
			}
			fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"/>`+"\n", plotLeft, yy, plotLeft+plotW, yy, stroke, width)
			fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11" fill="#333">%s</text>`+"\n", plotLeft-6, yy+4, esc(tickMS(v)))
		}
	}
	for _, t := range percentileTicks(xMax) {
		xx := xOf(t.x)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c8c8c8"/>`+"\n", xx, top, xx, bottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="#333">%s</text>`+"\n", xx, bottom+16, esc(t.label))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12">%s</text>`+"\n", plotLeft+plotW/2, bottom+36,
		esc("percentile (spaced by log 1/(1−p): each step right is ten times rarer)"))
	fmt.Fprintf(b, `<text transform="translate(%d %.1f) rotate(-90)" text-anchor="middle" font-size="12">%s</text>`+"\n", 22, top+plotHeight/2,
		esc("latency, ms (log scale)"))

	// Lines, then marks, then the legend.
	legendY := bottom + axisBelow + 6
	for i, m := range series {
		color := palette[i%len(palette)]
		sorted := slices.Clone(m.Latencies)
		slices.Sort(sorted)
		dash := ""
		if m.IsReference {
			dash = ` stroke-dasharray="7 4"`
		}
		var pts strings.Builder
		for _, idx := range spectrumIndices(len(sorted), maxPolyPoint) {
			fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(spectrumX(idx, len(sorted))), yOf(ms(sorted[idx])))
		}
		fmt.Fprintf(b, `<polyline class="series" data-key="%s" fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n",
			esc(m.Key), color, dash, strings.TrimSpace(pts.String()))
		for _, q := range []float64{50, 99, 99.9} {
			if q == 99.9 && len(sorted) < 1000 || q == 99 && len(sorted) < 100 {
				continue // the max, not a percentile worth a mark
			}
			// At the sample that is the percentile, so the mark is on the line.
			rank := rankOf(len(sorted), q)
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xOf(spectrumX(rank-1, len(sorted))), yOf(ms(sorted[rank-1])), color)
		}
		ly := legendY + float64(i)*legendLine
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="2.5"%s/>`+"\n", plotLeft, ly-4, plotLeft+26, ly-4, color, dash)
		s := m.Summary
		label := fmt.Sprintf("%s — n %d, p50 %s, p99 %s, p99.9 %s ms", plain(m.Name), s.Count, fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.P999))
		if m.IsReference {
			label += " (reference)"
		}
		if s.Errors > 0 {
			label += fmt.Sprintf(", %d errors", s.Errors)
		}
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="11">%s</text>`+"\n", plotLeft+34, ly, esc(label))
	}
	b.WriteString("</g>\n")
	return legendY + float64(len(series))*legendLine
}

// spectrumX is where the i-th of n sorted samples sits: at the middle of
// its rank, the fraction q = (i+½)/n of samples below it, so x =
// log10(1/(1−q)), and the nearest-rank percentile marks fall on the line.
func spectrumX(i, n int) float64 {
	return math.Log10(float64(n) / (float64(n-i) - 0.5))
}

// spectrumIndices picks at most limit sample indices, evenly spaced along
// the spectrum's x axis, always with the first and the last.
func spectrumIndices(n, limit int) []int {
	if n == 0 {
		return nil
	}
	if n <= limit {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	xEnd := spectrumX(n-1, n)
	out := []int{0}
	for k := 1; k < limit; k++ {
		x := xEnd * float64(k) / float64(limit-1)
		// Invert spectrumX: i = n (1 − 10^−x) − ½.
		i := int(math.Round(float64(n)*(1-math.Pow(10, -x)) - 0.5))
		i = min(max(i, out[len(out)-1]+1), n-1)
		if i > out[len(out)-1] {
			out = append(out, i)
		}
	}
	if out[len(out)-1] != n-1 {
		out = append(out, n-1)
	}
	return out
}

type tick struct {
	x     float64
	label string
}

// percentileTicks are 0%, 50%, then 90%, 99%, 99.9%, … up to xMax nines.
func percentileTicks(xMax float64) []tick {
	out := []tick{{0, "0%"}, {math.Log10(2), "50%"}}
	for k := 1; float64(k) <= xMax; k++ {
		p := math.Round((100-100*math.Pow(10, -float64(k)))*1e6) / 1e6
		out = append(out, tick{float64(k), fmt.Sprintf("%g%%", p)})
	}
	return out
}

// tickMS labels a latency axis tick.
func tickMS(v float64) string {
	switch {
	case v >= 1:
		return fmt.Sprintf("%g", math.Round(v))
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
}

// plain drops Markdown backticks from a name.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
