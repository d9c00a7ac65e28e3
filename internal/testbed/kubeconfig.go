package testbed

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes a kubeconfig for server that authenticates user with the client certificate
// certPEM/keyPEM or, when they are empty, with the bearer token. caFile is embedded, not referenced, so the file
// stays valid when it is copied.
func (c *Cluster) WriteKubeconfig(path, server, caFile string, user string, certPEM, keyPEM []byte, token string) error {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: read CA: %w", path, err)
	}
	auth := &clientcmdapi.AuthInfo{Token: token}
	if len(certPEM) > 0 {
		auth = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testbed"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = auth
	cfg.Contexts["testbed"] = &clientcmdapi.Context{Cluster: "testbed", AuthInfo: user}
	cfg.CurrentContext = "testbed"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// UserConfig returns a rest.Config for the API server authenticating with a client certificate.
func (c *Cluster) UserConfig(user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := c.CA.IssueClientCert(user, groups...)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: c.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.CA.CertPEM,
			CertData: certPEM,
			KeyData:  keyPEM,
		},
		QPS:   100,
		Burst: 200,
	}, nil
}

// TokenConfig returns a rest.Config for the API server authenticating with a bearer token
// (a ServiceAccount token or an OIDC ID token).
func (c *Cluster) TokenConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            c.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CA.CertPEM},
		BearerToken:     token,
		QPS:             100,
		Burst:           200,
	}
}
