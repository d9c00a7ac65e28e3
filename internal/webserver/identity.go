package webserver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
)

// identityRoundTripper is the outermost layer of every upstream round trip: it removes any identity header
// that may still be on the request (X-Forwarded-For added by a proxy library, for example) and sets the
// authenticated caller's identity, exactly once: as Impersonate-* headers, or, when frontProxy is set, as the
// API server's front-proxy headers over a connection that carries the proxy's front-proxy certificate and no
// other credential. The proxy's own credentials (impersonation only) are added by the layer below it, after
// the client's Authorization is gone.
type identityRoundTripper struct {
	delegate   http.RoundTripper
	frontProxy frontProxyHeaders
}

var errNoUser = errors.New("refusing to forward a request without an authenticated user")

func (rt *identityRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	caller, ok := apirequest.UserFrom(req.Context())
	if !ok || caller.GetName() == "" {
		return nil, errNoUser
	}
	out := req.Clone(req.Context()) // the only copy: the headers below are set on it directly
	for name := range out.Header {
		if isIdentityHeader(name) {
			delete(out.Header, name)
		}
	}
	if id, send := upstreamAuditID(req); send {
		out.Header["Audit-Id"] = []string{id}
	}
	if rt.frontProxy == nil {
		SetImpersonation(out.Header, caller)
	} else if err := setFrontProxyIdentity(out.Header, rt.frontProxy, caller); err != nil {
		return nil, fmt.Errorf("front-proxy identity: %w", err)
	}
	return rt.delegate.RoundTrip(out)
}

// WrappedRoundTripper lets the upgrade dialer find the TLS configuration underneath.
func (rt *identityRoundTripper) WrappedRoundTripper() http.RoundTripper { return rt.delegate }

// upstreamAuditID is the Audit-ID to send with req, if any: none when the API server assigns it (a request
// forwarded whole), the request's otherwise.
func upstreamAuditID(req *http.Request) (id string, send bool) {
	a := accountingFrom(req)
	switch {
	case a == nil || a.auditID == "":
		return uuid.NewString(), true
	case a.apiServerAuditID:
		return "", false
	}
	return a.auditID, true
}
