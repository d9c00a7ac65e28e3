package webserver

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/component-base/metrics/legacyregistry"
)

// TestAPIServerFilterMetricsNotRecorded: the authentication filter's own metrics, which nobody can scrape
// from the proxy, are never created, while the proxy's own count of the same attempts goes on.
func TestAPIServerFilterMetricsNotRecorded(t *testing.T) {
	c := &chain{
		authenticator: authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
			return nil, false, nil
		}),
		metrics: newMetrics(),
	}
	h := c.handler()
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/namespaces", nil))
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", w.Code)
		}
	}
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if slices.Contains(unservedFilterMetrics, f.GetName()) {
			t.Errorf("%s was recorded (%d series)", f.GetName(), len(f.GetMetric()))
		}
	}
	if got := testutil.ToFloat64(c.metrics.unauthenticated); got != 3 {
		t.Errorf("tenant_proxy_authentications_total{result=failure} = %v, want 3", got)
	}
}
