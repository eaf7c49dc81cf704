package sim

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Study is the comparison RESULTS.md reports: every placement with fixed
// and hybrid keep-alive, the keep-alive alternatives under gust placement,
// and the headline pairs again at other worker memory sizes.
type Study struct {
	Config Config
	// Memory lists other worker memory sizes (MB) the headline pairs are
	// repeated at.
	Memory []int64
	// Extended adds fixed 2 minutes (to bracket the paper's policy on the
	// fixed curve) and the hybrid with an untrained histogram per worker.
	Extended bool
	// Parallel bounds concurrent runs (0: one per CPU).
	Parallel int
}

// DefaultStudy is what cmd/gustsim runs; the extended rows and the memory
// sweep are opt-in, to keep the default run near a minute on two cores.
func DefaultStudy() Study {
	return Study{Config: DefaultConfig()}
}

// baselineKeepAlive is the keep-alive the others are judged against.
const baselineKeepAlive = 10 * time.Minute

// Report is a Study's results.
type Report struct {
	Study    Study
	Workload WorkloadSummary
	// Main is every placement with the fixed and the hybrid policy.
	Main []Result
	// KeepAlive is every keep-alive policy under gust placement.
	KeepAlive []Result
	// Adopted names the keep-alive policy that won, and Why says why.
	Adopted, Why string
	// Matched holds, per keep-alive policy that beat the fixed curve's
	// estimate, the fixed keep-alive run at the same idle memory-time.
	Matched map[string]Result
	// Sweep repeats the headline pairs at Study.Memory.
	Sweep []SweepRow
	Wall  time.Duration
}

// SweepRow is the headline pairs at one worker memory size.
type SweepRow struct {
	MemoryMB int64
	Results  []Result
}

type job struct {
	cfg   Config
	w     *Workload
	combo Combo
}

// cost ranks a job's expected run time: the real Placer costs more per
// invocation than the baselines, and warm-oblivious placement makes every
// invocation a cold start with an eviction.
func (j job) cost() int {
	if j.combo.Placement == PlaceHash {
		return 0
	}
	return 1
}

// runJobs runs jobs, longest first so the last to finish are short, and
// returns results in job order.
func runJobs(jobs []job, parallel int) ([]Result, error) {
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	out := make([]Result, len(jobs))
	errs := make([]error, len(jobs))
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return jobs[b].cost() - jobs[a].cost() })
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, i := range order {
		j := jobs[i]
		sem <- struct{}{} // start in order, parallel at a time
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], errs[i] = Run(j.cfg, j.w, j.combo)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RunAll runs every combination on one workload, up to parallel at a time
// (0: one per CPU), and returns the results in combo order.
func RunAll(cfg Config, combos []Combo, parallel int) ([]Result, error) {
	cfg = cfg.withDefaults()
	w := NewWorkload(cfg)
	jobs := make([]job, len(combos))
	for i, c := range combos {
		jobs[i] = job{cfg, w, c}
	}
	return runJobs(jobs, parallel)
}

