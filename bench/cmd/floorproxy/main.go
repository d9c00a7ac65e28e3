// Command floorproxy is the least a Go proxy in tenant-proxy's place must do, for `bench -floor`: terminate
// TLS (client certificates verified in the handshake), find the caller (the certificate's subject, or one
// TokenReview per bearer token, kept for the process's life), and forward the request to the API server
// with httputil.ReverseProxy over client-go's HTTP/2 transport, impersonating the caller exactly as
// tenant-proxy does. It has no filter chain, request parsing, modules, audit log, metrics or review limits,
// and is not safe to run anywhere but the benchmark's loopback: it measures the floor of the hop, the cost
// that no change to tenant-proxy's own code can remove.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenant-proxy/tenant-proxy/internal/webserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floorproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "serve" { // started like tenant-proxy (testbed.StartProxy)
		args = args[1:]
	}
	fs := flag.NewFlagSet("floorproxy", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "the proxy's credentials for the API server")
	bind := fs.String("bind-address", "127.0.0.1", "listen address")
	port := fs.String("secure-port", "", "listen port")
	certFile := fs.String("tls-cert-file", "", "serving certificate")
	keyFile := fs.String("tls-private-key-file", "", "serving key")
	clientCA := fs.String("client-ca-file", "", "CA of client certificates")
	fs.String("metrics-bind-address", "", "ignored: the floor has no metrics")
	fs.String("audit-log-path", "", "ignored: the floor has no audit log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The same runtime settings as tenant-proxy's (cmd/tenant-proxy tuneRuntime; bench builds the floor with
	// tenant-proxy's linker flags, which set the runtime's GODEBUG default), so that the difference is code,
	// not tuning.
	runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/4))
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(96 << 20)

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling of the token reviews
	upstream, err := url.Parse(cfg.Host)
	if err != nil {
		return fmt.Errorf("API server URL: %w", err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return fmt.Errorf("upstream transport: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	caPEM, err := os.ReadFile(*clientCA)
	if err != nil {
		return fmt.Errorf("client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("client CA: no certificate")
	}
	serving, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}

	p := &floor{reviews: client.AuthenticationV1().TokenReviews()}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = upstream.Host
		},
		Transport:  rt,
		BufferPool: &buffers{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
	srv := &http.Server{
		Addr:    net.JoinHostPort(*bind, *port),
		Handler: p,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{serving},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		},
	}
	// x/net's HTTP/2 server, as k8s.io/apiserver's secure serving (and so tenant-proxy) configures it.
	if err := http2.ConfigureServer(srv, &http2.Server{}); err != nil {
		return fmt.Errorf("http2: %w", err)
	}
	return srv.ListenAndServeTLS("", "")
}

type floor struct {
	proxy   *httputil.ReverseProxy
	reviews interface {
		Create(context.Context, *authenticationv1.TokenReview, metav1.CreateOptions) (*authenticationv1.TokenReview, error)
	}
	tokens sync.Map // token -> user.Info, never expired: the floor of a token cache
}

func (p *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/readyz" {
		w.WriteHeader(http.StatusOK)
		return
	}
	u, err := p.caller(r)
	if err != nil {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	impersonate(r.Header, u)
	p.proxy.ServeHTTP(w, r)
}

// impersonate replaces every credential and identity header of h with u's identity, set by tenant-proxy's own
// code, so that both send the API server the same request.
func impersonate(h http.Header, u user.Info) {
	for name := range h {
		if n := strings.ToLower(name); n == "authorization" || strings.HasPrefix(n, "impersonate-") {
			delete(h, name)
		}
	}
	webserver.SetImpersonation(h, u)
}

func (p *floor) caller(r *http.Request) (user.Info, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		c := r.TLS.PeerCertificates[0]
		return &user.DefaultInfo{Name: c.Subject.CommonName, Groups: append(c.Subject.Organization, user.AllAuthenticated)}, nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return nil, errors.New("no credential")
	}
	if u, ok := p.tokens.Load(token); ok {
		return u.(user.Info), nil
	}
	review, err := p.reviews.Create(r.Context(), &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	if !review.Status.Authenticated {
		return nil, errors.New("token rejected")
	}
	s := review.Status.User
	extra := map[string][]string{}
	for k, v := range s.Extra {
		extra[k] = v
	}
	u := &user.DefaultInfo{Name: s.Username, UID: s.UID, Groups: s.Groups, Extra: extra}
	p.tokens.Store(token, u)
	return u, nil
}

type buffers struct{ pool sync.Pool }

func (b *buffers) Get() []byte  { return *(b.pool.Get().(*[]byte)) }
func (b *buffers) Put(p []byte) { b.pool.Put(&p) }
