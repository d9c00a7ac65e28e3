package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Proxy is a tenant-proxy process running against the cluster as its own ServiceAccount, with the least
// privilege it needs (impersonation and reviews), exactly as the Helm chart deploys it.
type Proxy struct {
	URL        string // https://127.0.0.1:<port>
	CAFile     string // CA of the proxy's serving certificate (the cluster CA)
	MetricsURL string // http://127.0.0.1:<port>
	LogPath    string // everything the proxy printed
	AuditPath  string // the proxy's audit log
	process    *process
}

// ProxyNamespace and ProxyServiceAccount are the proxy's own identity in the test bed.
const (
	ProxyNamespace      = "tenant-proxy-system"
	ProxyServiceAccount = "tenant-proxy"
)

// proxyClusterRole is the proxy's least privilege, the chart's default ClusterRole: impersonate callers,
// review their credentials and permissions, and read the cluster's client CA. Wildcards only in the
// impersonate-on rules, which name the requests a constrained impersonation may make (all of them: the proxy
// forwards any request as its caller). The only writes are the granted Update and Delete of nodes and
// classes for tenant owners (the chart's rbac.clusterScopedWrites), which the proxy performs with its own
// identity.
var proxyClusterRole = []rbacv1.PolicyRule{
	// Users are impersonated in constrained mode "user-info" only; ServiceAccounts in legacy mode, by name,
	// UID and extras (their groups are left to the API server).
	{APIGroups: []string{"authentication.k8s.io"}, Resources: append([]string{"users", "groups", "uids"}, impersonatedUserExtras...), Verbs: []string{"impersonate:user-info"}},
	{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: impersonateOnResourceVerbs},
	{NonResourceURLs: []string{"*"}, Verbs: impersonateOnNonResourceVerbs},
	{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}},
	{APIGroups: []string{"authentication.k8s.io"}, Resources: append([]string{"uids"}, impersonatedUserExtras...), Verbs: []string{"impersonate"}},
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	// The tenant index: namespaces and Capsule's tenancy, read only.
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"capsule.clastix.io"}, Resources: []string{"tenants"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"capsule.clastix.io"}, Resources: []string{"capsuleconfigurations"}, ResourceNames: []string{"default"}, Verbs: []string{"list", "watch"}},
	// The cluster-scoped resources filtered per tenant, read only.
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingressclasses"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"scheduling.k8s.io"}, Resources: []string{"priorityclasses"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{"node.k8s.io"}, Resources: []string{"runtimeclasses"}, Verbs: []string{"list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"list", "watch"}},
	// Granted Update/Delete by tenant owners: a live get, then update/patch/delete of the object itself
	// (no subresources, no create, no deletecollection).
	{APIGroups: []string{""}, Resources: []string{"nodes", "persistentvolumes"}, Verbs: []string{"get", "update", "patch", "delete"}},
	{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"get", "update", "patch", "delete"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingressclasses"}, Verbs: []string{"get", "update", "patch", "delete"}},
	{APIGroups: []string{"scheduling.k8s.io"}, Resources: []string{"priorityclasses"}, Verbs: []string{"get", "update", "patch", "delete"}},
	{APIGroups: []string{"node.k8s.io"}, Resources: []string{"runtimeclasses"}, Verbs: []string{"get", "update", "patch", "delete"}},
}

// impersonatedUserExtras are the chart's default rbac.impersonateUserExtras.
var impersonatedUserExtras = []string{"userextras/scopes", "userextras/authentication.kubernetes.io/credential-id",
	"userextras/authentication.kubernetes.io/node-name", "userextras/authentication.kubernetes.io/node-uid",
	"userextras/authentication.kubernetes.io/pod-name", "userextras/authentication.kubernetes.io/pod-uid"}

// impersonateOnResourceVerbs and impersonateOnNonResourceVerbs are the request verbs (RequestInfoFactory's;
// the lower-case HTTP method of a non-resource request) a caller impersonated in mode user-info may use: all.
var (
	impersonateOnResourceVerbs    = impersonateOn("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy")
	impersonateOnNonResourceVerbs = impersonateOn("get", "head", "options", "post", "put", "patch", "delete")
)

