package worker

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves this worker's Prometheus metrics: its sandboxes
// and memory, and the Go runtime and process (goroutines, RSS, open
// files), which is what a soak run watches for leaks. Invocation counts
// live on the coordinators, which see every outcome.
func (w *Worker) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), w.Collector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Collector reads this worker's gauges (gust_worker_*) at scrape time, for
// a registry of the caller's: gustd dev serves them with the coordinator's.
func (w *Worker) Collector() prometheus.Collector { return workerCollector{w} }

var (
	descSandboxes = prometheus.NewDesc("gust_worker_sandboxes", "Sandboxes on this worker, by state.", []string{"state"}, nil)
	descMemory    = prometheus.NewDesc("gust_worker_memory_mb", "Memory for sandboxes on this worker, MB.", nil, nil)
	descFree      = prometheus.NewDesc("gust_worker_free_memory_mb", "Memory not held by busy sandboxes, MB (idle ones are evictable).", nil, nil)
	descStems     = prometheus.NewDesc("gust_worker_stem_cells", "Stem cells ready for cold starts on this worker.", nil, nil)
	descStemsGoal = prometheus.NewDesc("gust_worker_stem_cells_target", "The stock of stem cells this worker keeps (--stem-cells).", nil, nil)
	descLogDrops  = prometheus.NewDesc("gust_worker_log_dropped_bytes_total", "Bytes of sandbox output dropped from functions' logs for passing the log rate.", nil, nil)
)

// workerCollector reads the pool state at scrape time.
type workerCollector struct{ w *Worker }

func (c workerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSandboxes
	ch <- descMemory
	ch <- descFree
	ch <- descStems
	ch <- descStemsGoal
	ch <- descLogDrops
}

func (c workerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.State()
	var idle, busy int32
	for _, n := range st.Idle {
		idle += n
	}
	for _, n := range st.Busy {
		busy += n
	}
	ch <- prometheus.MustNewConstMetric(descSandboxes, prometheus.GaugeValue, float64(idle), "idle")
	ch <- prometheus.MustNewConstMetric(descSandboxes, prometheus.GaugeValue, float64(busy), "busy")
	ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(st.MemoryMB))
	ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(st.FreeMemoryMB))
	ch <- prometheus.MustNewConstMetric(descStems, prometheus.GaugeValue, float64(c.w.StemCells()))
	ch <- prometheus.MustNewConstMetric(descStemsGoal, prometheus.GaugeValue, float64(c.w.StemCellTarget()))
	ch <- prometheus.MustNewConstMetric(descLogDrops, prometheus.CounterValue, float64(c.w.logs.dropped.Load()))
}
