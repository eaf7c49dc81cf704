package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"
)

// The Azure Functions 2019 shapes (Shahrad et al., ATC '20, and the public
// trace's fits) the generator draws from.
const (
	// Invocation rates span 8 orders of magnitude, from one every ~166
	// days to ~7 a second; 45% of apps are invoked at most once an hour and
	// 81% at most once a minute. The rate is log-uniform within each of
	// the three segments, so both quantiles hold exactly.
	minLog10Rate = -3.6 // per hour
	maxLog10Rate = 4.4  // per hour
	shareHourly  = 0.45 // apps at <= 1/h
	shareMinute  = 0.81 // apps at <= 60/h

	// Mean execution time per app: lognormal in ln seconds.
	durMu    = -0.38
	durSigma = 2.36

	// Memory per app: Burr XII in MB.
	burrC      = 11.652
	burrK      = 0.221
	burrLambda = 107.083

	// invocationSigma spreads one app's executions around its mean
	// (lognormal, mean preserved). The trace gives per-app percentiles
	// but no fit; 0.5 is our assumption.
	invocationSigma = 0.5

	// historyArrivals bounds the synthetic past fed to a trained policy:
	// enough for a histogram, cheap for hot apps.
	historyArrivals = 300
	// historyMax bounds how far back the past goes: a week, as the paper's
	// histograms had.
	historyMax = 7 * 24 * time.Hour
)

// App is one simulated function (one pool key).
type App struct {
	ID     int
	Key    string // pool key, as placement sees it
	Digest string
	// RatePerHour is the mean invocation rate.
	RatePerHour float64
	// Period is nonzero for a timer-triggered app, invoked exactly every
	// Period; others arrive as a Poisson process.
	Period time.Duration
	// MeanDuration is the app's mean execution time.
	MeanDuration time.Duration
	// MemoryMB is what one sandbox of the app is granted.
	MemoryMB int64

	hash uint64 // of Key, for hash placement
}

// Class groups apps by arrival pattern, for breakdowns.
type Class int

// The classes, in report order.
const (
	ClassTimer  Class = iota // timer-triggered
	ClassRare                // Poisson, at most once an hour
	ClassMedium              // Poisson, more than hourly, at most once a minute
	ClassHot                 // Poisson, more than once a minute
	numClasses
)

// String names the class for reports.
func (c Class) String() string {
	return [...]string{"timer", "rare (<=1/h)", "medium (1/h-1/min)", "hot (>1/min)"}[c]
}

// Class returns the app's class.
func (a *App) Class() Class {
	switch {
	case a.Period > 0:
		return ClassTimer
	case a.RatePerHour <= 1:
		return ClassRare
	case a.RatePerHour <= 60:
		return ClassMedium
	}
	return ClassHot
}

// Workload is the app population of one seed.
type Workload struct {
	Apps []App
	cfg  Config
}

// NewWorkload draws cfg.Apps apps from the seed. The same seed gives the same
// apps and, through stream, the same arrivals.
func NewWorkload(cfg Config) *Workload {
	cfg = cfg.withDefaults()
	r := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	w := &Workload{Apps: make([]App, cfg.Apps), cfg: cfg}
	for i := range w.Apps {
		a := &w.Apps[i]
		a.ID = i
		a.Key = fmt.Sprintf("app-%05d:1", i)
		a.Digest = fmt.Sprintf("sha256-%05d", i)
		h := fnv.New64a()
		h.Write([]byte(a.Key))
		a.hash = h.Sum64()
		a.RatePerHour = drawRate(r.Float64())
		// Timers fire at most once a minute (cron granularity), so they
		// are drawn among the apps at or below that rate.
		if a.RatePerHour <= 60 && r.Float64() < cfg.TimerShare/shareMinute {
			a.Period = max(time.Minute, time.Duration(float64(time.Hour)/a.RatePerHour).Round(time.Minute))
			a.RatePerHour = float64(time.Hour) / float64(a.Period)
		}
		d := math.Exp(durMu + durSigma*r.NormFloat64())
		a.MeanDuration = min(max(time.Duration(d*float64(time.Second)), time.Millisecond), cfg.MaxDuration)
		a.MemoryMB = min(max(int64(math.Ceil(burr(r.Float64()))), 1), cfg.MaxMemoryMB, cfg.WorkerMemoryMB)
	}
	return w
}

// drawRate maps a uniform u to an invocation rate per hour.
func drawRate(u float64) float64 {
	var lo, hi, f float64
	switch {
	case u < shareHourly:
		lo, hi, f = minLog10Rate, 0, u/shareHourly
	case u < shareMinute:
		lo, hi, f = 0, math.Log10(60), (u-shareHourly)/(shareMinute-shareHourly)
	default:
		lo, hi, f = math.Log10(60), maxLog10Rate, (u-shareMinute)/(1-shareMinute)
	}
	return math.Pow(10, lo+f*(hi-lo))
}

// burr is the inverse CDF of Burr XII: F(x) = 1 - (1 + (x/λ)^c)^-k.
func burr(u float64) float64 {
	return burrLambda * math.Pow(math.Pow(1-u, -1/burrK)-1, 1/burrC)
}

// stream is one app's arrivals and execution times, from its own generator
// so that every policy sees exactly the same invocations.
type stream struct {
	app  *App
	r    *rand.Rand
	next time.Duration // next arrival, relative to the simulation's start
}

// newStream starts app's arrivals in the past: far enough back for about
// historyArrivals of them, at most historyMax.
func (w *Workload) newStream(a *App) *stream {
	s := &stream{app: a, r: rand.New(rand.NewPCG(w.cfg.Seed^uint64(a.ID)*0x100000001b3, uint64(a.ID)+1))}
	span := min(historyMax, time.Duration(historyArrivals/a.RatePerHour*float64(time.Hour)))
	if a.Period > 0 {
		// Timers keep a fixed phase; the first fire is within a period
		// of the start of the history.
		s.next = -span + time.Duration(s.r.Int64N(int64(a.Period)))
	} else {
		s.next = -span + s.gap()
	}
	return s
}

// gap draws the time to the next Poisson arrival.
func (s *stream) gap() time.Duration {
	return time.Duration(s.r.ExpFloat64() / s.app.RatePerHour * float64(time.Hour))
}

// pop returns the next arrival and its execution time and moves on.
func (s *stream) pop(maxDur time.Duration) (at, dur time.Duration) {
	at = s.next
	f := math.Exp(invocationSigma*s.r.NormFloat64() - invocationSigma*invocationSigma/2)
	dur = min(max(time.Duration(f*float64(s.app.MeanDuration)), time.Millisecond), maxDur)
	if s.app.Period > 0 {
		s.next += s.app.Period
	} else {
		s.next += s.gap()
	}
	return at, dur
}
