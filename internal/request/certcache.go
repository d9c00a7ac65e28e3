package request

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// verifiedCertCache remembers which client certificate chains the x509 authenticator accepted, so a client
// pays for chain verification once, not on every request of its connection.
//
// Why our own: k8s.io/apiserver's x509 authenticator verifies the chain on every request, which profiling
// showed to be the largest single cost of the proxy. An entry is keyed by a hash of the presented chain,
// is valid only while the CA bundle is byte-for-byte the one it was verified against, never past the leaf's
// NotAfter, and at most ttl. Only successes are cached; a failure is checked again.
type verifiedCertCache struct {
	delegate   authenticator.Request
	ca         dynamiccertificates.CAContentProvider
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]certEntry
}

type certEntry struct {
	resp     *authenticator.Response
	caBundle []byte
	expires  time.Time
}

func newVerifiedCertCache(delegate authenticator.Request, ca dynamiccertificates.CAContentProvider, ttl time.Duration, maxEntries int) *verifiedCertCache {
	return &verifiedCertCache{delegate: delegate, ca: ca, ttl: ttl, maxEntries: maxEntries, now: time.Now,
		entries: make(map[[sha256.Size]byte]certEntry)}
}

func (c *verifiedCertCache) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	h := sha256.New()
	for _, cert := range req.TLS.PeerCertificates {
		h.Write(cert.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])

	caBundle := c.ca.CurrentCABundleContent()
	now := c.now()
	c.mu.Lock()
	entry, found := c.entries[key]
	c.mu.Unlock()
	if found && now.Before(entry.expires) && bytes.Equal(entry.caBundle, caBundle) {
		certCacheHits.Inc()
		return entry.resp, true, nil
	}
	certCacheMisses.Inc()

	resp, ok, err := c.delegate.AuthenticateRequest(req)
	if !ok || err != nil {
		return resp, ok, err
	}
	expires := now.Add(c.ttl)
	if notAfter := req.TLS.PeerCertificates[0].NotAfter; notAfter.Before(expires) {
		expires = notAfter
	}
	c.mu.Lock()
	if len(c.entries) >= c.maxEntries {
		clear(c.entries) // bounded memory under a flood of distinct certificates
	}
	c.entries[key] = certEntry{resp: resp, caBundle: caBundle, expires: expires}
	c.mu.Unlock()
	return resp, ok, err
}

// onlyWithHeaders skips the front-proxy authenticator (and its chain verification against the front-proxy
// CA) when a request carries none of the front-proxy username headers: without them it cannot
// authenticate anyway.
func onlyWithHeaders(delegate authenticator.Request, usernameHeaders func() []string) authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		for _, name := range usernameHeaders() {
			if len(req.Header.Values(name)) > 0 {
				return delegate.AuthenticateRequest(req)
			}
		}
		return nil, false, nil
	})
}
