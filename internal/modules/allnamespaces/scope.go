package allnamespaces

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
)

// minRefresh bounds how often a miss (an unknown resource) makes the proxy re-read discovery: a caller
// asking for made-up resources cannot turn every request into a full discovery round.
const minRefresh = 10 * time.Second

// scoper tells whether a resource is namespaced.
type scoper interface {
	Namespaced(gvr schema.GroupVersionResource) bool
}

// discoveryScope answers from the API server's discovery, cached in memory and re-read on a miss.
type discoveryScope struct {
	mu          sync.Mutex
	mapper      *restmapper.DeferredDiscoveryRESTMapper
	err         error
	lastRefresh time.Time
}

func newDiscoveryScope(cfg *rest.Config) *discoveryScope {
	client, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return &discoveryScope{err: err}
	}
	// Fresh always: the mapper never resets on its own; Namespaced decides when a miss re-reads discovery.
	return &discoveryScope{mapper: restmapper.NewDeferredDiscoveryRESTMapper(alwaysFresh{memory.NewMemCacheClient(client)}),
		lastRefresh: time.Now()}
}

type alwaysFresh struct {
	discovery.CachedDiscoveryInterface
}

func (alwaysFresh) Fresh() bool { return true }

// Namespaced reports whether discovery lists gvr as namespaced. Unknown resources, cluster-scoped ones and
// discovery errors are all "no": the request is then forwarded unchanged, as the caller.
func (s *discoveryScope) Namespaced(gvr schema.GroupVersionResource) bool {
	if s.err != nil {
		klog.V(2).InfoS("discovery client unavailable", "err", s.err)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	namespaced, err := s.lookup(gvr)
	if err != nil && time.Since(s.lastRefresh) >= minRefresh {
		s.mapper.Reset()
		s.lastRefresh = time.Now()
		namespaced, err = s.lookup(gvr)
	}
	if err != nil {
		klog.V(4).InfoS("resource not found in discovery", "resource", gvr.String(), "err", err)
		return false
	}
	return namespaced
}

func (s *discoveryScope) lookup(gvr schema.GroupVersionResource) (bool, error) {
	gvk, err := s.mapper.KindFor(gvr)
	if err != nil {
		return false, err
	}
	mapping, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, err
	}
	// Only the exact plural resource: a singular or short name is the API server's to answer (a 404).
	return mapping.Resource == gvr && mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}
