package webserver

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// knownVerbs bounds the verb label: anything else is "other". Labels never carry user input.
var knownVerbs = map[string]bool{
	"get": true, "list": true, "watch": true, "create": true, "update": true, "patch": true,
	"delete": true, "deletecollection": true, "proxy": true, "connect": true,
}

type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	longRunning prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_requests_total", Help: "Requests by verb, decision and HTTP code.",
		}, []string{"verb", "decision", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenant_proxy_request_duration_seconds", Help: "Request latency by verb and decision (long-running requests excluded).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"verb", "decision"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenant_proxy_requests_in_flight", Help: "Requests being served.",
		}),
		longRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenant_proxy_long_running_requests", Help: "Open watches, log follows and upgraded streams.",
		}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.inFlight, m.longRunning,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// begin counts a request in flight and returns the function that accounts for it when it ends.
func (m *metrics) begin(longRunning bool) func(verb, decision string, code int, latency time.Duration) {
	gauge := m.inFlight
	if longRunning {
		gauge = m.longRunning
	}
	gauge.Inc()
	return func(verb, decision string, code int, latency time.Duration) {
		gauge.Dec()
		if !knownVerbs[verb] {
			verb = "other"
		}
		m.requests.WithLabelValues(verb, decision, strconv.Itoa(code)).Inc()
		if !longRunning {
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
