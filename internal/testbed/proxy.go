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
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tenant-proxy/tenant-proxy/internal/chart"
)

// Proxy is a tenant-proxy process running against the cluster as its own ServiceAccount, with the least
// privilege it needs (impersonation and reviews): the Helm chart's ClusterRole.
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

// proxyClusterRole is the chart's ClusterRole, rendered as `helm template` renders it with
// rbac.clusterScopedWrites (the suite tests granted writes), so the test bed grants exactly what the chart
// does and the two cannot drift apart.
func proxyClusterRole(ctx context.Context) (*rbacv1.ClusterRole, error) {
	dir, err := chart.Dir()
	if err != nil {
		return nil, err
	}
	manifest, err := chart.Render(ctx, dir, chart.Options{Namespace: ProxyNamespace,
		Values: map[string]any{"rbac": map[string]any{"clusterScopedWrites": true}}})
	if err != nil {
		return nil, err
	}
	objs, err := chart.Decode(manifest)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		var rendered rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &rendered); err != nil {
			return nil, fmt.Errorf("chart ClusterRole: %w", err)
		}
		return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "tenant-proxy"}, Rules: rendered.Rules}, nil
	}
	return nil, fmt.Errorf("the chart renders no ClusterRole")
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
	role, err := proxyClusterRole(ctx)
	if err != nil {
		return "", err
	}
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
