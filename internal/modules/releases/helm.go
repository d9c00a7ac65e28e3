package releases

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// helmDriver is Helm's default storage: release records are Secrets in the release namespace.
const helmDriver = "secret"

// clientGetter gives Helm clients built on one rest.Config (the caller's), with one discovery cache for the
// request. Helm's own getter reads kubeconfig files; the proxy has only a rest.Config per caller.
type clientGetter struct {
	config    *rest.Config
	namespace string

	once      sync.Once
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.ResettableRESTMapper
	err       error
}

func newClientGetter(config *rest.Config, namespace string) *clientGetter {
	return &clientGetter{config: config, namespace: namespace}
}

// NewRESTClientGetter is the same getter for other Helm SDK callers (the benchmark's direct side), so
// that both sides of a comparison build their Helm clients the same way.
func NewRESTClientGetter(config *rest.Config, namespace string) genericclioptions.RESTClientGetter {
	return newClientGetter(config, namespace)
}

func (g *clientGetter) init() error {
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

func (g *clientGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

func (g *clientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	if err := g.init(); err != nil {
		return nil, err
	}
	return g.discovery, nil
}

func (g *clientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	if err := g.init(); err != nil {
		return nil, err
	}
	return g.mapper, nil
}

func (g *clientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return namespaceOnly{g} }

// namespaceOnly is the kubeconfig loader Helm's factory asks for the default namespace; nothing else of it
// is used, and it has no file behind it.
type namespaceOnly struct{ g *clientGetter }

func (n namespaceOnly) RawConfig() (clientcmdapi.Config, error) { return clientcmdapi.Config{}, nil }
func (n namespaceOnly) ClientConfig() (*rest.Config, error)     { return n.g.ToRESTConfig() }
func (n namespaceOnly) Namespace() (string, bool, error)        { return n.g.namespace, true, nil }
func (n namespaceOnly) ConfigAccess() clientcmd.ConfigAccess    { return nil }

// actionConfig is a Helm action configuration acting through g, with the Secret storage in namespace ("" =
// every namespace, for listing). Helm's logs go nowhere: they may quote values, which can hold credentials.
func actionConfig(g *clientGetter, namespace string) (*action.Configuration, error) {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	if err := cfg.Init(g, namespace, helmDriver); err != nil {
		return nil, fmt.Errorf("helm configuration: %w", err)
	}
	return cfg, nil
}

// capabilities are the cluster's version and API versions as the caller's discovery reports them, so a
// render without the cluster sees what the real one will.
func capabilities(ctx context.Context, g *clientGetter) (*common.KubeVersion, common.VersionSet, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return nil, nil, fmt.Errorf("server version: %w", err)
	}
	versions, err := action.GetVersionSet(dc)
	if err != nil {
		return nil, nil, err
	}
	return &common.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor}, versions, nil
}
