package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// The helm workloads' tenant: one namespace, owned by a User with a client certificate. It is not one of
// the scale fixture's tenants (t0000...), so the scale part's checks and counts do not include it.
const (
	helmTenantName = "helm-bench"
	helmNamespace  = "helm-bench-releases"
	helmOwnerName  = "owner-helm-bench"
)

// setUpHelmOwner writes the tenant as Capsule would (see tenancy.createTenant) and waits until RBAC lets
// its owner read release records (Secrets) in the namespace directly.
func setUpHelmOwner(ctx context.Context, c *testbed.Cluster) (identity, error) {
	ty, err := newTenancy(c)
	if err != nil {
		return identity{}, err
	}
	t := &benchTenant{name: helmTenantName, owner: helmOwnerName, namespaces: []string{helmNamespace},
		pool: "pool-helm", classGroup: "helm"}
	if err := ty.createTenant(ctx, t); err != nil {
		return identity{}, err
	}
	owner, err := ownerIdentity(c.CA, t)
	if err != nil {
		return identity{}, err
	}
	cs, err := kubernetes.NewForConfig(restConfig(c.URL, c.CA.CertPEM, owner.cred))
	if err != nil {
		return identity{}, fmt.Errorf("owner client: %w", err)
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = cs.CoreV1().Secrets(helmNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		return last == nil, nil
	})
	if err != nil {
		return identity{}, fmt.Errorf("%s cannot list Secrets in %s: %w (last error: %v)", owner.user, helmNamespace, err, last)
	}
	return owner, nil
}

// restGetter gives Helm clients built on one rest.Config (the owner's, against the API server), with one
// in-memory discovery cache. Helm's own getter reads kubeconfig files; this is the proxy's (package
// releases) without a file behind it.
type restGetter struct {
	config    *rest.Config
	namespace string

	once      sync.Once
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.ResettableRESTMapper
	err       error
}

func newRESTGetter(config *rest.Config, namespace string) *restGetter {
	return &restGetter{config: config, namespace: namespace}
}

func (g *restGetter) init() error {
	g.once.Do(func() {
		dc, err := discovery.NewDiscoveryClientForConfig(g.config)
		if err != nil {
			g.err = fmt.Errorf("discovery client: %w", err)
			return
		}
		g.discovery = memory.NewMemCacheClient(dc)
		g.mapper = restmapper.NewDeferredDiscoveryRESTMapper(g.discovery)
	})
	return g.err
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	if err := g.init(); err != nil {
		return nil, err
	}
	return g.discovery, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) {
	if err := g.init(); err != nil {
		return nil, err
	}
	return g.mapper, nil
}

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return namespaceOnly{g} }

// namespaceOnly is the kubeconfig loader Helm's factory asks for the default namespace; nothing else of it
// is used.
type namespaceOnly struct{ g *restGetter }

func (n namespaceOnly) RawConfig() (clientcmdapi.Config, error) { return clientcmdapi.Config{}, nil }
func (n namespaceOnly) ClientConfig() (*rest.Config, error)     { return n.g.ToRESTConfig() }
func (n namespaceOnly) Namespace() (string, bool, error)        { return n.g.namespace, true, nil }
func (n namespaceOnly) ConfigAccess() clientcmd.ConfigAccess    { return nil }
