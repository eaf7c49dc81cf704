package bench

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Cold says whether an invocation was a cold start, as far as the client
// can tell.
type Cold int8

// What the client could tell about a sample.
const (
	ColdUnknown Cold = iota // the answer did not say
	ColdYes                 // a fresh runtime served it
	ColdNo                  // a warm runtime served it
)

// sample is one timed operation that succeeded.
type sample struct {
	d    time.Duration
	cold Cold
}

// recorder collects the samples of one measurement; safe for concurrent
// use.
type recorder struct {
	mu       sync.Mutex
	samples  []sample
	errors   int
	kinds    map[string]int // error kind → count
	firstErr string
	start    time.Time // first arrival (scheduled or sent)
	end      time.Time // last completion
}

func newRecorder() *recorder { return &recorder{kinds: map[string]int{}} }

// add records one operation that began at began and took d (d is ignored
// when err is set).
func (r *recorder) add(began time.Time, d time.Duration, cold Cold, err error) {
	end := began.Add(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() || began.Before(r.start) {
		r.start = began
	}
	if end.After(r.end) {
		r.end = end
	}
	if err != nil {
		r.errors++
		r.kinds[errorKind(err)]++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
		return
	}
	r.samples = append(r.samples, sample{d, cold})
}

// merge adds o's samples and errors to r (spans are not merged: rounds
// have gaps between them).
func (r *recorder) merge(o *recorder) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, o.samples...)
	r.errors += o.errors
	for k, v := range o.kinds {
		r.kinds[k] += v
	}
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
}

// elapsed is the span from the first arrival to the last completion.
func (r *recorder) elapsed() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.end.Sub(r.start)
}

// measurement turns what was recorded into a Measurement, with rates over
// elapsed: 0 means the recorder's own span, and a negative elapsed no
// rates (samples taken one after another, between other subjects').
func (r *recorder) measurement(key, name string, elapsed time.Duration) *Measurement {
	switch {
	case elapsed == 0:
		elapsed = r.elapsed()
	case elapsed < 0:
		elapsed = 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &Measurement{Key: key, Name: name, Elapsed: elapsed, Errors: r.errors, FirstError: r.firstErr}
	if len(r.kinds) > 0 {
		m.ErrorKinds = map[string]int{}
		for k, v := range r.kinds {
			m.ErrorKinds[k] = v
		}
	}
	m.Latencies = make([]time.Duration, len(r.samples))
	m.Cold = make([]Cold, len(r.samples))
	for i, s := range r.samples {
		m.Latencies[i], m.Cold[i] = s.d, s.cold
	}
	m.summarize()
	return m
}

// Summary is the statistics of one measurement. Latencies are in
// milliseconds; percentiles are nearest-rank (p99 of 100 samples is the
// 99th smallest), so p99.9 of fewer than 1,000 samples is the maximum.
type Summary struct {
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p99_9_ms"`
	Mean   float64 `json:"mean_ms"`
	Min    float64 `json:"min_ms"`
	Max    float64 `json:"max_ms"`
	// ColdStarts and WarmStarts count the samples the client could
	// classify; the rest said nothing (aws-lambda-go bootstraps other than
	// examples/hello, runc, plain processes).
	ColdStarts int `json:"cold_starts"`
	WarmStarts int `json:"warm_starts"`
	// ColdShare is ColdStarts over the samples that were classified (0
	// when none were).
	ColdShare float64 `json:"cold_share"`
	// ElapsedS is the span from the first arrival to the last completion;
	// Throughput is successful operations per second over it, and
	// ColdPerSecond cold starts per second.
	ElapsedS      float64 `json:"elapsed_s"`
	Throughput    float64 `json:"throughput_per_s"`
	ColdPerSecond float64 `json:"cold_starts_per_s"`
}

// Summarize computes a Summary of latencies (in any order).
func Summarize(latencies []time.Duration) Summary {
	s := Summary{Count: len(latencies)}
	if len(latencies) == 0 {
		return s
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	var total time.Duration
	for _, d := range sorted {
		total += d
	}
	s.P50 = ms(Percentile(sorted, 50))
	s.P90 = ms(Percentile(sorted, 90))
	s.P99 = ms(Percentile(sorted, 99))
	s.P999 = ms(Percentile(sorted, 99.9))
	s.Mean = ms(total / time.Duration(len(sorted)))
	s.Min, s.Max = ms(sorted[0]), ms(sorted[len(sorted)-1])
	return s
}

// Percentile returns the nearest-rank q-th percentile (0 < q ≤ 100) of
// sorted, which must be in ascending order; 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[rankOf(len(sorted), q)-1]
}

// rankOf is the nearest rank (1-based) of the q-th percentile of n > 0
// samples.
func rankOf(n int, q float64) int {
	// A small epsilon keeps 99.9% of 1,000 at rank 999, not 1,000, despite
	// binary floating point.
	rank := int(math.Ceil(q/100*float64(n) - 1e-9))
	return min(max(rank, 1), n)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