// Run runs the study.
func (s Study) Run() (*Report, error) {
	began := time.Now()
	cfg := s.Config.withDefaults()
	w := NewWorkload(cfg)
	rep := &Report{Study: s, Workload: Summarize(w)}

	fixed := FixedKeepAlive(baselineKeepAlive)
	hybrid := HybridKeepAlive(0)
	var jobs []job
	for _, p := range Placements {
		jobs = append(jobs, job{cfg, w, Combo{p, fixed}}, job{cfg, w, Combo{p, hybrid}})
	}
	nMain := len(jobs)
	extra := []KeepAlive{FixedKeepAlive(5 * time.Minute), FixedKeepAlive(20 * time.Minute), HybridKeepAlive(baselineKeepAlive),
		AdaptiveKeepAlive(baselineKeepAlive)}
	if s.Extended {
		extra = append(extra, FixedKeepAlive(2*time.Minute), hybrid.PerWorkerUntrained())
	}
	for _, k := range extra {
		jobs = append(jobs, job{cfg, w, Combo{PlaceGust, k}})
	}
	res, err := runJobs(jobs, s.Parallel)
	if err != nil {
		return nil, err
	}
	rep.Main = res[:nMain]
	rep.KeepAlive = append([]Result{res[0], res[1]}, res[nMain:]...) // gust is Placements[0]
	slices.SortStableFunc(rep.KeepAlive, func(a, b Result) int { return strings.Compare(sortKey(a.KeepAlive), sortKey(b.KeepAlive)) })
	adopted := fixed
	rep.Adopted, rep.Why = adopt(rep.KeepAlive)
	for _, k := range append(extra, hybrid) {
		if k.Name == rep.Adopted {
			adopted = k
		}
	}

	// Phase two: a fixed keep-alive at exactly the idle memory of each
	// policy that beats the fixed curve's linear estimate (the curve is
	// convex, so the estimate flatters it), and the memory sweep.
	jobs = jobs[:0]
	var matchedFor []string
	for _, r := range rep.KeepAlive {
		if _, ok := fixedLength(r.KeepAlive); ok || strings.Contains(r.KeepAlive, "untrained") {
			continue
		}
		if ttl, cold, ok := onFixedCurve(rep.KeepAlive, r.IdleMBHours); ok && float64(r.Cold) < cold {
			jobs = append(jobs, job{cfg, w, Combo{PlaceGust, FixedKeepAlive(ttl.Round(10 * time.Second))}})
			matchedFor = append(matchedFor, r.KeepAlive)
		}
	}
	nMatched := len(jobs)
	for _, mem := range s.Memory {
		c := cfg
		c.WorkerMemoryMB = mem
		wm := NewWorkload(c)
		for _, combo := range sweepCombos(adopted) {
			jobs = append(jobs, job{c, wm, combo})
		}
	}
	res, err = runJobs(jobs, s.Parallel)
	if err != nil {
		return nil, err
	}
	rep.Matched = map[string]Result{}
	for i, name := range matchedFor {
		rep.Matched[name] = res[i]
	}
	res = res[nMatched:]
	per := len(res) / max(len(s.Memory), 1)
	for i, mem := range s.Memory {
		rep.Sweep = append(rep.Sweep, SweepRow{MemoryMB: mem, Results: res[i*per : (i+1)*per]})
	}
	rep.Wall = time.Since(began)
	return rep, nil
}

// sweepCombos are the runs repeated at each other memory size: both
// placements with fixed and the adopted keep-alive, and gust with every
// trained hybrid, so a policy that wins only under memory pressure shows.
func sweepCombos(adopted KeepAlive) []Combo {
	fixed := FixedKeepAlive(baselineKeepAlive)
	cs := []Combo{{PlaceGust, fixed}, {PlaceHash, fixed}}
	if adopted.Name != fixed.Name {
		cs = append(cs, Combo{PlaceHash, adopted})
	}
	for _, k := range []KeepAlive{HybridKeepAlive(0), HybridKeepAlive(baselineKeepAlive), AdaptiveKeepAlive(baselineKeepAlive)} {
		cs = append(cs, Combo{PlaceGust, k})
	}
	return cs
}

// sortKey orders keep-alive rows: fixed by length, then the hybrids.
func sortKey(name string) string {
	if d, ok := fixedLength(name); ok {
		return fmt.Sprintf("0 %020d", d)
	}
	return "1 " + name
}

// adopt picks the keep-alive policy with the fewest cold starts among those
// with fewer cold starts than fixed 10 minutes, no more idle memory-time
// and no more drops. Untrained variants are sensitivity rows, not
// candidates: they are the same policy as their trained row.
func adopt(rs []Result) (name, why string) {
	base := FixedKeepAlive(baselineKeepAlive).Name
	b, ok := find(rs, PlaceGust, base)
	if !ok {
		return base, "no baseline run"
	}
	best := -1
	for i, r := range rs {
		if r.KeepAlive == base || strings.Contains(r.KeepAlive, "untrained") {
			continue
		}
		if r.Cold < b.Cold && r.IdleMBHours <= b.IdleMBHours && r.Dropped <= b.Dropped && (best < 0 || r.Cold < rs[best].Cold) {
			best = i
		}
	}
	if best < 0 {
		return base, "no policy had fewer cold starts than " + base + " at no more idle memory-time"
	}
	r := rs[best]
	return r.KeepAlive, fmt.Sprintf("%s cold starts (%.2f× %s) at %.0f%% of its idle memory-time",
		num(r.Cold), ratio(r.Cold, b.Cold), base, 100*r.IdleMBHours/b.IdleMBHours)
}

