package bench

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TraceEvent is one row of a trace: invoke Function at Offset after the
// replay starts.
type TraceEvent struct {
	Offset   time.Duration
	Function string
}

// functionName is what Lambda accepts as a plain function name.
var functionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseTrace reads a trace as CSV rows `offset_ms,function`: the offset in
// milliseconds from the start (fractions allowed), the function's name.
// Blank lines and lines starting with # are skipped, and so is a first row
// `offset_ms,function`. Rows may come in any order; they are returned
// sorted by offset (ties keep their order).
func ParseTrace(r io.Reader) ([]TraceEvent, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = 2
	cr.TrimLeadingSpace = true
	var out []TraceEvent
	for row := 0; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		line, _ := cr.FieldPos(0)
		off, fn := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if row == 0 && off == "offset_ms" && fn == "function" {
			continue
		}
		v, err := strconv.ParseFloat(off, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v > float64(math.MaxInt64/int64(time.Millisecond)) {
			return nil, fmt.Errorf("trace line %d: offset %q is not a number of milliseconds ≥ 0", line, off)
		}
		if !functionName.MatchString(fn) {
			return nil, fmt.Errorf("trace line %d: %q is not a function name (1–64 of A–Z a–z 0–9 _ -)", line, fn)
		}
		out = append(out, TraceEvent{Offset: time.Duration(math.Round(v * float64(time.Millisecond))), Function: fn})
	}
	if len(out) == 0 {
		return nil, errors.New("trace: no events")
	}
	slices.SortStableFunc(out, func(a, b TraceEvent) int { return cmp.Compare(a.Offset, b.Offset) })
	return out, nil
}

// WriteTrace writes events in the format ParseTrace reads, with a header.
func WriteTrace(w io.Writer, events []TraceEvent) error {
	if _, err := fmt.Fprintln(w, "offset_ms,function"); err != nil {
		return err
	}
	for _, e := range events {
		off := strconv.FormatFloat(float64(e.Offset.Round(time.Microsecond))/float64(time.Millisecond), 'f', -1, 64)
		if _, err := fmt.Fprintf(w, "%s,%s\n", off, e.Function); err != nil {
			return err
		}
	}
	return nil
}

// GenerateTrace makes a synthetic trace: Poisson arrivals at rate per
// second for dur, each for one of functions functions named fn-0, fn-1, …
// chosen with Zipf popularity (a few hot functions, a long tail of rarely
// called ones, which are the cold starts), as serverless traces look.
func GenerateTrace(seed uint64, rate float64, dur time.Duration, functions int) []TraceEvent {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	functions = max(functions, 1)
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(functions-1))
	var out []TraceEvent
	for _, at := range PoissonSchedule(rng, rate, 0, dur) {
		out = append(out, TraceEvent{Offset: at.Round(time.Microsecond), Function: fmt.Sprintf("fn-%d", zipf.Uint64())})
	}
	return out
}

// traceFunctions lists the distinct functions of a trace, in order of
// first appearance.
func traceFunctions(events []TraceEvent) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range events {
		if !seen[e.Function] {
			seen[e.Function] = true
			out = append(out, e.Function)
		}
	}
	return out
}
