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
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), workerCollector{w})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

var (
	descSandboxes = prometheus.NewDesc("gust_worker_sandboxes", "Sandboxes on this worker, by state.", []string{"state"}, nil)
	descMemory    = prometheus.NewDesc("gust_worker_memory_mb", "Memory for sandboxes on this worker, MB.", nil, nil)
	descFree      = prometheus.NewDesc("gust_worker_free_memory_mb", "Memory not held by busy sandboxes, MB (idle ones are evictable).", nil, nil)
)

// workerCollector reads the pool state at scrape time.
type workerCollector struct{ w *Worker }

func (c workerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSandboxes
	ch <- descMemory
	ch <- descFree
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
}
