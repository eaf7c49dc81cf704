package bench

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Modes, in the order Run runs them.
const (
	ModeCold    = "cold"
	ModeWarm    = "warm"
	ModeBurst   = "burst"
	ModeTrace   = "trace"
	ModeCluster = "cluster"
	ModeQuotas  = "quotas"
	ModeAsync   = "async"
)

// AllModes is what "all" means.
var AllModes = []string{ModeCold, ModeWarm, ModeBurst, ModeTrace, ModeCluster, ModeQuotas, ModeAsync}

// FigureModes are the modes that produce the headline figures.
var FigureModes = []string{ModeCold, ModeWarm, ModeBurst, ModeTrace}

// ParseModes reads a comma-separated list of modes; "all" is AllModes and
// "figures" is FigureModes. The result is in Run's order, without repeats.
func ParseModes(s string) ([]string, error) {
	want := map[string]bool{}
	for _, m := range strings.Split(s, ",") {
		switch m = strings.TrimSpace(m); m {
		case "":
		case "all":
			for _, a := range AllModes {
				want[a] = true
			}
		case "figures":
			for _, a := range FigureModes {
				want[a] = true
			}
		default:
			if !slices.Contains(AllModes, m) {
				return nil, fmt.Errorf("unknown mode %q: want %s, figures or all", m, strings.Join(AllModes, ", "))
			}
			want[m] = true
		}
	}
	var out []string
	for _, m := range AllModes {
		if want[m] {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no mode given")
	}
	return out, nil
}

// Options configures a run. DefaultOptions fills every field.
type Options struct {
	// Modes to run, from AllModes.
	Modes []string
	// Gustd is the gustd binary; Bootstrap the function (a static
	// aws-lambda-go `provided` bootstrap, such as examples/hello); RIE the
	// aws-lambda-rie binary; Runc the runc binary.
	Gustd     string
	Bootstrap string
	RIE       string
	Runc      string
	// Samples per measurement; 0 picks each mode's default (cold 100,
	// warm 2,000, burst 100 functions, cluster 1,000 per coordinator,
	// async 4,000 events per round).
	Samples int
	// Clients is the number of closed-loop clients of the load rounds
	// (warm's N-client round, quotas).
	Clients int
	// Rate, when positive, makes the load rounds open loop: Poisson
	// arrivals at Rate per second (warm's N-client round, burst arrivals,
	// a generated trace, async steady load). 0 is closed loop.
	Rate float64
	// Duration of each load round.
	Duration time.Duration
	// Trace is a CSV of offset_ms,function to replay (see ParseTrace);
	// "" replays a generated one (GenerateTrace).
	Trace string
	// Payload is the event sent with every invocation.
	Payload []byte
	// Seed makes the Poisson schedules and generated traces repeatable.
	Seed uint64
	// WorkDir holds the processes' data and logs; "" is a fresh temporary
	// directory, removed afterwards.
	WorkDir string
	// KeepWork keeps the work directory (with every process's log).
	KeepWork bool
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// DefaultOptions runs every mode with the binaries `make bench` builds.
func DefaultOptions() Options {
	return Options{
		Modes:     slices.Clone(AllModes),
		Gustd:     "bin/gustd",
		Bootstrap: "bin/hello/bootstrap",
		RIE:       "aws-lambda-rie",
		Runc:      "runc",
		Clients:   16,
		Duration:  10 * time.Second,
		Payload:   []byte(`{"name":"bench"}`),
		Seed:      1,
	}
}

// samples returns the sample count for a mode.
func (o *Options) samples(mode string) int {
	if o.Samples > 0 {
		return o.Samples
	}
	switch mode {
	case ModeCold, ModeBurst:
		return 100
	case ModeCluster:
		return 1000
	case ModeAsync:
		return 4000
	default:
		return 2000
	}
}

func (o *Options) validate() error {
	switch {
	case len(o.Modes) == 0:
		return fmt.Errorf("no mode given")
	case o.Clients < 1:
		return fmt.Errorf("clients must be at least 1, not %d", o.Clients)
	case o.Rate < 0:
		return fmt.Errorf("rate must not be negative")
	case o.Duration <= 0:
		return fmt.Errorf("duration must be positive")
	case o.Samples < 0:
		return fmt.Errorf("samples must not be negative")
	}
	for _, m := range o.Modes {
		if !slices.Contains(AllModes, m) {
			return fmt.Errorf("unknown mode %q", m)
		}
	}
	return nil
}
