package webserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// upstreamFrontProxy follows the API server's front-proxy configuration, which it publishes in
// kube-system/extension-apiserver-authentication: the header names to send identity in, and the CA and names
// it accepts a front proxy's certificate from (to tell, at readiness, whether ours will be accepted).
type upstreamFrontProxy struct {
	certFile, keyFile string
	headers           *headerrequest.RequestHeaderAuthRequestController
	ca                *dynamiccertificates.ConfigMapCAController
}

const (
	authenticationConfigMapNamespace = "kube-system"
	authenticationConfigMapName      = "extension-apiserver-authentication"
)

func newUpstreamFrontProxy(client kubernetes.Interface, certFile, keyFile string) (*upstreamFrontProxy, error) {
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return nil, fmt.Errorf("--upstream-front-proxy-cert-file/--upstream-front-proxy-key-file: %w", err)
	}
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("upstream-requestheader-ca",
		authenticationConfigMapNamespace, authenticationConfigMapName, "requestheader-client-ca-file", client)
	if err != nil {
		return nil, fmt.Errorf("API server's front-proxy CA: %w", err)
	}
	headers := headerrequest.NewRequestHeaderAuthRequestController(authenticationConfigMapName, authenticationConfigMapNamespace, client,
		"requestheader-username-headers", "requestheader-uid-headers", "requestheader-group-headers",
		"requestheader-extra-headers-prefix", "requestheader-allowed-names")
	return &upstreamFrontProxy{certFile: certFile, keyFile: keyFile, headers: headers, ca: ca}, nil
}

// run reads the configuration once, then follows it.
func (u *upstreamFrontProxy) run(ctx context.Context) {
	if err := errors.Join(u.headers.RunOnce(ctx), u.ca.RunOnce(ctx)); err != nil {
		klog.ErrorS(err, "reading the API server's front-proxy configuration; retrying in the background")
	}
	go u.ca.Run(ctx, 1)
	u.headers.Run(ctx, 1)
}

// check fails unless the API server reads front-proxy headers and would accept our certificate: signed by
// its requestheader CA for client auth, with an allowed common name. Until then /readyz fails, so that a
// misconfigured proxy takes no traffic (the API server would treat every request as anonymous).
func (u *upstreamFrontProxy) check() error {
	if len(u.headers.UsernameHeaders()) == 0 {
		return errors.New("the API server publishes no --requestheader-username-headers")
	}
	pair, err := tls.LoadX509KeyPair(u.certFile, u.keyFile)
	if err != nil {
		return fmt.Errorf("front-proxy certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("front-proxy certificate: %w", err)
	}
	opts, ok := u.ca.VerifyOptions()
	if !ok {
		return errors.New("the API server publishes no --requestheader-client-ca-file")
	}
	opts.Intermediates = x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			opts.Intermediates.AddCert(c)
		}
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("the API server's requestheader CA does not accept the front-proxy certificate: %w", err)
	}
	if names := u.headers.AllowedClientNames(); len(names) > 0 && !slices.Contains(names, leaf.Subject.CommonName) {
		return fmt.Errorf("the front-proxy certificate's name %q is not in the API server's --requestheader-allowed-names %v", leaf.Subject.CommonName, names)
	}
	return nil
}
