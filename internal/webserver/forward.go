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
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
)

// Forwarder sends an authenticated request to the API server as the caller, streaming responses and
// splicing SPDY/WebSocket upgrades. It says who the caller is by impersonation, or, when configured with a
// front-proxy certificate, by the API server's front-proxy headers; the API server then authorises no
// impersonation (one check per impersonated group) on every request.
type Forwarder struct {
	upstream       *url.URL
	impersonating  *upstreamLeg
	frontProxy     *upstreamLeg // nil unless configured
	headers        frontProxyHeaders
	upstreamErrors *prometheus.CounterVec
}

// upstreamLeg is one way to the API server: a pooled HTTP/2 transport for ordinary requests and an HTTP/1.1
// dialer for upgrades, both under the identity layer.
type upstreamLeg struct {
	reverseProxy     *httputil.ReverseProxy
	transport        http.RoundTripper
	upgradeTransport proxy.UpgradeRequestRoundTripper
}

// FrontProxyConfig makes the Forwarder send identity as front-proxy headers over mTLS with CertFile/KeyFile,
// a certificate the API server accepts from a front proxy (--requestheader-client-ca-file and
// --requestheader-allowed-names), reading header names from Headers.
type FrontProxyConfig struct {
	CertFile, KeyFile string
	Headers           frontProxyHeaders
}

// NewForwarder builds the upstream transports from the proxy's own rest.Config and, with fp, a second set
// that presents the front-proxy certificate and no other credential.
func NewForwarder(cfg *rest.Config, fp *FrontProxyConfig, upstreamErrors *prometheus.CounterVec) (*Forwarder, error) {
	upstream, err := url.Parse(cfg.Host)
	if err != nil || upstream.Scheme == "" || upstream.Host == "" {
		return nil, fmt.Errorf("upstream API server URL %q is not absolute: %v", cfg.Host, err)
	}
	cfg = rest.CopyConfig(cfg)
	// Fail fast on an unreachable API server instead of hanging for client-go's 30 s default.
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	cfg.Dial = dialer.DialContext
	f := &Forwarder{upstream: upstream, upstreamErrors: upstreamErrors}
	if f.impersonating, err = f.newLeg(cfg, dialer, nil); err != nil {
		return nil, err
	}
	if fp != nil {
		// Only the API server's address, trust and transport settings: no token, no exec plugin, no
		// impersonation; the front-proxy certificate is the only credential (reloaded when its files change).
		fpConfig := &rest.Config{
			Host:      cfg.Host,
			APIPath:   cfg.APIPath,
			UserAgent: cfg.UserAgent,
			Proxy:     cfg.Proxy,
			Dial:      cfg.Dial,
			QPS:       cfg.QPS,
			TLSClientConfig: rest.TLSClientConfig{
				Insecure: cfg.Insecure, ServerName: cfg.ServerName, CAFile: cfg.CAFile, CAData: cfg.CAData,
				CertFile: fp.CertFile, KeyFile: fp.KeyFile,
			},
		}
		if f.frontProxy, err = f.newLeg(fpConfig, dialer, fp.Headers); err != nil {
			return nil, fmt.Errorf("front-proxy upstream: %w", err)
		}
		f.headers = fp.Headers
	}
	return f, nil
}

func (f *Forwarder) newLeg(cfg *rest.Config, dialer *net.Dialer, headers frontProxyHeaders) (*upstreamLeg, error) {
	base, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("upstream transport: %w", err)
	}
	upgradeTransport, err := newUpgradeTransport(cfg, dialer, headers)
	if err != nil {
		return nil, err
	}
	leg := &upstreamLeg{transport: &identityRoundTripper{delegate: base, frontProxy: headers}, upgradeTransport: upgradeTransport}
	leg.reverseProxy = &httputil.ReverseProxy{
		// The outgoing request is fully built by ServeHTTP; Rewrite only exists so that ReverseProxy does
		// not add X-Forwarded-* headers of its own.
		Rewrite:      func(*httputil.ProxyRequest) {},
		Transport:    leg.transport,
		ErrorHandler: f.upstreamError,
		BufferPool:   copyBuffers,
	}
	return leg, nil
}

// legFor picks front-proxy headers when configured and the API server's configuration can carry the
// caller's whole identity (a UID needs a UID header), impersonation otherwise.
func (f *Forwarder) legFor(r *http.Request) *upstreamLeg {
	if f.frontProxy != nil {
		if u, ok := apirequest.UserFrom(r.Context()); ok && canCarry(f.headers, u) {
			return f.frontProxy
		}
	}
	return f.impersonating
}

// copyBuffers reuses the response copy buffers: without a pool ReverseProxy allocates (and zeroes) 32 KiB
// per request, which showed up in profiles.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// newUpgradeTransport mirrors kubectl proxy: TLS from the proxy's config for the raw connection, and the
// proxy's auth wrappers (under the identity layer) applied to the upgrade request itself.
func newUpgradeTransport(cfg *rest.Config, dialer *net.Dialer, headers frontProxyHeaders) (proxy.UpgradeRequestRoundTripper, error) {
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
	return proxy.NewUpgradeRequestRoundTripper(connection, &identityRoundTripper{delegate: auth, frontProxy: headers}), nil
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
	leg := f.legFor(r)
	if upgrade == "" {
		leg.reverseProxy.ServeHTTP(w, out)
		return
	}
	h := proxy.NewUpgradeAwareHandler(out.URL, leg.transport, false, true, upgradeErrorResponder{f})
	h.UpgradeTransport = leg.upgradeTransport
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
