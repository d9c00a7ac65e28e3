package webserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
)

// Forwarder sends an authenticated request to the API server as the caller (impersonation), streaming
// responses and splicing SPDY/WebSocket upgrades.
type Forwarder struct {
	upstream         *url.URL
	reverseProxy     *httputil.ReverseProxy
	transport        http.RoundTripper
	upgradeTransport proxy.UpgradeRequestRoundTripper
	upstreamErrors   *prometheus.CounterVec
}

// NewForwarder builds the upstream transports from the proxy's own rest.Config: one shared, pooled HTTP/2
// transport for ordinary requests and an HTTP/1.1 dialer for upgrades.
func NewForwarder(cfg *rest.Config, upstreamErrors *prometheus.CounterVec) (*Forwarder, error) {
	upstream, err := url.Parse(cfg.Host)
	if err != nil || upstream.Scheme == "" || upstream.Host == "" {
		return nil, fmt.Errorf("upstream API server URL %q is not absolute: %v", cfg.Host, err)
	}
	cfg = rest.CopyConfig(cfg)
	// Fail fast on an unreachable API server instead of hanging for client-go's 30 s default.
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	cfg.Dial = dialer.DialContext
	base, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("upstream transport: %w", err)
	}
	upgradeTransport, err := newUpgradeTransport(cfg, dialer)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		upstream:         upstream,
		transport:        &identityRoundTripper{delegate: base},
		upgradeTransport: upgradeTransport,
		upstreamErrors:   upstreamErrors,
	}
	f.reverseProxy = &httputil.ReverseProxy{
		// The outgoing request is fully built by ServeHTTP; Rewrite only exists so that ReverseProxy does
		// not add X-Forwarded-* headers of its own.
		Rewrite:      func(*httputil.ProxyRequest) {},
		Transport:    f.transport,
		ErrorHandler: f.upstreamError,
		BufferPool:   copyBuffers,
	}
	return f, nil
}

// copyBuffers reuses the response copy buffers: without a pool ReverseProxy allocates (and zeroes) 32 KiB
// per request, which showed up in profiles.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// newUpgradeTransport mirrors kubectl proxy: TLS from the proxy's config for the raw connection, and the
// proxy's auth wrappers (under the identity layer) applied to the upgrade request itself.
func newUpgradeTransport(cfg *rest.Config, dialer *net.Dialer) (proxy.UpgradeRequestRoundTripper, error) {
	transportConfig, err := cfg.TransportConfig()
	if err != nil {
		return nil, fmt.Errorf("upgrade transport: %w", err)
	}
	tlsConfig, err := transport.TLSConfigFor(transportConfig)
	if err != nil {
		return nil, fmt.Errorf("upgrade TLS config: %w", err)
	}
	connection := &http.Transport{TLSClientConfig: tlsConfig, DialContext: dialer.DialContext, Proxy: http.ProxyFromEnvironment}
	auth, err := transport.HTTPWrappersForConfig(transportConfig, proxy.MirrorRequest)
	if err != nil {
		return nil, fmt.Errorf("upgrade auth wrappers: %w", err)
	}
	return proxy.NewUpgradeRequestRoundTripper(connection, &identityRoundTripper{delegate: auth}), nil
}

// ServeHTTP forwards r, which must carry an authenticated user in its context and a canonical path
// (see request.Parse). The upstream request is built from r's method, path, query, body and allow-listed
// headers only.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upgrade := requestedUpgrade(r)
	if upgrade != "" && !allowedUpgrades[upgrade] {
		setDecision(r, audit.Denied, "upgrade")
		writeStatus(w, r, apierrors.NewBadRequest(fmt.Sprintf("upgrade to %q is not supported", upgrade)))
		return
	}
	out := r.WithContext(r.Context()) // shallow copy: r itself is never mutated
	out.Header = upstreamHeaders(r.Header, upgrade)
	out.URL = &url.URL{Scheme: f.upstream.Scheme, Host: f.upstream.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	out.Host = f.upstream.Host
	out.RequestURI = ""
	out.Trailer = nil // trailers are client-controlled headers too; the API server needs none
	if upgrade == "" {
		f.reverseProxy.ServeHTTP(w, out)
		return
	}
	h := proxy.NewUpgradeAwareHandler(out.URL, f.transport, false, true, upgradeErrorResponder{f})
	h.UpgradeTransport = f.upgradeTransport
	h.ServeHTTP(w, out)
}

type upgradeErrorResponder struct{ f *Forwarder }

func (u upgradeErrorResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	u.f.upstreamError(w, r, err)
}

// upstreamError turns a failed round trip into a Kubernetes Status: 503 when the API server cannot be
// reached, 502 for anything else, and nothing when the client went away.
func (f *Forwarder) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return
	}
	klog.FromContext(r.Context()).V(2).Info("upstream request failed", "err", err)
	var opErr *net.OpError
	var status *apierrors.StatusError
	switch {
	case errors.Is(err, errNoUser):
		status = apierrors.NewUnauthorized("Unauthorized")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		f.upstreamErrors.WithLabelValues("unreachable").Inc()
		status = apierrors.NewServiceUnavailable("the Kubernetes API server is unreachable")
	default:
		f.upstreamErrors.WithLabelValues("other").Inc()
		status = apierrors.NewGenericServerResponse(http.StatusBadGateway, "", schemaGroupResource(r), "", "error talking to the Kubernetes API server", 0, false)
	}
	writeStatus(w, r, status)
}
