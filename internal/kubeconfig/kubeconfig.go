// Package kubeconfig makes the kubeconfig context that sends a user's own credentials to tenant-proxy instead of
// the API server: the same user entry, a cluster that is the proxy (with the proxy's CA), and a context joining them.
package kubeconfig

import (
	"errors"
	"fmt"
	"net/url"

	"k8s.io/apimachinery/pkg/api/equality"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultContextName names the cluster and context that point at the proxy.
const DefaultContextName = "tenant-proxy"

// Target describes the proxy and which identity of the source kubeconfig to use with it.
type Target struct {
	Server        string // https URL of the proxy
	CAData        []byte // PEM of the CA that signed the proxy's serving certificate; empty means the system roots
	TLSServerName string // name to verify the proxy's certificate against, if not the Server's host
	Context       string // source context whose user (and namespace) to take; empty means the current context
	User          string // source user to take instead of the context's
	ContextName   string // name of the new cluster and context; empty means DefaultContextName
}

// ForProxy returns a self-contained kubeconfig with one cluster and one context named t.ContextName, and the
// chosen user of src under its own name (so that merging it back into src reuses the existing entry).
func ForProxy(src *clientcmdapi.Config, t Target) (*clientcmdapi.Config, error) {
	if err := checkServer(t.Server); err != nil {
		return nil, err
	}
	name := t.ContextName
	if name == "" {
		name = DefaultContextName
	}
	ctxName := t.Context
	if ctxName == "" {
		ctxName = src.CurrentContext
	}
	var namespace string
	userName := t.User
	if ctxName != "" || userName == "" {
		srcCtx, ok := src.Contexts[ctxName]
		if !ok {
			if ctxName == "" {
				return nil, errors.New("kubeconfig: no current context; name one with --context or a user with --user")
			}
			return nil, fmt.Errorf("kubeconfig: context %q not found", ctxName)
		}
		namespace = srcCtx.Namespace
		if userName == "" {
			userName = srcCtx.AuthInfo
		}
	}
	user, ok := src.AuthInfos[userName]
	if !ok {
		return nil, fmt.Errorf("kubeconfig: user %q not found", userName)
	}

	out := clientcmdapi.NewConfig()
	out.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   t.Server,
		CertificateAuthorityData: t.CAData,
		TLSServerName:            t.TLSServerName,
	}
	out.AuthInfos[userName] = user.DeepCopy()
	out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: userName, Namespace: namespace}
	out.CurrentContext = name
	return out, nil
}

// checkServer accepts only https URLs: the proxy always serves TLS, and credentials must never go out in clear.
func checkServer(server string) error {
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("kubeconfig: server %q: %w", server, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("kubeconfig: server %q must be an https:// URL", server)
	}
	return nil
}

// Merge adds the clusters, users and contexts of add to dst. Entries of add replace clusters and contexts of the
// same name (so running the command again updates them); every other entry of dst stays. A user of the same name
// must be identical: silently replacing someone's credentials is never right. With setCurrent, add's current
// context becomes dst's.
func Merge(dst, add *clientcmdapi.Config, setCurrent bool) error {
	for name, user := range add.AuthInfos {
		if have, ok := dst.AuthInfos[name]; ok && !sameUser(have, user) {
			return fmt.Errorf("kubeconfig: user %q already exists with other credentials", name)
		}
	}
	for name, user := range add.AuthInfos {
		if _, ok := dst.AuthInfos[name]; !ok {
			dst.AuthInfos[name] = user.DeepCopy()
		}
	}
	for name, cluster := range add.Clusters {
		dst.Clusters[name] = cluster.DeepCopy()
	}
	for name, ctx := range add.Contexts {
		dst.Contexts[name] = ctx.DeepCopy()
	}
	if setCurrent || dst.CurrentContext == "" {
		dst.CurrentContext = add.CurrentContext
	}
	return nil
}

// sameUser compares credentials, not where they were read from.
func sameUser(a, b *clientcmdapi.AuthInfo) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	a.LocationOfOrigin, b.LocationOfOrigin = "", ""
	return equality.Semantic.DeepEqual(a, b)
}
