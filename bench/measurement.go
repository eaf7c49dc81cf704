package bench

import (
	"time"
)

// Measurement is one subject measured in one way: a row of the report and
// a line of the chart.
type Measurement struct {
	// Key is stable across runs ("cold.gust.http.invoke"), for scripts
	// that read the JSON.
	Key string `json:"key"`
	// Name says what was timed, for people.
	Name string `json:"name"`
	// Mode is the section it belongs to: cold, warm, load, burst, trace,
	// cluster, quotas, async.
	Mode string `json:"mode"`
	// Reference is the Key of the measurement this one is compared to,
	// measured in the same run; "" when it is not compared.
	Reference string `json:"reference,omitempty"`
	// IsReference marks the rows others are compared to.
	IsReference bool `json:"is_reference,omitempty"`
	// Client is how the subject was driven: http, grpc, process.
	Client string `json:"client,omitempty"`
	// Clients is the number of concurrent closed-loop clients (0 in open
	// loop); Rate the offered open-loop arrival rate per second (0 in
	// closed loop).
	Clients int     `json:"clients,omitempty"`
	Rate    float64 `json:"offered_rate_per_s,omitempty"`
	// Summary is the statistics; it is what the JSON is for.
	Summary Summary `json:"summary"`
	// Errors counts failed operations, by kind (an error name such as
	// TooManyRequestsException, or "timeout", "transport").
	Errors     int            `json:"-"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	// Latencies are the successful samples, in the order they completed
	// (in microseconds in the JSON, with --json-samples).
	Latencies []time.Duration `json:"-"`
	// Cold is, per sample, whether the client saw a cold start.
	Cold []Cold `json:"-"`
	// Elapsed is the span from the first arrival to the last completion.
	Elapsed time.Duration `json:"-"`
	// SamplesUS carries Latencies in the JSON when asked for.
	SamplesUS []int64 `json:"samples_us,omitempty"`
}

// summarize fills Summary from the samples.
func (m *Measurement) summarize() {
	m.Summary = Summarize(m.Latencies)
	m.Summary.Errors = m.Errors
	for _, c := range m.Cold {
		switch c {
		case ColdYes:
			m.Summary.ColdStarts++
		case ColdNo:
			m.Summary.WarmStarts++
		}
	}
	if n := m.Summary.ColdStarts + m.Summary.WarmStarts; n > 0 {
		m.Summary.ColdShare = float64(m.Summary.ColdStarts) / float64(n)
	}
	if m.Elapsed > 0 {
		m.Summary.ElapsedS = m.Elapsed.Seconds()
		m.Summary.Throughput = float64(m.Summary.Count) / m.Elapsed.Seconds()
		m.Summary.ColdPerSecond = float64(m.Summary.ColdStarts) / m.Elapsed.Seconds()
	}
}

// only returns a copy of m holding the samples whose coldness is c, under
// a new key and name (the trace's cold and warm halves).
func (m *Measurement) only(c Cold, key, name string) *Measurement {
	out := &Measurement{Key: key, Name: name, Mode: m.Mode, Client: m.Client, Clients: m.Clients, Rate: m.Rate, Elapsed: m.Elapsed}
	for i, s := range m.Latencies {
		if m.Cold[i] == c {
			out.Latencies = append(out.Latencies, s)
			out.Cold = append(out.Cold, c)
		}
	}
	out.summarize()
	return out
}

// durations builds a measurement from plain samples (no errors, no
// coldness), with throughput over elapsed if given.
func durations(key, name string, d []time.Duration, elapsed time.Duration) *Measurement {
	m := &Measurement{Key: key, Name: name, Latencies: d, Cold: make([]Cold, len(d)), Elapsed: elapsed}
	m.summarize()
	return m
}
