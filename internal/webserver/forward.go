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
	utilnet "k8s.io/apimachinery/pkg/util/net"
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
	impersonating  legPair
	frontProxy     *legPair // nil unless configured
	headers        frontProxyHeaders
	upstreamErrors *prometheus.CounterVec
}

// legPair is one way of passing identity over two sets of connections: one for ordinary callers and one for
// callers with many groups or extras, whose connections do not index request headers in HPACK's dynamic
// table. Such a caller's identity headers are more than the API server's 4 KiB table holds, so each is
// evicted before it is reused, and every eviction shifts the table on both sides (hpack's evictOldest):
// with 200 groups that was the largest cost of the request in the proxy (and again in the API server).
// Ordinary callers keep indexing: their repeated headers (the proxy's bearer token above all) are then one
// byte each.
type legPair struct {
	ordinary, wide *upstreamLeg
}

// wideIdentity is the number of identity header values from which a caller's requests go over the
// connections without HPACK indexing.
const wideIdentity = 32

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
	if f.impersonating, err = f.newLegPair(cfg, dialer, nil); err != nil {
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
		pair, err := f.newLegPair(fpConfig, dialer, fp.Headers)
		if err != nil {
			return nil, fmt.Errorf("front-proxy upstream: %w", err)
		}
		f.frontProxy = &pair
		f.headers = fp.Headers
	}
	return f, nil
}

func (f *Forwarder) newLegPair(cfg *rest.Config, dialer *net.Dialer, headers frontProxyHeaders) (legPair, error) {
	ordinary, err := f.newLeg(cfg, dialer, headers, true)
	if err != nil {
		return legPair{}, err
	}
	wide, err := f.newLeg(cfg, dialer, headers, false)
	return legPair{ordinary: ordinary, wide: wide}, err
}

func (f *Forwarder) newLeg(cfg *rest.Config, dialer *net.Dialer, headers frontProxyHeaders, hpackIndexing bool) (*upstreamLeg, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Dial = (&net.Dialer{Timeout: dialer.Timeout, KeepAlive: dialer.KeepAlive}).DialContext // a transport of its own, not client-go's cached one
	base, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("upstream transport: %w", err)
	}
	if !hpackIndexing {
		if err := withoutHPACKIndexing(base); err != nil {
			return nil, err
		}
	}
	upgradeTransport, err := newUpgradeTransport(cfg, dialer, headers)
	if err != nil {
		return nil, err
	}
	leg := &upstreamLeg{transport: &identityRoundTripper{delegate: base, frontProxy: headers}, upgradeTransport: upgradeTransport}
	leg.reverseProxy = &httputil.ReverseProxy{
		// The outgoing request is fully built by ServeHTTP; Rewrite only exists so that ReverseProxy does
		// not add X-Forwarded-* headers of its own.
		Rewrite:        func(*httputil.ProxyRequest) {},
		Transport:      leg.transport,
		ModifyResponse: adoptAuditID,
		ErrorHandler:   f.upstreamError,
		BufferPool:     copyBuffers,
	}
	return leg, nil
}

