// Package namespaces serves GET list, get and watch of core/v1 namespaces to Capsule users from the tenant
// index: each sees exactly the namespaces of the tenants they own, in every format the API server offers.
// The index keeps namespaces without metadata.managedFields (most of their memory), so they are served
// without them, as kubectl prints objects unless given --show-managed-fields.
// Everything else about namespaces (writes, subresources, other callers) is forwarded as the caller.
package namespaces

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// minWatchTimeout is kube-apiserver's default --min-request-timeout: watches without timeoutSeconds end
// after a random time between one and two of these, so that clients spread their reconnections.
const minWatchTimeout = 1800 * time.Second

// Module is the namespaces interceptor.
type Module struct {
	index *tenants.Index
	scope *handlers.RequestScope
}

var (
	_ modules.Module           = (*Module)(nil)
	_ modules.Starter          = (*Module)(nil)
	_ modules.ReadinessChecker = (*Module)(nil)
	_ modules.TenantNamer      = (*Module)(nil)
	_ modules.MetricsProvider  = (*Module)(nil)
)

// New returns the module; index may be shared with other modules.
func New(index *tenants.Index) *Module {
	return &Module{index: index, scope: newRequestScope()}
}

func (m *Module) Name() string { return "namespaces" }

// Collectors implements modules.MetricsProvider: the size of the tenant index this module serves from.
func (m *Module) Collectors() []prometheus.Collector {
	gauge := func(name, help string, pick func(tenants, namespaces, watches int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			return float64(pick(m.index.Size()))
		})
	}
	return []prometheus.Collector{
		gauge("tenant_proxy_tenant_index_tenants", "Tenants in the tenant index.", func(t, _, _ int) int { return t }),
		gauge("tenant_proxy_tenant_index_namespaces", "Namespaces in the tenant index.", func(_, n, _ int) int { return n }),
		gauge("tenant_proxy_tenant_index_watches", "Open namespace watches following the tenant index.", func(_, _, w int) int { return w }),
	}
}

// TenantsOf implements modules.TenantNamer.
func (m *Module) TenantsOf(u user.Info) []string {
	if !m.index.Synced() {
		return nil
	}
	return m.index.Tenants(u)
}

// Start implements modules.Starter.
func (m *Module) Start(ctx context.Context) error { return m.index.Start(ctx) }

// Ready implements modules.ReadinessChecker.
func (m *Module) Ready(ctx context.Context) error { return m.index.Ready(ctx) }

// Intercept takes GET get, list and watch of namespaces from Capsule users.
func (m *Module) Intercept(req modules.Request) http.Handler {
	if !isNamespaceRead(req) {
		return nil
	}
	// Who is a Capsule user is itself in the caches: until they are synced, nobody is answered.
	if !m.index.Synced() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.writeStatus(w, r, apierrors.NewServiceUnavailable("the tenant caches of the proxy are not synced yet"))
		})
	}
	if !m.index.CapsuleUser(req.User) {
		return nil
	}
	view := &callerView{index: m.index, user: req.User}
	switch req.Info.Verb {
	case "get":
		return withReceivedTimestamp(handlers.GetResource(view, m.scope))
	case "list":
		return withReceivedTimestamp(handlers.ListResource(view, view, m.scope, false, minWatchTimeout))
	default: // watch, including the legacy /api/v1/watch/namespaces paths, which carry no watch=true
		return withReceivedTimestamp(handlers.ListResource(view, view, m.scope, true, minWatchTimeout))
	}
}

// withReceivedTimestamp supplies what kube-apiserver's filter chain would: the handlers measure
// watch-list latency from it.
func withReceivedTimestamp(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := apirequest.ReceivedTimestampFrom(r.Context()); !ok {
			r = r.WithContext(apirequest.WithReceivedTimestamp(r.Context(), time.Now()))
		}
		next.ServeHTTP(w, r)
	})
}

// isNamespaceRead matches on the API server's own parse of the forwarded URL: core/v1 namespaces, the
// collection or one object, no subresource, read verbs, and only the GET method.
func isNamespaceRead(req modules.Request) bool {
	info := req.Info
	if req.HTTP.Method != http.MethodGet || info == nil || !info.IsResourceRequest {
		return false
	}
	if info.APIPrefix != "api" || info.APIGroup != "" || info.APIVersion != "v1" || info.Resource != "namespaces" || info.Subresource != "" {
		return false
	}
	switch info.Verb {
	case "get", "list", "watch":
		return true
	}
	return false
}

func (m *Module) writeStatus(w http.ResponseWriter, r *http.Request, err error) {
	responsewriters.ErrorNegotiated(err, codecs, m.scope.Kind.GroupVersion(), w, r)
}
