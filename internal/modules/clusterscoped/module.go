// Package clusterscoped serves GET list, get and watch of cluster-scoped resources (storage, ingress, priority
// and runtime classes, nodes, persistent volumes and Capsule's own Tenants) to tenant owners whose Tenant
// grants them List in owners[].proxySettings (or the legacy enable-*-listing annotations, which exist for
// nodes, storage and ingress classes only): each sees exactly the objects their tenants allow,
// in every format the API server offers. Owners granted Update or Delete may also write the objects of
// their tenants' allowed sets (writes.go: the proxy writes with its own credentials, within strict bounds).
// Everything else (other writes, subresources, callers without the grant) is forwarded as the caller, so
// plain RBAC decides.
package clusterscoped

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/endpoints/handlers"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// minWatchTimeout is kube-apiserver's default --min-request-timeout: watches without timeoutSeconds end
// after a random time between one and two of these.
const minWatchTimeout = 1800 * time.Second

// AllResources are the resources the module can filter.
var AllResources = []Resource{StorageClasses, IngressClasses, PriorityClasses, RuntimeClasses, Nodes, PersistentVolumes, Tenants}

// served is one filtered resource with its cache and request scope.
type served struct {
	resource Resource
	informer cache.SharedIndexInformer
	scope    *handlers.RequestScope
}

// Module is the cluster-scoped resources interceptor.
type Module struct {
	index     *tenants.Index
	factory   informers.SharedInformerFactory
	resources []*served
	upstream  *ProxyUpstream // nil: granted writes are forwarded as the caller too
	writes    *prometheus.CounterVec
}

var (
	_ modules.Module           = (*Module)(nil)
	_ modules.Starter          = (*Module)(nil)
	_ modules.ReadinessChecker = (*Module)(nil)
	_ modules.MetricsProvider  = (*Module)(nil)
)

// New returns the module for resources, read with client; index may be shared with other modules.
func New(index *tenants.Index, client kubernetes.Interface, resources ...Resource) *Module {
	m := &Module{index: index, factory: informers.NewSharedInformerFactory(client, 0), writes: newWriteMetrics()}
	for _, r := range resources {
		var informer cache.SharedIndexInformer
		if r.IndexInformer != nil {
			informer = r.IndexInformer(index)
		} else {
			informer = r.Informer(m.factory)
		}
		if informer == nil {
			// Only an index fed directly by a test has no informers; the resource is then not served.
			klog.InfoS("No cache for a cluster-scoped resource; not filtering it", "resource", r.Resource.String())
			continue
		}
		m.resources = append(m.resources, &served{resource: r, informer: informer, scope: newRequestScope(r)})
	}
	return m
}

func (m *Module) Name() string { return "clusterscoped" }

// Start implements modules.Starter.
func (m *Module) Start(ctx context.Context) error {
	if err := m.index.Start(ctx); err != nil {
		return fmt.Errorf("starting the tenant index: %w", err)
	}
	m.factory.Start(ctx.Done())
	return nil
}

// Ready implements modules.ReadinessChecker.
func (m *Module) Ready(ctx context.Context) error {
	if err := m.index.Ready(ctx); err != nil {
		return err
	}
	if !m.synced() {
		return errors.New("cluster-scoped resource caches are not synced yet")
	}
	return nil
}

func (m *Module) synced() bool {
	for _, s := range m.resources {
		if !s.informer.HasSynced() {
			return false
		}
	}
	return m.index.Synced()
}

// Intercept takes GET get, list and watch of the configured resources from tenant owners granted List,
// and PUT, PATCH and DELETE of one object from owners granted Update or Delete.
func (m *Module) Intercept(req modules.Request) http.Handler {
	if s, op := m.matchWrite(req); s != nil {
		return m.interceptWrite(req, s, op)
	}
	s := m.match(req)
	if s == nil {
		return nil
	}
	// Who is granted is itself in the caches: until they are synced, nobody is answered.
	if !m.synced() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := apierrors.NewServiceUnavailable("the caches of the proxy are not synced yet")
			responsewriters.ErrorNegotiated(err, codecs, s.scope.Kind.GroupVersion(), w, r)
		})
	}
	if !m.index.CapsuleUser(req.User) {
		return nil
	}
	selections := m.index.Selections(req.User, s.resource.Grant, tenants.List)
	if len(selections) == 0 {
		return nil // no tenant grants List: plain RBAC decides
	}
	granting := m.index.Granting(req.User, s.resource.Grant, tenants.List)
	view := &callerView{resource: s.resource, informer: s.informer, selections: selections, granted: func() bool {
		// The same tenants, with the same specs, as when the watch started: a revoked (or new) grant, or a
		// changed selector, ends it; the client's next watch is served with what holds then.
		return m.index.CapsuleUser(req.User) && maps.Equal(granting, m.index.Granting(req.User, s.resource.Grant, tenants.List))
	}}
	switch req.Info.Verb {
	case "get":
		return withReceivedTimestamp(handlers.GetResource(view, s.scope))
	case "list":
		return withReceivedTimestamp(handlers.ListResource(view, view, s.scope, false, minWatchTimeout))
	default: // watch, including the legacy /watch/ paths, which carry no watch=true
		return withReceivedTimestamp(handlers.ListResource(view, view, s.scope, true, minWatchTimeout))
	}
}

func (m *Module) interceptWrite(req modules.Request, s *served, op tenants.Operation) http.Handler {
	if !m.index.Synced() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := apierrors.NewServiceUnavailable("the caches of the proxy are not synced yet")
			responsewriters.ErrorNegotiated(err, codecs, s.scope.Kind.GroupVersion(), w, r)
		})
	}
	if !m.index.CapsuleUser(req.User) {
		return nil
	}
	selections := m.index.Selections(req.User, s.resource.Grant, op)
	if len(selections) == 0 {
		return nil // no tenant grants the operation: plain RBAC decides
	}
	return &grantedWrite{module: m, served: s, op: op, req: req, selections: selections}
}

// match finds the resource a request reads, on the API server's own parse of the forwarded URL:
// the collection or one object, cluster-scoped, no subresource, read verbs, and only the GET method.
func (m *Module) match(req modules.Request) *served {
	info := req.Info
	if req.HTTP.Method != http.MethodGet || info == nil || !info.IsResourceRequest || info.Namespace != "" || info.Subresource != "" {
		return nil
	}
	if info.Verb != "get" && info.Verb != "list" && info.Verb != "watch" {
		return nil
	}
	return m.find(info.APIPrefix, info.APIGroup, info.APIVersion, info.Resource)
}

// find is the served resource at a parsed API path, if any.
func (m *Module) find(apiPrefix, group, version, resource string) *served {
	for _, s := range m.resources {
		gvr := s.resource.Resource
		prefix := "apis"
		if gvr.Group == "" {
			prefix = "api"
		}
		if apiPrefix == prefix && group == gvr.Group && version == gvr.Version && resource == gvr.Resource {
			return s
		}
	}
	return nil
}

// withReceivedTimestamp supplies what kube-apiserver's filter chain would.
func withReceivedTimestamp(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := apirequest.ReceivedTimestampFrom(r.Context()); !ok {
			r = r.WithContext(apirequest.WithReceivedTimestamp(r.Context(), time.Now()))
		}
		next.ServeHTTP(w, r)
	})
}