func find(rs []Result, placement, keepAlive string) (Result, bool) {
	for _, r := range rs {
		if r.Placement == placement && r.KeepAlive == keepAlive {
			return r, true
		}
	}
	return Result{}, false
}

// WorkloadSummary describes the generated apps.
type WorkloadSummary struct {
	Apps                     int
	ByClass                  [numClasses]int
	ShareHourly, ShareMinute float64 // of apps at <= 1/h, <= 1/min
	MinRate, MaxRate         float64 // per hour
	MedianDuration           time.Duration
	MedianMemoryMB           int64
	InvocationsPerHour       float64 // expected
	BusyGB                   float64 // expected mean memory of running sandboxes
}

// Summarize checks the generated apps against the shapes they were drawn
// from.
func Summarize(w *Workload) WorkloadSummary {
	s := WorkloadSummary{Apps: len(w.Apps), MinRate: math.Inf(1)}
	var durs []time.Duration
	var mems []int64
	for i := range w.Apps {
		a := &w.Apps[i]
		s.ByClass[a.Class()]++
		if a.RatePerHour <= 1 {
			s.ShareHourly++
		}
		if a.RatePerHour <= 60 {
			s.ShareMinute++
		}
		s.MinRate, s.MaxRate = min(s.MinRate, a.RatePerHour), max(s.MaxRate, a.RatePerHour)
		s.InvocationsPerHour += a.RatePerHour
		s.BusyGB += a.RatePerHour / 3600 * a.MeanDuration.Seconds() * float64(a.MemoryMB) / 1024
		durs = append(durs, a.MeanDuration)
		mems = append(mems, a.MemoryMB)
	}
	s.ShareHourly /= float64(len(w.Apps))
	s.ShareMinute /= float64(len(w.Apps))
	slices.Sort(durs)
	slices.Sort(mems)
	s.MedianDuration = durs[len(durs)/2]
	s.MedianMemoryMB = mems[len(mems)/2]
	return s
}

