package apprepositories

import (
	"context"
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
)

type metrics struct {
	fetches  *prometheus.CounterVec
	requests *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_apprepository_index_fetches_total",
			Help: "Repository index fetches checking a new AppRepository, by result (ok, refused_address, invalid_url, too_large, timeout, failed).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenant_proxy_apprepository_requests_total",
			Help: "Repository API requests by operation (create, delete) and HTTP code.",
		}, []string{"operation", "code"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.fetches, m.requests}
}

// fetch counts an index fetch by a bounded result, never by URL.
func (m *metrics) fetch(err error) {
	m.fetches.WithLabelValues(fetchResult(err)).Inc()
}

func fetchResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, helmrepo.ErrForbiddenAddress):
		return "refused_address"
	case errors.Is(err, helmrepo.ErrInvalidURL):
		return "invalid_url"
	case errors.Is(err, helmrepo.ErrTooLarge):
		return "too_large"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "failed"
	}
}

func (m *metrics) request(operation string, code int) {
	m.requests.WithLabelValues(operation, strconv.Itoa(code)).Inc()
}
