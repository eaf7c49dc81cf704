package bench

import (
	"errors"
	"testing"
	"time"
)

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		n    int
		q    float64
		want time.Duration
	}{
		{1, 50, 1 * time.Millisecond},
		{1, 99.9, 1 * time.Millisecond},
		{2, 50, 1 * time.Millisecond},
		{10, 50, 5 * time.Millisecond},
		{10, 99, 10 * time.Millisecond}, // nearest rank: the max
		{100, 50, 50 * time.Millisecond},
		{100, 99, 99 * time.Millisecond},
		{100, 99.9, 100 * time.Millisecond},
		{1000, 99.9, 999 * time.Millisecond},
		{1000, 100, 1000 * time.Millisecond},
		{1000, 0.01, 1 * time.Millisecond},
	} {
		if got := Percentile(seq(tc.n), tc.q); got != tc.want {
			t.Errorf("p%g of 1..%d ms = %v, want %v", tc.q, tc.n, got, tc.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
}

func TestSummarize(t *testing.T) {
	d := seq(100)
	// Any order: Summarize sorts a copy and leaves the input alone.
	d[0], d[99] = d[99], d[0]
	s := Summarize(d)
	if s.Count != 100 || s.P50 != 50 || s.P90 != 90 || s.P99 != 99 || s.P999 != 100 || s.Min != 1 || s.Max != 100 || s.Mean != 50.5 {
		t.Errorf("summary = %+v", s)
	}
	if d[0] != 100*time.Millisecond {
		t.Error("Summarize reordered its input")
	}
	if s := Summarize(nil); s.Count != 0 || s.P50 != 0 {
		t.Errorf("empty summary = %+v", s)
	}
}

func TestRecorderMeasurement(t *testing.T) {
	r := newRecorder()
	t0 := time.Unix(1000, 0)
	r.add(t0, 10*time.Millisecond, ColdYes, nil)
	r.add(t0.Add(100*time.Millisecond), 20*time.Millisecond, ColdNo, nil)
	r.add(t0.Add(200*time.Millisecond), 30*time.Millisecond, ColdNo, nil)
	r.add(t0.Add(300*time.Millisecond), 5*time.Millisecond, ColdUnknown, errors.New("boom"))
	r.add(t0.Add(400*time.Millisecond), 0, ColdUnknown, &httpError{Status: 429, Name: "TooManyRequestsException"})
	r.add(t0.Add(500*time.Millisecond), 0, ColdUnknown, &httpError{Status: 429, Name: "TooManyRequestsException"})
	r.add(t0.Add(900*time.Millisecond), 100*time.Millisecond, ColdUnknown, nil)

	m := r.measurement("k", "name", 0)
	s := m.Summary
	if s.Count != 4 || s.Errors != 3 || m.Errors != 3 {
		t.Fatalf("count %d errors %d", s.Count, s.Errors)
	}
	if s.ColdStarts != 1 || s.WarmStarts != 2 || s.ColdShare != 1.0/3 {
		t.Errorf("cold %d warm %d share %v", s.ColdStarts, s.WarmStarts, s.ColdShare)
	}
	// Span: first arrival (t0) to last completion (t0 + 1 s).
	if s.ElapsedS != 1 || s.Throughput != 4 || s.ColdPerSecond != 1 {
		t.Errorf("elapsed %v throughput %v cold/s %v", s.ElapsedS, s.Throughput, s.ColdPerSecond)
	}
	if m.ErrorKinds["TooManyRequestsException"] != 2 || m.ErrorKinds["error"] != 1 || m.FirstError != "boom" {
		t.Errorf("kinds %v first %q", m.ErrorKinds, m.FirstError)
	}
	if m := r.measurement("k", "n", -1); m.Summary.Throughput != 0 || m.Summary.ElapsedS != 0 {
		t.Errorf("no-rate measurement has rates: %+v", m.Summary)
	}

	cold := m.only(ColdYes, "k.cold", "cold only")
	warm := m.only(ColdNo, "k.warm", "warm only")
	if cold.Summary.Count != 1 || cold.Summary.P50 != 10 || warm.Summary.Count != 2 || warm.Summary.P99 != 30 {
		t.Errorf("cold %+v warm %+v", cold.Summary, warm.Summary)
	}

	other := newRecorder()
	other.add(t0, time.Millisecond, ColdNo, errors.New("later"))
	other.add(t0, time.Millisecond, ColdNo, nil)
	r.merge(other)
	if m := r.measurement("k", "n", time.Second); m.Summary.Count != 5 || m.Errors != 4 || m.FirstError != "boom" {
		t.Errorf("after merge: count %d errors %d first %q", m.Summary.Count, m.Errors, m.FirstError)
	}
}
