package webserver

import (
	"context"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
)

// accounting collects, along the request path, what the audit record and metrics need. It is owned by
// the request's own goroutine; filters write their part before the next filter runs.
type accounting struct {
	auditID  string // the proxy's; a request forwarded whole takes the API server's (apiServerAuditID)
	decision string
	module   string
	authn    user.Info // the authenticated caller, before --as
	acting   user.Info // the identity the request was served as
	info     *apirequest.RequestInfo
	// apiServerAuditID: the request is forwarded whole, so the API server assigns its Audit-ID and that
	// becomes auditID when the response arrives (see Forwarder.forwardWhole).
	apiServerAuditID bool
}

type accountingKey struct{}

func withAccountingContext(ctx context.Context, a *accounting) context.Context {
	return context.WithValue(ctx, accountingKey{}, a)
}

func accountingFrom(r *http.Request) *accounting {
	a, _ := r.Context().Value(accountingKey{}).(*accounting)
	return a
}

// setDecision records what the proxy did with the request, and who it was for at that point.
func setDecision(r *http.Request, decision, module string) {
	a := accountingFrom(r)
	if a == nil {
		return
	}
	a.decision, a.module = decision, module
	if info, ok := apirequest.RequestInfoFrom(r.Context()); ok {
		a.info = info
	}
	if u, ok := apirequest.UserFrom(r.Context()); ok {
		a.acting = u
	}
}

func (a *accounting) record(r *http.Request, code int, start time.Time, latency time.Duration) *audit.Record {
	rec := &audit.Record{
		Time:           start.UTC(),
		AuditID:        a.auditID, // the API server's, when it assigned one
		Decision:       a.decision,
		Module:         a.module,
		Code:           code,
		LatencySeconds: latency.Seconds(),
		Path:           r.URL.Path,
	}
	if rec.Decision == "" {
		rec.Decision = audit.Denied
	}
	if a.info != nil {
		rec.Verb, rec.APIGroup, rec.Resource, rec.Subresource = a.info.Verb, a.info.APIGroup, a.info.Resource, a.info.Subresource
		rec.Namespace, rec.Name = a.info.Namespace, a.info.Name
	}
	if a.authn != nil {
		rec.User, rec.UID, rec.Groups = a.authn.GetName(), a.authn.GetUID(), a.authn.GetGroups()
	}
	if a.acting != nil && a.authn != nil && a.acting != a.authn {
		rec.ImpersonatedUser, rec.ImpersonatedGroup = a.acting.GetName(), a.acting.GetGroups()
	}
	return rec
}
