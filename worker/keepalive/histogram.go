package keepalive

import (
	"math"
	"sync"
	"time"
)

// HistogramConfig configures HybridHistogram. The defaults are those of
// Shahrad et al., "Serverless in the Wild" (USENIX ATC '20), except where a
// field says otherwise.
type HistogramConfig struct {
	// BinWidth is the width of one histogram bin (paper: 1 minute).
	BinWidth time.Duration
	// Range is the longest idle time the histogram holds; longer ones are
	// counted as out of bounds (paper: 4 hours).
	Range time.Duration
	// Head is the idle-time percentile the pre-warm window is cut at
	// (paper: 5th).
	Head float64
	// Tail is the idle-time percentile the keep-alive window ends at
	// (paper: 99th).
	Tail float64
	// Margin widens both cut-offs, pre-warming earlier and keeping longer,
	// to absorb prediction error (paper: 10%).
	Margin float64
	// MinSamples is how many idle times a function needs before its
	// histogram is trusted. The paper gives no number; 10 is ours.
	MinSamples int
	// MinCV is the least coefficient of variation of the bin counts for the
	// histogram to be representative (paper: 2). A flat histogram (low CV)
	// says idle times are spread over the whole range and predicts nothing.
	MinCV float64
	// MaxOutOfBounds is the largest share of idle times beyond Range for
	// which the histogram is still used (paper: 0.5).
	MaxOutOfBounds float64
	// MinKeepAlive is the shortest keep-alive given to a sandbox that is not
	// pre-warmed; 0, the default, follows the paper. The histogram holds
	// one function's idle times, end of any execution to the next arrival:
	// a function running many sandboxes at once has idle times near zero,
	// which predicts the next arrival well but says nothing about how long
	// its extra sandboxes will wait for a burst. A floor keeps those as the
	// fixed policy would.
	MinKeepAlive time.Duration
	// MaxKeepAlive, when set, bounds what an idle sandbox that is not
	// pre-warmed may cost: a function whose histogram asks for a longer
	// keep-alive gets Default instead. Such a function is invoked rarely
	// and at random (memoryless arrivals, its head percentile near zero),
	// where memory kept for hours saves a cold start now and then; the
	// memory saved goes further on functions invoked often.
	MaxKeepAlive time.Duration
	// Default is the keep-alive used when the histogram says nothing: too
	// few samples, flat, or too many idle times out of bounds. The paper
	// keeps the sandbox for the whole Range in the first two cases and
	// forecasts out-of-bounds functions with ARIMA; we fall back to the
	// worker's standing fixed keep-alive in all three, the conservative
	// choice for memory.
	Default time.Duration
}

// DefaultHistogramConfig returns the paper's parameters with a 10-minute
// fallback, gust's fixed keep-alive.
func DefaultHistogramConfig() HistogramConfig {
	return HistogramConfig{
		BinWidth:       time.Minute,
		Range:          4 * time.Hour,
		Head:           0.05,
		Tail:           0.99,
		Margin:         0.10,
		MinSamples:     10,
		MinCV:          2,
		MaxOutOfBounds: 0.5,
		Default:        10 * time.Minute,
	}
}

// HybridHistogram is the hybrid histogram policy of "Serverless in the
// Wild": per function, a histogram of idle times (from the end of one
// execution to the arrival of the next). When it is representative the
// sandbox is unloaded after an execution, re-loaded at the head percentile
// and kept until the tail percentile; otherwise the fixed Default applies.
type HybridHistogram struct {
	cfg   HistogramConfig
	nbins int

	mu    sync.Mutex
	fns   map[string]*histogram
	calls int // Idle calls since the last prune
}

// pruneEvery is how many Idle calls pass between scans for functions not
// run for two Ranges, whose histograms are dropped: a worker sees every
// version it ever ran, and versions come and go.
const pruneEvery = 4096

// histogram is one function's idle times.
type histogram struct {
	bins    []uint32
	n       int64 // idle times within Range
	oob     int64 // idle times beyond Range
	sumSq   int64 // sum of squared bin counts, for the CV without a scan
	lastEnd time.Time
	ended   bool // lastEnd is set: idle times can be measured
}

// maxCount bounds a bin; on reaching it every count is halved, which keeps
// the shape, bounds the counters and lets old behaviour fade.
const maxCount = 1 << 30

// NewHybridHistogram returns the policy; zero fields of cfg take the
// defaults.
func NewHybridHistogram(cfg HistogramConfig) *HybridHistogram {
	def := DefaultHistogramConfig()
	if cfg.BinWidth <= 0 {
		cfg.BinWidth = def.BinWidth
	}
	if cfg.Range <= 0 {
		cfg.Range = def.Range
	}
	if cfg.Head <= 0 {
		cfg.Head = def.Head
	}
	if cfg.Tail <= 0 {
		cfg.Tail = def.Tail
	}
	if cfg.Margin == 0 {
		cfg.Margin = def.Margin
	}
	if cfg.MinSamples <= 0 {
		cfg.MinSamples = def.MinSamples
	}
	if cfg.MinCV == 0 {
		cfg.MinCV = def.MinCV
	}
	if cfg.MaxOutOfBounds == 0 {
		cfg.MaxOutOfBounds = def.MaxOutOfBounds
	}
	if cfg.Default <= 0 {
		cfg.Default = def.Default
	}
	nbins := int((cfg.Range + cfg.BinWidth - 1) / cfg.BinWidth)
	return &HybridHistogram{cfg: cfg, nbins: nbins, fns: make(map[string]*histogram)}
}