// legFor picks front-proxy headers when configured and the API server's configuration can carry the
// caller's whole identity (a UID needs a UID header), impersonation otherwise; and, of that mode, the
// connections without HPACK indexing for a caller with many groups or extras.
func (f *Forwarder) legFor(r *http.Request) *upstreamLeg {
	u, ok := apirequest.UserFrom(r.Context())
	if !ok {
		return f.impersonating.ordinary // the identity layer refuses it
	}
	pair := f.impersonating
	if f.frontProxy != nil && canCarry(f.headers, u) {
		pair = *f.frontProxy
	}
	values := len(u.GetGroups())
	for _, v := range u.GetExtra() {
		values += len(v)
	}
	if values >= wideIdentity {
		return pair.wide
	}
	return pair.ordinary
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
// headers only. Modules forward their requests as the caller with it: each carries the proxy's Audit-ID,
// so the API server's events of all of them share it.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.forward(w, r, false) }

// forwardWhole forwards a request that no module took. Unless it is an upgrade, it goes without an Audit-ID
// and the API server's (which kube-apiserver sends on every response) becomes the request's: in the
// client's Audit-Id header and in the proxy's audit record, so the three still agree. Why not send ours:
// x/net's HTTP/2 client adds every header value to HPACK's dynamic table, a new Audit-ID on every request
// filled the API server's 4 KiB table, and as that table is first in, first out, it kept evicting the
// proxy's bearer token and the caller's Impersonate-* headers, which were then sent and decoded again. That
// churn cost 5-10% of the proxy's CPU per request (A/B runs in README, Performance).
func (f *Forwarder) forwardWhole(w http.ResponseWriter, r *http.Request) { f.forward(w, r, true) }

func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, whole bool) {
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
		if a := accountingFrom(r); whole && a != nil {
			// Upgrades keep sending ours: they go over HTTP/1.1 connections, and their 101 is relayed raw.
			a.apiServerAuditID = true
			w.Header().Del("Audit-Id") // the API server's comes with the response (adoptAuditID)
		}
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

// maxAuditIDLength bounds an Audit-ID taken from the API server's response (kube-apiserver's are UUIDs).
const maxAuditIDLength = 128

// adoptAuditID makes the Audit-ID of the API server's response the request's, when the API server assigned
// it. Without one usable value the response gets the proxy's. When the proxy sent its own (a module's
// request), the response already carries it, and the API server's copy of it is dropped, so that the client
// gets one Audit-Id, not two.
func adoptAuditID(res *http.Response) error {
	if res.Request == nil { // set by every transport of ours; a response without it is left as it is
		return nil
	}
	a := accountingFrom(res.Request)
	if a == nil {
		return nil
	}
	if !a.apiServerAuditID {
		res.Header.Del("Audit-Id")
		return nil
	}
	if id, ok := oneAuditID(res.Header.Values("Audit-Id")); ok {
		a.auditID = id
	}
	res.Header["Audit-Id"] = []string{a.auditID}
	return nil
}

// oneAuditID returns the API server's Audit-ID when every value is that one. An aggregated API server echoes
// the ID kube-apiserver sent it, and the aggregator adds that copy to its own; differing values are refused,
// as the second one can come from a tenant's pod (pods/proxy).
func oneAuditID(ids []string) (string, bool) {
	if len(ids) == 0 || !validAuditID(ids[0]) {
		return "", false
	}
	for _, id := range ids[1:] {
		if id != ids[0] {
			return "", false
		}
	}
	return ids[0], true
}

// validAuditID accepts what kube-apiserver generates (UUIDs) and similar tokens, nothing to escape.
func validAuditID(id string) bool {
	if id == "" || len(id) > maxAuditIDLength {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// upstreamError turns a failed round trip into a Kubernetes Status: 503 when the API server cannot be
// reached, 502 for anything else, and nothing when the client went away.
func (f *Forwarder) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return
	}
	if a := accountingFrom(r); a != nil && a.apiServerAuditID {
		w.Header().Set("Audit-Id", a.auditID) // no response carried the API server's
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

// withoutHPACKIndexing stops rt's HTTP/2 connections from adding request headers to HPACK's dynamic table;
// they are sent as Huffman-coded literals.
func withoutHPACKIndexing(rt http.RoundTripper) error {
	for rt != nil {
		switch t := rt.(type) {
		case *http.Transport:
			// Read by golang.org/x/net/http2 for every new connection; 1 byte holds no header field.
			t.HTTP2 = &http.HTTP2Config{MaxEncoderHeaderTableSize: 1}
			return nil
		case utilnet.RoundTripperWrapper:
			rt = t.WrappedRoundTripper()
		default:
			return fmt.Errorf("upstream transport %T does not wrap an *http.Transport", rt)
		}
	}
	return errors.New("no upstream *http.Transport")
}
