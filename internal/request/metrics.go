package request

import "github.com/prometheus/client_golang/prometheus"

// Counters of the authentication layer. Labels are fixed words, never request data.
var (
	tokenCacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenant_proxy_token_cache_lookups_total",
		Help: "Bearer token authentications by cache result (hit, miss).",
	}, []string{"result"})
	certCacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenant_proxy_client_certificate_cache_lookups_total",
		Help: "Client certificate authentications by cache result (hit, miss).",
	}, []string{"result"})

	// Resolved once: looking a label up hashes it, on every request.
	tokenCacheHits, tokenCacheMisses = tokenCacheLookups.WithLabelValues("hit"), tokenCacheLookups.WithLabelValues("miss")
	certCacheHits, certCacheMisses   = certCacheLookups.WithLabelValues("hit"), certCacheLookups.WithLabelValues("miss")
)

// Collectors returns the metrics of this package for the proxy's registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{tokenCacheLookups, certCacheLookups}
}