// Arrived adds the idle time since fn's last execution ended. Overlapping
// executions (a busy function) count as zero idle time.
func (p *HybridHistogram) Arrived(fn string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.fns[fn]
	if h == nil || !h.ended {
		return
	}
	idle := max(now.Sub(h.lastEnd), 0)
	if idle >= p.cfg.Range {
		h.oob++
		return
	}
	i := int(idle / p.cfg.BinWidth)
	if h.bins[i] >= maxCount {
		h.halve()
	}
	c := int64(h.bins[i])
	h.bins[i]++
	h.n++
	h.sumSq += 2*c + 1 // (c+1)² - c²
}

func (h *histogram) halve() {
	h.n, h.sumSq = 0, 0
	for i, c := range h.bins {
		c /= 2
		h.bins[i] = c
		h.n += int64(c)
		h.sumSq += int64(c) * int64(c)
	}
	h.oob /= 2
}

// Idle records the end of an execution and returns the window for the
// sandbox that ran it.
func (p *HybridHistogram) Idle(fn string, now time.Time) Window {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.fns[fn]
	if h == nil {
		h = &histogram{bins: make([]uint32, p.nbins)}
		p.fns[fn] = h
	}
	if !h.ended || now.After(h.lastEnd) {
		h.lastEnd, h.ended = now, true
	}
	if p.calls++; p.calls >= pruneEvery {
		p.calls = 0
		for k, o := range p.fns {
			if now.Sub(o.lastEnd) > 2*p.cfg.Range {
				delete(p.fns, k)
			}
		}
	}
	return p.window(h)
}

// window applies the policy to one histogram. Caller holds mu.
func (p *HybridHistogram) window(h *histogram) Window {
	fallback := Window{KeepAlive: p.cfg.Default}
	total := h.n + h.oob
	if total < int64(p.cfg.MinSamples) || h.n == 0 {
		return fallback
	}
	if float64(h.oob)/float64(total) > p.cfg.MaxOutOfBounds {
		return fallback
	}
	if cv(h.n, h.sumSq, p.nbins) < p.cfg.MinCV {
		return fallback
	}
	head, tail := -1, -1
	headAt := p.cfg.Head * float64(h.n)
	tailAt := p.cfg.Tail * float64(h.n)
	var cum int64
	for i, c := range h.bins {
		cum += int64(c)
		if head < 0 && float64(cum) >= headAt {
			head = i
		}
		if float64(cum) >= tailAt {
			tail = i
			break
		}
	}
	// The head bin's lower edge and the tail bin's upper edge, each moved
	// outward by the margin: pre-warm a little early, keep a little long.
	prewarm := time.Duration(math.Round(float64(head) * float64(p.cfg.BinWidth) * (1 - p.cfg.Margin)))
	end := time.Duration(math.Round(float64(tail+1) * float64(p.cfg.BinWidth) * (1 + p.cfg.Margin)))
	if p.cfg.MaxKeepAlive > 0 && end-prewarm > p.cfg.MaxKeepAlive {
		return fallback
	}
	if prewarm == 0 {
		return Window{KeepAlive: max(end, p.cfg.MinKeepAlive)}
	}
	return Window{Prewarm: prewarm, KeepAlive: end - prewarm}
}

// cv is the coefficient of variation (population) of nbins bin counts
// summing to n with squares summing to sumSq.
func cv(n, sumSq int64, nbins int) float64 {
	mean := float64(n) / float64(nbins)
	variance := float64(sumSq)/float64(nbins) - mean*mean
	return math.Sqrt(max(variance, 0)) / mean
}

// Forget drops fn's histogram.
func (p *HybridHistogram) Forget(fn string) {
	p.mu.Lock()
	delete(p.fns, fn)
	p.mu.Unlock()
}

// Adaptive is gust's adopted keep-alive (see sim/RESULTS.md): the hybrid
// histogram with k, the worker's standing keep-alive, as its floor and its
// fallback, and 6·k as the most an idle sandbox may be kept (or a
// pre-warm's window may last). Functions whose idle times the histogram
// predicts get pre-warmed or kept to their 99th percentile; the rest keep
// k, as under Fixed(k). With k = 10 minutes it had 19–26% fewer cold
// starts than Fixed(k) with no more idle memory in the simulation over the
// Azure 2019 shapes. When 6·k is shorter than one bin with its margin
// (66 s, so k under 11 s: tests) every window exceeds the cap and it
// behaves exactly as Fixed(k).
func Adaptive(k time.Duration) Policy {
	cfg := DefaultHistogramConfig()
	cfg.Default, cfg.MinKeepAlive, cfg.MaxKeepAlive = k, k, 6*k
	return NewHybridHistogram(cfg)
}
