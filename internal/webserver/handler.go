package webserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	k8saudit "k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	k8smetrics "k8s.io/component-base/metrics"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
	"github.com/tenant-proxy/tenant-proxy/internal/growstack"
	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/request"
)

// chain holds what the request path needs; it is immutable once built.
type chain struct {
	authenticator          authenticator.Request
	requestHeader          *authenticatorfactory.RequestHeaderConfig
	apiAudiences           authenticator.Audiences
	impersonationAuthz     authorizer.Authorizer
	maxImpersonationValues int
	modules                []modules.Module
	forwarder              *Forwarder
	audit                  *audit.Logger
	auditPolicy            *audit.Policy
	metrics                *metrics
	tenantNamer            modules.TenantNamer // nil without a tenant-aware module
}

// unservedFilterMetrics are the metrics k8s.io/apiserver's authentication and authorization filters keep in
// component-base's legacy registry, which the proxy never serves (its /metrics is its own registry, with
// tenant_proxy_authentications_total). Disabled before the filters register them, they are never created and
// cost nothing per request; enabled, recording them was 1.6% of the proxy's samples in a perf profile.
var unservedFilterMetrics = []string{
	"authenticated_user_requests", "authentication_attempts", "authentication_duration_seconds",
	"authorization_attempts_total", "authorization_duration_seconds",
}

// handler builds the filter chain in kube-apiserver's order: parse (on exactly the URL that will be
// forwarded), authenticate, authorise client impersonation, then let a module answer or forward once.
func (c *chain) handler() http.Handler {
	k8smetrics.SetDisabledMetrics(unservedFilterMetrics) // before WithAuthentication registers them
	var h http.Handler = http.HandlerFunc(c.dispatch)
	h = impersonation.WithImpersonation(h, c.impersonationAuthz, codecs)
	h = c.withImpersonationLimit(h)
	h = c.recordCaller(h)
	h = filters.WithAuthentication(h, c.authenticator, http.HandlerFunc(c.unauthorized), c.apiAudiences, c.requestHeader)
	h = c.withRequestInfo(h)
	h = c.withAccounting(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		growstack.Reserve() // the HTTP/2 server runs each request on a new goroutine
		h.ServeHTTP(w, r)
	})
}

func (c *chain) withRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := request.Parse(r)
		if err != nil {
			writeStatus(w, r, apierrors.NewBadRequest(err.Error()))
			return
		}
		next.ServeHTTP(w, r.WithContext(apirequest.WithRequestInfo(r.Context(), info)))
	})
}

func (c *chain) unauthorized(w http.ResponseWriter, r *http.Request) {
	c.metrics.unauthenticated.Inc()
	setDecision(r, audit.Denied, "authentication")
	filters.Unauthorized(codecs).ServeHTTP(w, r)
}

// recordCaller remembers the authenticated caller before --as replaces it, for the audit record.
func (c *chain) recordCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.metrics.authenticated.Inc()
		if a := accountingFrom(r); a != nil {
			a.authn, _ = apirequest.UserFrom(r.Context())
			a.info, _ = apirequest.RequestInfoFrom(r.Context())
		}
		next.ServeHTTP(w, r)
	})
}

// withImpersonationLimit bounds the work a single request can ask of the impersonation check.
func (c *chain) withImpersonationLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count := 0
		for name, values := range r.Header {
			if strings.HasPrefix(name, "Impersonate-") {
				count += len(values)
			}
		}
		if count > c.maxImpersonationValues {
			setDecision(r, audit.Denied, "impersonation")
			writeStatus(w, r, apierrors.NewBadRequest(fmt.Sprintf("at most %d impersonation values are allowed", c.maxImpersonationValues)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dispatch runs after authentication: the first module that takes the request answers it, otherwise it is
// forwarded as the caller.
func (c *chain) dispatch(w http.ResponseWriter, r *http.Request) {
	caller, ok := apirequest.UserFrom(r.Context())
	info, infoOK := apirequest.RequestInfoFrom(r.Context())
	if !ok || !infoOK || caller.GetName() == "" {
		writeStatus(w, r, apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	req := modules.Request{User: caller, Info: info, HTTP: r, Forward: c.forwarder}
	for _, m := range c.modules {
		if h := m.Intercept(req); h != nil {
			setDecision(r, audit.Intercepted, m.Name())
			h.ServeHTTP(w, r)
			return
		}
	}
	setDecision(r, audit.Forwarded, "")
	c.forwarder.forwardWhole(w, r)
}

// withAccounting is the outermost filter: it assigns the Audit-ID (which a request forwarded whole replaces
// with the API server's, see Forwarder.forwardWhole) and, when the request ends, writes the audit record and
// the metrics.
func (c *chain) withAccounting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The Audit-ID our audit record and the API server's audit event share; one context value (the
		// accounting) carries it. Modules note what the record should say as kube-apiserver's handlers do:
		// audit annotations, in the audit context, which is created in the same copy of the request.
		id := uuid.NewString()
		acct := &accounting{auditID: id}
		auditCtx := k8saudit.WithAuditContext(r.Context())
		k8saudit.WithAuditID(auditCtx, types.UID(id))
		r = r.WithContext(withAccountingContext(auditCtx, acct))
		w.Header().Set("Audit-Id", id)
		rw := &statusRecorder{ResponseWriter: w}
		done := c.metrics.begin(longRunningKind(r))
		defer func() {
			latency := time.Since(start)
			code := rw.code()
			verb := ""
			if acct.info != nil {
				verb = acct.info.Verb
			}
			done(verb, acct.decision, acct.module, code, latency)
			if c.audit == nil || !c.auditPolicy.Records(acct.authn, acct.info, r) {
				return
			}
			rec := acct.record(r, code, start, latency)
			rec.Annotations = k8saudit.AuditContextFrom(r.Context()).GetEventAnnotations()
			if c.tenantNamer != nil && acct.acting != nil {
				rec.Tenants = c.tenantNamer.TenantsOf(acct.acting)
			}
			c.audit.Log(rec)
		}()
		next.ServeHTTP(rw, r)
	})
}

// longRunningKind classifies requests that stay open: upgrades are streams (exec, attach, port-forward),
// watches and followed logs are watches. It reads the raw query (before parsing) only to pick a gauge.
func longRunningKind(r *http.Request) string {
	if requestedUpgrade(r) != "" {
		return longRunningStream
	}
	q := r.URL.RawQuery
	if strings.Contains(r.URL.Path, "/watch/") || (q != "" && (strings.Contains(q, "watch=true") || strings.Contains(q, "watch=1") || strings.Contains(q, "follow=true"))) {
		return longRunningWatch
	}
	return ""
}

// statusRecorder records the status code and keeps streaming and upgrades working: it flushes (watch),
// hijacks (exec, port-forward over HTTP/1.1) and unwraps for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	s.hijacked = true
	return hj.Hijack()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) code() int {
	switch {
	case s.hijacked && s.status == 0:
		return http.StatusSwitchingProtocols
	case s.status == 0:
		return http.StatusOK
	}
	return s.status
}
