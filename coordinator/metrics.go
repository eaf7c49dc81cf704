package coordinator

import (
	"errors"
	"net/http"

	"github.com/gustfaas/gust/coordinator/fleet"
	"github.com/gustfaas/gust/internal/apierr"
	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"github.com/gustfaas/gust/raftstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Invocation outcomes, the outcome label of gust_invocations_total.
const (
	outcomeSuccess       = "success"
	outcomeFunctionError = "function_error"
	outcomeThrottled     = "throttled"
	outcomeError         = "error"
)

// metrics are one coordinator's Prometheus collectors, in a registry of
// its own (several coordinators share a process in tests). Invocations are
// counted where they enter the cluster, on the coordinator that admitted
// them; pool, Raft and gossip gauges are read at scrape time.
type metrics struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec
	errors      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	coldStarts  *prometheus.CounterVec
	warmHits    *prometheus.CounterVec
	throttles   *prometheus.CounterVec
	billed      *prometheus.CounterVec
	// collectors is everything registered, so a test can list the names
	// (the Grafana dashboard must query only these).
	collectors []prometheus.Collector
}

func newMetrics(cluster *clusterCollector, extra ...prometheus.Collector) *metrics {
	fv := []string{"function", "version"}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gust_invocations_total",
			Help: "Invocations admitted here, by outcome: success, function_error, throttled, error."}, append(fv, "outcome")),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gust_invocation_errors_total",
			Help: "Invocations that failed: the function's own error (Handled, Unhandled) or the platform's (its error name)."}, append(fv, "kind")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gust_invocation_duration_seconds",
			Help:    "Function run time, as billed before rounding (the REPORT line's Duration).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}}, fv),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gust_cold_starts_total",
			Help: "Invocations that started a sandbox, by reason."}, append(fv, "reason")),
		warmHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gust_warm_hits_total",
			Help: "Invocations served by a warm sandbox."}, fv),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gust_throttles_total",
			Help: "Invocations refused for concurrency, by reason."}, []string{"reason"}),
		billed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gust_billed_gb_seconds_total",
			Help: "Billed duration times memory size, in GB-seconds."}, []string{"function"}),
	}
	m.collectors = []prometheus.Collector{m.invocations, m.errors, m.duration, m.coldStarts, m.warmHits, m.throttles, m.billed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		cluster}
	m.collectors = append(m.collectors, extra...)
	m.reg.MustRegister(m.collectors...)
	return m
}

// handler serves /metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observe records one synchronous invocation's outcome.
func (m *metrics) observe(fn *gustv1.Function, res *gustv1.InvokeResponse, err error) {
	name := fn.GetConfig().GetName()
	version := fn.GetVersion()
	if res != nil {
		version = res.GetExecutedVersion()
	}
	var apiErr *apierr.Error
	switch {
	case err != nil && errors.As(err, &apiErr) && apiErr.Name == apierr.TooManyRequests:
		m.invocations.WithLabelValues(name, version, outcomeThrottled).Inc()
		m.throttles.WithLabelValues(apiErr.Reason).Inc()
		return
	case err != nil:
		kind := "ServiceException"
		if errors.As(err, &apiErr) {
			kind = apiErr.Name
		}
		m.invocations.WithLabelValues(name, version, outcomeError).Inc()
		m.errors.WithLabelValues(name, version, kind).Inc()
		return
	case res.GetFunctionError() != "":
		m.invocations.WithLabelValues(name, version, outcomeFunctionError).Inc()
		m.errors.WithLabelValues(name, version, res.GetFunctionError()).Inc()
	default:
		m.invocations.WithLabelValues(name, version, outcomeSuccess).Inc()
	}
	if res.GetColdStart() {
		m.coldStarts.WithLabelValues(name, version, coldReason(res)).Inc()
	} else {
		m.warmHits.WithLabelValues(name, version).Inc()
	}
	m.duration.WithLabelValues(name, version).Observe(res.GetDurationMs() / 1000)
	m.billed.WithLabelValues(name).Add(float64(res.GetBilledDurationMs()) / 1000 * float64(fn.GetConfig().GetMemoryMb()) / 1024)
}

// coldReason is why an invocation was cold, as far as this coordinator
// knows: the worker says whether a warm sandbox of the version was busy.
func coldReason(res *gustv1.InvokeResponse) string {
	if r := res.GetColdStartReason(); r != "" {
		return r
	}
	return "no_sandbox"
}

// clusterCollector reads the gauges at scrape time: sandboxes per state
// from the workers' pool streams, Raft and gossip health.
type clusterCollector struct {
	router  *fleet.Router
	raft    *raftstore.Store
	members Membership // nil in gustd dev
}

var (
	descSandboxes = prometheus.NewDesc("gust_sandboxes", "Sandboxes on the workers this coordinator sees, by state.", []string{"state"}, nil)
	descWorkers   = prometheus.NewDesc("gust_workers", "Workers this coordinator can place on.", []string{"available"}, nil)
	descRaftState = prometheus.NewDesc("gust_raft_state", "1 for this node's Raft state.", []string{"state"}, nil)
	descApplied   = prometheus.NewDesc("gust_raft_applied_index", "Log index of the last command applied here.", nil, nil)
	descLeader    = prometheus.NewDesc("gust_raft_has_leader", "1 when this node knows a Raft leader.", nil, nil)
	descPending   = prometheus.NewDesc("gust_async_pending_events", "Async events queued or running.", nil, nil)
	descMembers   = prometheus.NewDesc("gust_gossip_members", "Gossip members by role and status.", []string{"role", "status"}, nil)
)

func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSandboxes, descWorkers, descRaftState, descApplied, descLeader, descPending, descMembers} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	idle, busy := c.router.SandboxCounts()
	ch <- prometheus.MustNewConstMetric(descSandboxes, prometheus.GaugeValue, float64(idle), "idle")
	ch <- prometheus.MustNewConstMetric(descSandboxes, prometheus.GaugeValue, float64(busy), "busy")
	up, down := 0, 0
	for _, w := range c.router.Workers() {
		if w.Available {
			up++
		} else {
			down++
		}
	}
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(up), "true")
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(down), "false")
	ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, 1, c.raft.State())
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(c.raft.AppliedIndex()))
	hasLeader := 0.0
	if leader, _ := c.raft.Leader(); leader != "" {
		hasLeader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, hasLeader)
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(c.raft.PendingCount()))
	if c.members != nil {
		counts := map[[2]string]int{}
		for _, m := range c.members.Members() {
			counts[[2]string{m.Role, m.Status}]++
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
}