// Markdown renders the report.
func (rep *Report) Markdown() string {
	var b strings.Builder
	cfg := rep.Study.Config.withDefaults()
	ws := rep.Workload
	clusterGB := float64(cfg.Workers) * float64(cfg.WorkerMemoryMB) / 1024
	fmt.Fprintf(&b, "Seed %d: %d apps on %d workers of %d MB (%.0f GB), %v warm-up then %v measured; %.1f s wall.\n\n",
		cfg.Seed, ws.Apps, cfg.Workers, cfg.WorkerMemoryMB, clusterGB, cfg.Warmup, cfg.Measure, rep.Wall.Seconds())
	fmt.Fprintf(&b, "Workload: %.1f%% of apps at <= 1/h, %.1f%% at <= 1/min; rates %.2g to %.2g per hour (%.1f orders of magnitude); "+
		"median app mean duration %v, median memory %d MB; apps by class: %s; "+
		"expected %s invocations/h and %.0f GB busy on average (%.0f%% of the cluster).\n\n",
		100*ws.ShareHourly, 100*ws.ShareMinute, ws.MinRate, ws.MaxRate, math.Log10(ws.MaxRate/ws.MinRate),
		ws.MedianDuration.Round(time.Millisecond), ws.MedianMemoryMB, classCounts(ws.ByClass),
		num(int64(ws.InvocationsPerHour)), ws.BusyGB, 100*ws.BusyGB/clusterGB)

	b.WriteString("### Placement × keep-alive (equal memory)\n\n")
	b.WriteString("| placement | keep-alive | invocations | warm-hit | cold starts | cold ÷ openwhisk-hash | dropped | evictions | idle GB mean | idle GB peak | idle GB·h | app p75 cold | place p50 | place p99 |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Main {
		h, _ := find(rep.Main, PlaceHash, r.KeepAlive)
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f%% | %s | %.3f | %s | %s | %.1f | %.1f | %.0f | %.1f%% | %v | %v |\n",
			r.Placement, r.KeepAlive, num(r.Invocations), 100*r.WarmRate(), num(r.Cold), ratio(r.Cold, h.Cold),
			num(r.Dropped), num(r.Evictions), r.MeanIdleMB/1024, r.PeakIdleMB/1024, r.IdleMBHours/1024,
			100*r.AppColdP75, r.PlaceP50, r.PlaceP99)
	}

	b.WriteString("\n### Keep-alive policies under gust placement\n\n")
	b.WriteString("| keep-alive | warm-hit | cold starts | ÷ fixed 10m | idle GB·h | ÷ fixed 10m | app p75 cold | pre-warms | cold: timer / rare / medium / hot | idle GB·h: timer / rare / medium / hot |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	base, _ := find(rep.KeepAlive, PlaceGust, FixedKeepAlive(baselineKeepAlive).Name)
	for _, r := range rep.KeepAlive {
		var cold, idle []string
		for _, c := range r.ByClass {
			cold = append(cold, num(c.Cold))
			idle = append(idle, fmt.Sprintf("%.0f", c.IdleMBHours/1024))
		}
		fmt.Fprintf(&b, "| %s | %.2f%% | %s | %.2f | %.0f | %.2f | %.1f%% | %s | %s | %s |\n",
			r.KeepAlive, 100*r.WarmRate(), num(r.Cold), ratio(r.Cold, base.Cold), r.IdleMBHours/1024, r.IdleMBHours/base.IdleMBHours,
			100*r.AppColdP75, num(r.Prewarms), strings.Join(cold, " / "), strings.Join(idle, " / "))
	}
	b.WriteString("\nAt equal idle memory-time: the fixed keep-alive curve, linear between the two measured lengths that bracket each policy; " +
		"where the policy beats that estimate, the fixed length it gives is run too, since the curve is convex and the estimate flatters the policy:\n\n")
	for _, r := range rep.KeepAlive {
		if _, ok := fixedLength(r.KeepAlive); ok {
			continue
		}
		ttl, cold, ok := onFixedCurve(rep.KeepAlive, r.IdleMBHours)
		switch m, run := rep.Matched[r.KeepAlive]; {
		case !ok:
			lo, hi := curveEnds(rep.KeepAlive)
			fmt.Fprintf(&b, "- %s: %s cold starts at %.0f idle GB·h, outside the fixed curve measured (%s: %s at %.0f GB·h; %s: %s at %.0f GB·h).\n",
				r.KeepAlive, num(r.Cold), r.IdleMBHours/1024, lo.KeepAlive, num(lo.Cold), lo.IdleMBHours/1024, hi.KeepAlive, num(hi.Cold), hi.IdleMBHours/1024)
		case run:
			fmt.Fprintf(&b, "- %s: %s cold starts at %.0f idle GB·h; estimate for fixed ≈%v: ≈%s; run: %s cold starts at %.0f idle GB·h (%.2f× the policy's cold starts).\n",
				r.KeepAlive, num(r.Cold), r.IdleMBHours/1024, ttl.Round(10*time.Second), num(int64(cold)), num(m.Cold), m.IdleMBHours/1024, ratio(m.Cold, r.Cold))
		default:
			fmt.Fprintf(&b, "- %s: %s cold starts at %.0f idle GB·h; fixed ≈%v would hold the same with ≈%s (estimate; the policy loses even to it).\n",
				r.KeepAlive, num(r.Cold), r.IdleMBHours/1024, ttl.Round(10*time.Second), num(int64(cold)))
		}
	}
	fmt.Fprintf(&b, "\nAdopted keep-alive: **%s** (%s).\n", rep.Adopted, rep.Why)

	if len(rep.Sweep) > 0 {
		b.WriteString("\n### Other worker memory sizes\n\n")
		b.WriteString("| worker MB | placement | keep-alive | warm-hit | cold starts | ÷ openwhisk-hash, same keep-alive | ÷ gust fixed 10m | idle GB·h | ÷ gust fixed 10m | evictions | dropped |\n")
		b.WriteString("|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		all := append(append([]Result{}, rep.Main...), rep.KeepAlive...)
		rows := append([]SweepRow{{MemoryMB: cfg.WorkerMemoryMB, Results: all}}, rep.Sweep...)
		slices.SortFunc(rows, func(a, b SweepRow) int { return int(a.MemoryMB - b.MemoryMB) })
		adopted := FixedKeepAlive(baselineKeepAlive)
		for _, k := range []KeepAlive{HybridKeepAlive(0), HybridKeepAlive(baselineKeepAlive)} {
			if k.Name == rep.Adopted {
				adopted = k
			}
		}
		for _, row := range rows {
			base, _ := find(row.Results, PlaceGust, FixedKeepAlive(baselineKeepAlive).Name)
			for _, c := range sweepCombos(adopted) {
				r, ok := find(row.Results, c.Placement, c.KeepAlive.Name)
				if !ok {
					continue
				}
				vsHash := "—"
				if h, ok := find(row.Results, PlaceHash, r.KeepAlive); ok && r.Placement != PlaceHash &&
					(r.KeepAlive == FixedKeepAlive(baselineKeepAlive).Name || r.KeepAlive == adopted.Name) {
					vsHash = fmt.Sprintf("%.3f", ratio(r.Cold, h.Cold))
				}
				fmt.Fprintf(&b, "| %d | %s | %s | %.2f%% | %s | %s | %.2f | %.0f | %.2f | %s | %s |\n",
					row.MemoryMB, r.Placement, r.KeepAlive, 100*r.WarmRate(), num(r.Cold), vsHash, ratio(r.Cold, base.Cold),
					r.IdleMBHours/1024, r.IdleMBHours/base.IdleMBHours, num(r.Evictions), num(r.Dropped))
			}
		}
	}

	b.WriteString("\n### Goals\n\n")
	g, _ := find(rep.KeepAlive, PlaceGust, rep.Adopted)
	h, _ := find(rep.Main, PlaceHash, rep.Adopted)
	if h.Invocations == 0 {
		h, _ = find(rep.Main, PlaceHash, FixedKeepAlive(baselineKeepAlive).Name)
	}
	fmt.Fprintf(&b, "- warm-hit rate >= 95%% (gust placement, %s): %.2f%% — %s\n", rep.Adopted, 100*g.WarmRate(), verdict(g.WarmRate() >= 0.95))
	fmt.Fprintf(&b, "- at most half the cold starts of openwhisk-hash at equal memory (%s vs %s): %.3f× — %s\n",
		g.Placement+" "+g.KeepAlive, h.Placement+" "+h.KeepAlive, ratio(g.Cold, h.Cold), verdict(ratio(g.Cold, h.Cold) <= 0.5))
	fmt.Fprintf(&b, "- adopted keep-alive has fewer cold starts than fixed 10m at no more memory: %s — %s\n",
		rep.Adopted, verdict(rep.Adopted != FixedKeepAlive(baselineKeepAlive).Name))
	return b.String()
}

// onFixedCurve interpolates the fixed keep-alive runs at idle memory-time mbh.
func onFixedCurve(rs []Result, mbh float64) (ttl time.Duration, cold float64, ok bool) {
	type pt struct {
		ttl  time.Duration
		mbh  float64
		cold float64
	}
	var pts []pt
	for _, r := range rs {
		if d, ok := fixedLength(r.KeepAlive); ok {
			pts = append(pts, pt{d, r.IdleMBHours, float64(r.Cold)})
		}
	}
	slices.SortFunc(pts, func(a, b pt) int { return int(a.ttl - b.ttl) })
	for i := 1; i < len(pts); i++ {
		lo, hi := pts[i-1], pts[i]
		if mbh >= lo.mbh && mbh <= hi.mbh && hi.mbh > lo.mbh {
			f := (mbh - lo.mbh) / (hi.mbh - lo.mbh)
			return lo.ttl + time.Duration(f*float64(hi.ttl-lo.ttl)), lo.cold + f*(hi.cold-lo.cold), true
		}
	}
	return 0, 0, false
}

// curveEnds returns the shortest and longest fixed keep-alive runs.
func curveEnds(rs []Result) (lo, hi Result) {
	var dlo, dhi time.Duration
	for _, r := range rs {
		if d, ok := fixedLength(r.KeepAlive); ok {
			if dlo == 0 || d < dlo {
				lo, dlo = r, d
			}
			if d > dhi {
				hi, dhi = r, d
			}
		}
	}
	return lo, hi
}

// fixedLength parses the length out of a FixedKeepAlive name.
func fixedLength(name string) (time.Duration, bool) {
	rest, ok := strings.CutPrefix(name, "fixed ")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(rest)
	return d, err == nil
}

func classCounts(n [numClasses]int) string {
	var parts []string
	for c, k := range n {
		parts = append(parts, fmt.Sprintf("%d %s", k, Class(c)))
	}
	return strings.Join(parts, ", ")
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// num formats n with thousands separators.
func num(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + num(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
