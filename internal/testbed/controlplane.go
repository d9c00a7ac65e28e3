package testbed

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// auditPolicy logs every request with its metadata and request body (level Request). Without the RequestReceived
// stage a request appears once, at ResponseComplete (watches also at ResponseStarted).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Request
`

func (c *Cluster) startEtcd(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	p, err := c.start("etcd", "etcd", []string{
		"--name=testbed",
		"--data-dir=" + filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=testbed=" + peer,
		"--unsafe-no-fsync", // test data need not survive a power cut
		"--log-level=warn",
	}, nil)
	if err != nil {
		return err
	}
	c.EtcdURL = client
	return waitFor(ctx, p, "etcd health", func(ctx context.Context) (bool, error) {
		var health struct{ Health string }
		if err := getJSON(ctx, http.DefaultClient, client+"/health", &health); err != nil {
			return false, err
		}
		return health.Health == "true", nil
	})
}

// apiServerFlags writes every certificate, key and config file kube-apiserver needs and returns its flags.
func (c *Cluster) apiServerFlags(port int) ([]string, error) {
	pki := filepath.Join(c.Dir, "pki")
	serving := filepath.Join(pki, "apiserver")
	kubeletClient := filepath.Join(pki, "apiserver-kubelet-client")
	proxyClient := filepath.Join(pki, "front-proxy-client")
	pairs := []struct {
		base  string
		issue func() ([]byte, []byte, error)
	}{
		{serving, func() ([]byte, []byte, error) {
			return c.CA.IssueServingCert("127.0.0.1", "localhost", "10.0.0.1", "kubernetes", "kubernetes.default",
				"kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
		}},
		{kubeletClient, func() ([]byte, []byte, error) {
			return c.CA.IssueClientCert("kube-apiserver-kubelet-client", "system:masters")
		}},
		{proxyClient, func() ([]byte, []byte, error) { return c.FrontProxyCA.IssueClientCert("front-proxy-client") }},
	}
	for _, pair := range pairs {
		certPEM, keyPEM, err := pair.issue()
		if err != nil {
			return nil, err
		}
		if err := writePair(pair.base, certPEM, keyPEM); err != nil {
			return nil, err
		}
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate service account key: %w", err)
	}
	saKeyPEM, err := encodeKey(saKey)
	if err != nil {
		return nil, err
	}
	c.saKeyFile = filepath.Join(pki, "sa.key")
	auditPolicyFile := filepath.Join(c.Dir, "audit-policy.yaml")
	authnFile := filepath.Join(c.Dir, "authentication-config.yaml")
	authn, err := c.authenticationConfig()
	if err != nil {
		return nil, err
	}
	for path, data := range map[string][]byte{c.saKeyFile: saKeyPEM, auditPolicyFile: []byte(auditPolicy), authnFile: authn} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	c.AuditLog = filepath.Join(c.Dir, "apiserver-audit.log")
	return []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", // the lease reconciler refuses a loopback address; nothing reads the endpoints
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver"),
		"--etcd-servers=" + c.EtcdURL,
		"--tls-cert-file=" + serving + ".crt",
		"--tls-private-key-file=" + serving + ".key",
		"--client-ca-file=" + c.CAFile,
		"--service-account-key-file=" + c.saKeyFile,
		"--service-account-signing-key-file=" + c.saKeyFile,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--authorization-mode=Node,RBAC",
		"--authentication-config=" + authnFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--kubelet-client-certificate=" + kubeletClient + ".crt",
		"--kubelet-client-key=" + kubeletClient + ".key",
		"--kubelet-certificate-authority=" + c.CAFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--requestheader-client-ca-file=" + c.FrontProxyCAFile,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-uid-headers=X-Remote-Uid", // so that a front proxy can pass ServiceAccounts' UIDs
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + proxyClient + ".crt",
		"--proxy-client-key-file=" + proxyClient + ".key",
		"--audit-log-path=" + c.AuditLog,
		"--audit-policy-file=" + auditPolicyFile,
		"--audit-log-format=json",
		"--audit-log-mode=blocking", // events are on disk when the response is, so tests can read them at once
	}, nil
}

// authenticationConfig trusts the loopback OIDC issuer. JSON is valid YAML, which the API server expects.
func (c *Cluster) authenticationConfig() ([]byte, error) {
	caPEM, err := os.ReadFile(c.OIDC.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read OIDC CA: %w", err)
	}
	return json.MarshalIndent(map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "AuthenticationConfiguration",
		"jwt": []any{map[string]any{
			"issuer": map[string]any{
				"url":                  c.OIDC.URL,
				"audiences":            []string{c.OIDC.ClientID},
				"certificateAuthority": string(caPEM),
			},
			"claimMappings": map[string]any{
				"username": map[string]any{"claim": c.OIDC.UsernameClaim, "prefix": c.OIDC.UsernamePrefix},
				"groups":   map[string]any{"claim": c.OIDC.GroupsClaim, "prefix": c.OIDC.GroupsPrefix},
			},
		}},
	}, "", "  ")
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	args, err := c.apiServerFlags(ports[0])
	if err != nil {
		return err
	}
	p, err := c.start("kube-apiserver", "kube-apiserver", args, nil)
	if err != nil {
		return err
	}
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	if err := c.initAdmin(); err != nil {
		return err
	}
	return waitFor(ctx, p, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		_, err := c.AdminClient.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
}

func (c *Cluster) startControllerManager(context.Context) error {
	kubeconfig := filepath.Join(c.Dir, "kube-controller-manager.kubeconfig")
	certPEM, keyPEM, err := c.CA.IssueClientCert("system:kube-controller-manager")
	if err != nil {
		return err
	}
	if err := c.WriteKubeconfig(kubeconfig, c.URL, c.CAFile, "system:kube-controller-manager", certPEM, keyPEM, ""); err != nil {
		return err
	}
	_, err = c.start("kube-controller-manager", "kube-controller-manager", []string{
		"--kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0", // nothing needs its metrics or health endpoints
		"--leader-elect=false",
		"--use-service-account-credentials",
		"--service-account-private-key-file=" + c.saKeyFile,
		"--root-ca-file=" + c.CAFile,
		"--cluster-signing-cert-file=" + c.CAFile,
		"--cluster-signing-key-file=" + filepath.Join(c.Dir, "pki", "ca.key"),
	}, nil)
	return err
}

// waitControllerManager waits until the clusterrole-aggregation controller has filled ClusterRole admin,
// which Capsule binds tenant owners to.
func (c *Cluster) waitControllerManager(ctx context.Context) error {
	return waitFor(ctx, c.proc("kube-controller-manager"), "aggregated ClusterRole admin", func(ctx context.Context) (bool, error) {
		role, err := c.AdminClient.RbacV1().ClusterRoles().Get(ctx, "admin", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && len(role.Rules) > 0, err
	})
}

// writePair writes base.crt and base.key.
func writePair(base string, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(base+".crt", certPEM, 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(base+".key", keyPEM, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
