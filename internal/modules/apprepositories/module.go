// Package apprepositories serves Kubeapps' repository API: an external site (a registry such as Harbor)
// adds or removes a chart repository by creating or deleting an AppRepository. Everything is done as the
// caller, so the API server decides who may add repositories; the proxy only checks that the repository's
// index can be fetched (within the limits of helmrepo) before creating it.
package apprepositories

import (
	"context"
	"net/http"
	"os"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
	"github.com/tenant-proxy/tenant-proxy/internal/modules"
)

const (
	pathPrefix = "/api/backend/v1/"
	// defaultNamespace is Kubeapps' own namespace, used when the proxy does not run in a pod.
	defaultNamespace = "kubeapps"
	// inClusterNamespaceFile names the namespace of the pod's ServiceAccount.
	inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// Options configures the repository API.
type Options struct {
	// Namespace receives AppRepositories created without a namespace in the path. Empty: the namespace the
	// proxy runs in, or "kubeapps" outside a pod.
	Namespace string
}

// AddFlags registers the module's flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Namespace, "apprepositories-namespace", o.Namespace,
		"Namespace of AppRepositories created through /api/backend/v1/apprepositories (default: the proxy's own namespace in a pod, else kubeapps).")
}

func (o Options) namespace() string {
	if o.Namespace != "" {
		return o.Namespace
	}
	if data, err := os.ReadFile(inClusterNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(data)); ns != "" {
			return ns
		}
	}
	return defaultNamespace
}

// Module is the repository API.
type Module struct {
	base      *rest.Config
	fetcher   *helmrepo.Fetcher
	namespace string
	router    *mux.Router
	metrics   *metrics
}

var (
	_ modules.Module          = (*Module)(nil)
	_ modules.MetricsProvider = (*Module)(nil)
)

// New returns the module. base is the proxy's own configuration; the module only ever uses it to act as
// the caller (CallerConfig), so the proxy's ServiceAccount needs no permission on AppRepositories or Secrets.
func New(opts Options, base *rest.Config, fetcher *helmrepo.Fetcher) *Module {
	m := &Module{base: base, fetcher: fetcher, namespace: opts.namespace(), metrics: newMetrics()}
	r := mux.NewRouter()
	r.Methods(http.MethodPost).Path(pathPrefix + "apprepositories").HandlerFunc(m.serveCreate)
	r.Methods(http.MethodDelete).Path(pathPrefix + "apprepositories/{name}").HandlerFunc(m.serveDelete)
	r.Methods(http.MethodPost).Path(pathPrefix + "namespaces/{namespace}/apprepositories").HandlerFunc(m.serveCreate)
	r.Methods(http.MethodDelete).Path(pathPrefix + "namespaces/{namespace}/apprepositories/{name}").HandlerFunc(m.serveDelete)
	m.router = r
	return m
}

// Namespace is where AppRepositories go when the path names none.
func (m *Module) Namespace() string { return m.namespace }

func (m *Module) Name() string { return "apprepositories" }

// Collectors are the module's metrics.
func (m *Module) Collectors() []prometheus.Collector { return m.metrics.collectors() }

type callerKey struct{}

// Intercept takes the repository API's routes; a known path with another method gets 405.
func (m *Module) Intercept(req modules.Request) http.Handler {
	if !strings.HasPrefix(req.HTTP.URL.Path, pathPrefix) {
		return nil
	}
	var match mux.RouteMatch
	if !m.router.Match(req.HTTP, &match) {
		if match.MatchErr == mux.ErrMethodMismatch {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				writeError(w, http.StatusMethodNotAllowed, "method "+req.HTTP.Method+" is not allowed here")
			})
		}
		return nil
	}
	caller := req.User
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.router.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
	})
}

// target is the caller and namespace of a routed request; answered is the code when it already answered.
func (m *Module) target(w http.ResponseWriter, r *http.Request) (caller user.Info, namespace string, answered int) {
	caller, _ = r.Context().Value(callerKey{}).(user.Info)
	if caller == nil || caller.GetName() == "" {
		return nil, "", writeError(w, http.StatusUnauthorized, "Unauthorized")
	}
	namespace, named := mux.Vars(r)["namespace"]
	if !named {
		return caller, m.namespace, 0
	}
	if msg := invalidName(namespace); msg != "" {
		return nil, "", writeError(w, http.StatusBadRequest, "invalid namespace "+msg)
	}
	return caller, namespace, 0
}
