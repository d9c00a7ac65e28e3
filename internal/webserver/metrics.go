package webserver

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenant-proxy/tenant-proxy/internal/request"
)

// knownVerbs bounds the verb label: anything else is "other". Labels never carry user input.
var knownVerbs = map[string]bool{
	"get": true, "list": true, "watch": true, "create": true, "update": true, "patch": true,
	"delete": true, "deletecollection": true, "proxy": true, "connect": true,
}

type metrics struct {
	registry         *prometheus.Registry
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	inFlight         prometheus.Gauge
	longRunning      *prometheus.GaugeVec
	longRunningTotal *prometheus.CounterVec
	authentications  *prometheus.CounterVec
	// authenticated and unauthenticated are authentications' two series, looked up once.
	authenticated, unauthenticated prometheus.Counter
	upstreamErrors                 *prometheus.CounterVec
}

// Kinds of long-running requests.
const (
	longRunningWatch  = "watch"  // watches and followed logs: streamed responses
	longRunningStream = "stream" // exec, attach, port-forward: upgraded connections
)

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_requests_total", Help: "Requests by verb, decision (forwarded, intercepted, denied), module and HTTP code.",
		}, []string{"verb", "decision", "module", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenant_proxy_request_duration_seconds", Help: "Request latency by verb and decision (long-running requests excluded).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"verb", "decision"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenant_proxy_requests_in_flight", Help: "Requests being served.",
		}),
		longRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenant_proxy_long_running_requests", Help: "Open long-running requests by kind (watch: watches and log follows; stream: exec, attach, port-forward).",
		}, []string{"kind"}),
		longRunningTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_long_running_requests_total", Help: "Long-running requests started, by kind.",
		}, []string{"kind"}),
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_authentications_total", Help: "Authentication results (success, failure).",
		}, []string{"result"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_upstream_errors_total", Help: "Failed round trips to the API server by reason (unreachable, other).",
		}, []string{"reason"}),
	}
	m.authenticated, m.unauthenticated = m.authentications.WithLabelValues("success"), m.authentications.WithLabelValues("failure")
	m.registry.MustRegister(m.requests, m.latency, m.inFlight, m.longRunning, m.longRunningTotal, m.authentications, m.upstreamErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(request.Collectors()...)
	return m
}

// begin counts a request in flight and returns the function that accounts for it when it ends. kind is ""
// for an ordinary request, else longRunningWatch or longRunningStream.
func (m *metrics) begin(kind string) func(verb, decision, module string, code int, latency time.Duration) {
	gauge := m.inFlight
	if kind != "" {
		gauge = m.longRunning.WithLabelValues(kind)
		m.longRunningTotal.WithLabelValues(kind).Inc()
	}
	gauge.Inc()
	return func(verb, decision, module string, code int, latency time.Duration) {
		gauge.Dec()
		if !knownVerbs[verb] {
			verb = "other"
		}
		m.requests.WithLabelValues(verb, decision, module, strconv.Itoa(code)).Inc()
		if kind == "" {
			m.latency.WithLabelValues(verb, decision).Observe(latency.Seconds())
		}
	}
}

// handler serves /metrics and, with profiling, pprof.
func (m *metrics) handler(profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
