// Package releases serves the Helm release API (the routes of Kubeapps' tiller-proxy) on the proxy's port:
// list, get, install, upgrade, roll back and delete Helm 4 releases. Every Kubernetes call of an operation,
// chart rendering with `lookup` included, is made as the caller (impersonation), with Helm's Secret storage
// in the release namespace, so the API server stays the final judge. Before acting, the complete rendered
// manifest is checked with SubjectAccessReview (package permissions), so that a caller missing a permission
// gets the full list of what is missing and nothing is half done.
package releases

import (
	"context"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/releases/permissions"
)

// ChartSource fetches a chart from a repository (helmrepo.Fetcher: bounded, digest-checked, private
// addresses refused unless allowed).
type ChartSource interface {
	Chart(ctx context.Context, repo helmrepo.Repository, name, version string) (*chart.Chart, error)
}

// AppRepositoryResolver reads an AppRepository and its credentials as the caller (callerConfig).
type AppRepositoryResolver func(ctx context.Context, callerConfig *rest.Config, namespace, name string) (helmrepo.Repository, error)

// namespaceIndex is the part of the tenant index listing reads.
type namespaceIndex interface {
	Synced() bool
	CapsuleUser(u user.Info) bool
	Namespaces(u user.Info) ([]*corev1.Namespace, uint64)
}

// Module is the release API.
type Module struct {
	opts        Options
	base        *rest.Config // the proxy's own configuration; used only impersonating the caller
	charts      ChartSource
	resolveRepo AppRepositoryResolver
	index       namespaceIndex
	reviewer    *permissions.Reviewer
	locks       *keyedMutex
	metrics     *metrics
	router      *mux.Router
}

var (
	_ modules.Module          = (*Module)(nil)
	_ modules.MetricsProvider = (*Module)(nil)
)

// New returns the release API. base is the proxy's own configuration: it creates SubjectAccessReviews
// with it and acts only impersonating the caller. index may be nil (no Capsule).
func New(opts Options, base *rest.Config, index namespaceIndex, charts ChartSource, resolveRepo AppRepositoryResolver) (*Module, error) {
	client, err := kubernetes.NewForConfig(base)
	if err != nil {
		return nil, err
	}
	if opts.ListMax <= 0 {
		opts.ListMax = NewOptions().ListMax
	}
	m := &Module{opts: opts, base: base, charts: charts, resolveRepo: resolveRepo, index: index,
		reviewer: permissions.NewReviewer(client.AuthorizationV1()), locks: newKeyedMutex(), metrics: newMetrics()}
	m.router = m.routes()
	return m, nil
}

func (m *Module) Name() string { return "releases" }

// Collectors implements modules.MetricsProvider.
func (m *Module) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.metrics.operations, m.metrics.duration}
}

func (m *Module) routes() *mux.Router {
	r := mux.NewRouter()
	r.HandleFunc("/v1/releases", m.listAll).Methods(http.MethodGet)
	r.HandleFunc("/v1/namespaces/{namespace}/releases", m.listNamespace).Methods(http.MethodGet)
	r.HandleFunc("/v1/namespaces/{namespace}/releases", m.install).Methods(http.MethodPost)
	r.HandleFunc("/v1/namespaces/{namespace}/releases/{release}", m.get).Methods(http.MethodGet)
	r.HandleFunc("/v1/namespaces/{namespace}/releases/{release}", m.upgradeOrRollback).Methods(http.MethodPut)
	r.HandleFunc("/v1/namespaces/{namespace}/releases/{release}", m.uninstall).Methods(http.MethodDelete)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError(http.StatusMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
	})
	return r
}

// Intercept takes the release API's paths (non-resource requests under /v1/); everything else, other /v1/
// paths included, goes on to the API server.
func (m *Module) Intercept(req modules.Request) http.Handler {
	if req.Info == nil || req.Info.IsResourceRequest || !strings.HasPrefix(req.HTTP.URL.Path, "/v1/") {
		return nil
	}
	var match mux.RouteMatch
	if !m.router.Match(req.HTTP, &match) && match.MatchErr != mux.ErrMethodMismatch {
		return nil
	}
	caller := req.User
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.router.ServeHTTP(w, r.WithContext(withCaller(r.Context(), caller)))
	})
}

type callerKey struct{}

func withCaller(ctx context.Context, u user.Info) context.Context {
	return context.WithValue(ctx, callerKey{}, u)
}

func callerFrom(ctx context.Context) user.Info {
	u, _ := ctx.Value(callerKey{}).(user.Info)
	return u
}
