// Package modules is the seam where interceptors plug into the proxy. Each sub-package serves one
// intercepted resource family or API (tenant filtering, the release API). Everything no module claims is
// forwarded to the API server as the caller.
package modules

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
)

// Request is the read-only view a module decides on: the authenticated (and, with --as, authorised
// impersonated) caller, and kube-apiserver's own parse of exactly the URL that would be forwarded.
type Request struct {
	User user.Info
	Info *apirequest.RequestInfo
	HTTP *http.Request
	// Forward sends a request to the API server as the caller, exactly as if no module had taken it. A module
	// that read the body passes a copy of the request with the same body bytes.
	Forward http.Handler
}

// Module intercepts a family of requests.
type Module interface {
	// Name identifies the module in logs, metrics and audit records.
	Name() string
	// Intercept returns the handler that answers req, or nil when the module does not take it. It must not
	// modify req; a handler that decides to let the API server answer after all uses req.Forward.
	Intercept(req Request) http.Handler
}

// ReadinessChecker is implemented by modules that need caches synced before they answer correctly.
// The proxy reports not ready until every such module is.
type ReadinessChecker interface {
	Ready(ctx context.Context) error
}

// Starter is implemented by modules with background work (informers); Start returns once started and
// runs until ctx ends.
type Starter interface {
	Start(ctx context.Context) error
}

// TenantNamer is implemented by a module that knows which tenants a caller owns; the proxy's audit record
// names them for every request of that caller.
type TenantNamer interface {
	TenantsOf(u user.Info) []string
}

// MetricsProvider is implemented by modules with metrics of their own; the proxy serves them on
// --metrics-bind-address with its other metrics.
type MetricsProvider interface {
	Collectors() []prometheus.Collector
}