func impersonateOn(verbs ...string) []string {
	out := make([]string, len(verbs))
	for i, v := range verbs {
		out[i] = "impersonate-on:user-info:" + v
	}
	return out
}

// StartProxy runs the tenant-proxy binary with extra flags and returns once /readyz answers ok.
func (c *Cluster) StartProxy(ctx context.Context, binary, name string, extraArgs ...string) (*Proxy, error) {
	token, err := c.proxyIdentity(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("proxy dir: %w", err)
	}
	kubeconfig := filepath.Join(dir, "upstream.kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig, c.URL, c.CAFile, ProxyServiceAccount, nil, nil, token); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := c.CA.IssueServingCert("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	if err := writePair(filepath.Join(dir, "serving"), certPEM, keyPEM); err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		URL:        "https://127.0.0.1:" + strconv.Itoa(ports[0]),
		CAFile:     c.CAFile,
		MetricsURL: "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		LogPath:    filepath.Join(dir, name+".log"),
		AuditPath:  filepath.Join(dir, "audit.log"),
	}
	args := append([]string{"serve",
		"--kubeconfig", kubeconfig,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[0]),
		"--tls-cert-file", filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file", filepath.Join(dir, "serving.key"),
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--audit-log-path", p.AuditPath,
	}, extraArgs...)
	p.process, err = startProcess(dir, name, binary, args, nil)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	c.logf("%s ready at %s", name, p.URL)
	return p, nil
}

// UpstreamFrontProxyArgs issues a client certificate that the API server accepts from a front proxy
// (signed by FrontProxyCA, with the allowed name) and returns the flags with which a proxy sends callers'
// identity upstream as front-proxy headers over it instead of impersonating them.
func (c *Cluster) UpstreamFrontProxyArgs(name string) ([]string, error) {
	certPEM, keyPEM, err := c.FrontProxyCA.IssueClientCert("front-proxy-client")
	if err != nil {
		return nil, err
	}
	base := filepath.Join(c.Dir, "pki", name+"-upstream-front-proxy")
	if err := writePair(base, certPEM, keyPEM); err != nil {
		return nil, err
	}
	return []string{"--upstream-front-proxy-cert-file", base + ".crt", "--upstream-front-proxy-key-file", base + ".key"}, nil
}

// proxyIdentity creates the proxy's ServiceAccount and RBAC and returns a token for it.
func (c *Cluster) proxyIdentity(ctx context.Context) (string, error) {
	client := c.AdminClient
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "tenant-proxy"}, Rules: proxyClusterRole}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("proxy ClusterRole: %w", err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ProxyServiceAccount, Namespace: ProxyNamespace}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-proxy"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "tenant-proxy"},
		Subjects:   subject,
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("proxy ClusterRoleBinding: %w", err)
	}
	// Reading the cluster's client CA uses the role kube-apiserver itself maintains for that purpose.
	reader := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-proxy-authentication-reader", Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   subject,
	}
	if _, err := client.RbacV1().RoleBindings("kube-system").Create(ctx, reader, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("proxy authentication reader binding: %w", err)
	}
	return c.ServiceAccountToken(ctx, ProxyNamespace, ProxyServiceAccount, 24*time.Hour)
}

func (p *Proxy) waitReady(ctx context.Context) error {
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(caPEM)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return waitFor(ctx, p.process, "tenant-proxy /readyz", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/readyz", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Stop ends the proxy process.
func (p *Proxy) Stop() {
	if p.process != nil {
		p.process.stop()
	}
}

// PID is the proxy's process id (for CPU and memory measurements).
func (p *Proxy) PID() int { return p.process.cmd.Process.Pid }

// PID returns the process id of a running component ("kube-apiserver", "etcd", ...), or 0.
func (c *Cluster) PID(component string) int {
	if p := c.proc(component); p != nil && p.cmd.Process != nil {
		return p.cmd.Process.Pid
	}
	return 0
}
