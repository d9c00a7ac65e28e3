package webserver

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/transport"
)

// identityRoundTripper is the outermost layer of every upstream round trip: it removes any identity header
// that may still be on the request (X-Forwarded-For added by a proxy library, for example) and sets the
// authenticated caller's identity as Impersonate-* headers, exactly once each. The proxy's own credentials
// are added by the layer below it, after the client's Authorization is gone.
type identityRoundTripper struct {
	delegate http.RoundTripper
}

var errNoUser = errors.New("refusing to forward a request without an authenticated user")

func (rt *identityRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	caller, ok := apirequest.UserFrom(req.Context())
	if !ok || caller.GetName() == "" {
		return nil, errNoUser
	}
	out := req.Clone(req.Context())
	for name := range out.Header {
		if isIdentityHeader(name) {
			delete(out.Header, name)
		}
	}
	out.Header.Set("Audit-ID", auditIDFrom(req))
	impersonate := transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{
		UserName: caller.GetName(),
		UID:      caller.GetUID(),
		Groups:   caller.GetGroups(),
		Extra:    caller.GetExtra(),
	}, rt.delegate)
	return impersonate.RoundTrip(out)
}

// WrappedRoundTripper lets the upgrade dialer find the TLS configuration underneath.
func (rt *identityRoundTripper) WrappedRoundTripper() http.RoundTripper { return rt.delegate }

type auditIDKey struct{}

// withAuditID gives the request an Audit-ID that our audit record and the API server's audit event share.
func withAuditID(req *http.Request) (*http.Request, string) {
	id := uuid.NewString()
	return req.WithContext(context.WithValue(req.Context(), auditIDKey{}, id)), id
}

func auditIDFrom(req *http.Request) string {
	if id, ok := req.Context().Value(auditIDKey{}).(string); ok {
		return id
	}
	return uuid.NewString()
}
