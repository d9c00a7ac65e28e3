package testbed

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// initPKI creates both CAs, writes them to Dir/pki and starts the OIDC issuer, which the API server
// must reach from its first request on.
func (c *Cluster) initPKI(context.Context) error {
	var err error
	if c.CA, err = NewCA("testbed-ca"); err != nil {
		return err
	}
	if c.FrontProxyCA, err = NewCA("testbed-front-proxy-ca"); err != nil {
		return err
	}
	pki := filepath.Join(c.Dir, "pki")
	if err := writePair(filepath.Join(pki, "ca"), c.CA.CertPEM, c.CA.KeyPEM); err != nil {
		return err
	}
	if err := writePair(filepath.Join(pki, "front-proxy-ca"), c.FrontProxyCA.CertPEM, c.FrontProxyCA.KeyPEM); err != nil {
		return err
	}
	c.CAFile = filepath.Join(pki, "ca.crt")
	c.FrontProxyCAFile = filepath.Join(pki, "front-proxy-ca.crt")
	c.OIDC, err = startOIDCIssuer(c.CA, c.CAFile)
	return err
}

// initAdmin sets up the system:masters identity: rest.Config, clientset, kubeconfig and the applier.
func (c *Cluster) initAdmin() error {
	admin, err := c.UserConfig("testbed-admin", "system:masters")
	if err != nil {
		return err
	}
	c.Admin = admin
	if c.AdminClient, err = kubernetes.NewForConfig(admin); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	c.AdminKubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := c.WriteKubeconfig(c.AdminKubeconfig, c.URL, c.CAFile, "testbed-admin", admin.CertData, admin.KeyData, ""); err != nil {
		return err
	}
	c.applier, err = newApplier(c)
	return err
}

// waitOIDC waits until the API server has fetched the issuer's keys and accepts its tokens.
func (c *Cluster) waitOIDC(ctx context.Context) error {
	token, err := c.OIDC.Token("testbed-probe", nil, time.Minute)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(c.TokenConfig(token))
	if err != nil {
		return fmt.Errorf("OIDC client: %w", err)
	}
	return waitFor(ctx, c.proc("kube-apiserver"), "an OIDC token to be accepted", func(ctx context.Context) (bool, error) {
		_, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err == nil, err
	})
}
