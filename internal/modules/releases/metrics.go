package releases

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count Helm operations by action (install, upgrade, rollback, uninstall, list, get) and result
// (success, forbidden, conflict, not_found, invalid, failed): bounded labels, never user input.
type metrics struct {
	operations *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_helm_operations_total", Help: "Release API operations by action and result.",
		}, []string{"action", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tenant_proxy_helm_operation_duration_seconds", Help: "Release API operation latency by action.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"action"}),
	}
}

func (m *metrics) observe(action string, code int, start time.Time) {
	m.operations.WithLabelValues(action, resultOf(code)).Inc()
	m.duration.WithLabelValues(action).Observe(time.Since(start).Seconds())
}

func resultOf(code int) string {
	switch {
	case code < 300:
		return "success"
	case code == 400 || code == 413:
		return "invalid"
	case code == 401 || code == 403:
		return "forbidden"
	case code == 404:
		return "not_found"
	case code == 409:
		return "conflict"
	default:
		return "failed"
	}
}
