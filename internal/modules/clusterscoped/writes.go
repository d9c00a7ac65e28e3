package clusterscoped

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8saudit "k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// Granted writes: the one place where the proxy writes with its own credentials.
//
// SECURITY (SECURITY.md invariant 5, narrow exception). A Tenant may grant its owners Update or Delete of
// nodes and classes (owners[].proxySettings, or the legacy enable-*-update/-deletion annotations), which
// plain RBAC cannot express per object. The proxy then performs, with its own ServiceAccount:
//   - for Update only PUT and PATCH (every patch type, server-side apply included), for Delete only DELETE,
//     of one named object of nodes, storage/ingress/priority/runtime classes or persistent volumes, never
//     a subresource (nodes/status is the kubelet's: capacity and conditions steer every tenant's scheduling),
//     never create or deletecollection, never Tenants (an owner must not rewrite their own quotas);
//   - only when a live read (with the proxy's credentials, not the cache) shows the object inside the
//     allowed set of one of the caller's tenants that grants that operation;
//   - for Update, only when a dry run of exactly the client's request shows the result still inside that
//     set and belonging to exactly the same tenants as before (no moving a node or class into, or out of,
//     another tenant's set, by labels, name or claim);
//   - on exactly the checked state: the write carries the checked resourceVersion (and, for DELETE, UID)
//     as a precondition, so a change in between is a 409 Conflict, never a blind overwrite.
// Everything else (no grant, an object outside the set or missing, another method, a subresource) is
// forwarded as the caller, so the API server's RBAC answers with its own Forbidden. That is also the
// no-oracle rule for writes: an object outside the caller's set and one that does not exist get the same
// answer (the API server's Forbidden, which it gives before looking at the object), as for GET both are
// NotFound.

// maxWriteBodyBytes bounds a write's body, as kube-apiserver's --max-request-bytes does by default.
const maxWriteBodyBytes = 3 << 20

// Audit annotations on the proxy's own record of a granted write.
const (
	auditCredentials = "clusterscoped.tenant-proxy.io/credentials"
	auditOnBehalfOf  = "clusterscoped.tenant-proxy.io/on-behalf-of"
	auditGrant       = "clusterscoped.tenant-proxy.io/grant"
	auditPrecondRV   = "clusterscoped.tenant-proxy.io/precondition-resource-version"
	auditOutcome     = "clusterscoped.tenant-proxy.io/write"
)

// Results of a granted write, the metric's result label.
const (
	resultWritten       = "written"
	resultForwarded     = "forwarded-as-caller"
	resultRefused       = "refused-set-change"
	resultConflict      = "conflict"
	resultProxyForbid   = "proxy-forbidden"
	resultBadRequest    = "bad-request"
	resultUpstreamError = "upstream-error"
)

// ProxyUpstream sends requests to the API server with the proxy's own credentials.
type ProxyUpstream struct {
	base   *url.URL
	client *http.Client
}

// NewProxyUpstream uses the proxy's own identity from cfg.
func NewProxyUpstream(cfg *rest.Config) (*ProxyUpstream, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for granted writes: %w", err)
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server URL for granted writes: %w", err)
	}
	return &ProxyUpstream{base: base, client: client}, nil
}

// writeMetrics counts granted writes by kind, verb and result.
func newWriteMetrics() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenant_proxy_clusterscoped_writes_total",
		Help: "Writes of nodes and classes by tenant owners granted Update or Delete, by kind, verb and result.",
	}, []string{"kind", "verb", "result"})
}

// Collectors implements modules.MetricsProvider.
func (m *Module) Collectors() []prometheus.Collector { return []prometheus.Collector{m.writes} }

// EnableWrites lets the module perform granted Update and Delete with the proxy's credentials; without it
// every write is forwarded as the caller.
func (m *Module) EnableWrites(upstream *ProxyUpstream) *Module {
	m.upstream = upstream
	return m
}

// writable reports whether the module may write a resource for a tenant owner at all.
func writable(r Resource) bool { return r.Grant != tenants.Tenants && !r.Unstructured }

// matchWrite finds the resource a request writes: PUT, PATCH or DELETE of one named, cluster-scoped
// object, no subresource, on the API server's own parse of the forwarded URL.
func (m *Module) matchWrite(req modules.Request) (*served, tenants.Operation) {
	info := req.Info
	if m.upstream == nil || info == nil || !info.IsResourceRequest || info.Namespace != "" || info.Subresource != "" || info.Name == "" {
		return nil, ""
	}
	var op tenants.Operation
	switch {
	case req.HTTP.Method == http.MethodPut && info.Verb == "update", req.HTTP.Method == http.MethodPatch && info.Verb == "patch":
		op = tenants.Update
	case req.HTTP.Method == http.MethodDelete && info.Verb == "delete":
		op = tenants.Delete
	default:
		return nil, ""
	}
	s := m.find(info.APIPrefix, info.APIGroup, info.APIVersion, info.Resource)
	if s == nil || !writable(s.resource) {
		return nil, ""
	}
	return s, op
}

// grantedWrite serves one write of a caller whose tenants grant op on the resource.
type grantedWrite struct {
	module     *Module
	served     *served
	op         tenants.Operation
	req        modules.Request
	selections []tenants.Selection
}

func (g *grantedWrite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	result := g.serve(w, r)
	g.module.writes.WithLabelValues(string(g.served.resource.Grant), g.req.Info.Verb, result).Inc()
	k8saudit.AddAuditAnnotation(r.Context(), auditOutcome, result)
}

func (g *grantedWrite) allows(obj runtime.Object) bool {
	for _, s := range g.selections {
		if s.Selects(obj) {
			return true
		}
	}
	return false
}

func (g *grantedWrite) serve(w http.ResponseWriter, r *http.Request) string {
	ctx := r.Context()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWriteBodyBytes+1))
	if err != nil {
		g.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("reading the body: %v", err)))
		return resultBadRequest
	}
	if len(body) > maxWriteBodyBytes {
		g.writeError(w, r, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxWriteBodyBytes)))
		return resultBadRequest
	}
	var mediaType string
	if g.op == tenants.Update {
		accepted := putMediaTypes
		if r.Method == http.MethodPatch {
			accepted = patchMediaTypes
		}
		mediaType, _, err = mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || !slices.Contains(accepted, mediaType) {
			g.writeError(w, r, unsupportedMediaType(r.Header.Get("Content-Type"), accepted))
			return resultBadRequest
		}
	}

	// Before: the live object, read with the proxy's credentials.
	current, status, err := g.get(ctx, r)
	switch {
	case err != nil:
		g.writeError(w, r, err)
		return resultUpstreamError
	case status != nil && status.Code == http.StatusNotFound:
		g.forward(w, r, body, "not found")
		return resultForwarded
	case status != nil && g.proxyForbidden(status, "get"):
		g.writeError(w, r, g.missingPermission("get"))
		return resultProxyForbid
	case status != nil:
		g.writeError(w, r, &apierrors.StatusError{ErrStatus: *status})
		return resultUpstreamError
	}
	if !g.allows(current) {
		g.forward(w, r, body, "outside the allowed set")
		return resultForwarded
	}
	before, _ := meta.Accessor(current) // decoded from a typed kind
	rv := before.GetResourceVersion()
	if g.op == tenants.Delete {
		return g.delete(w, r, body, before, rv)
	}
	return g.update(w, r, body, mediaType, current, rv)
}

// update checks the client's write with a dry run and then performs it, both on the checked version.
func (g *grantedWrite) update(w http.ResponseWriter, r *http.Request, body []byte, mediaType string, current runtime.Object, rv string) string {
	ctx := r.Context()
	conditional, contentType, err := withResourceVersion(mediaType, body, rv, g.served.resource.Kind)
	if errors.Is(err, errPreconditionConflict) {
		g.writeError(w, r, g.conflict(err))
		return resultConflict
	}
	if err != nil {
		g.writeError(w, r, apierrors.NewBadRequest(err.Error()))
		return resultBadRequest
	}
	g.actAsProxy(ctx, rv)
	dryRun := cloneQuery(r.URL.Query())
	dryRun.Set("dryRun", metav1.DryRunAll)
	resp, err := g.send(ctx, r.Method, r.URL.Path, dryRun, contentType, "application/json", conditional)
	if err != nil {
		g.writeError(w, r, err)
		return resultUpstreamError
	}
	if resp.status != nil {
		return g.upstreamFailed(w, r, resp)
	}
	after, err := g.decode(resp.body)
	if err != nil {
		g.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("reading the dry run's result: %w", err)))
		return resultUpstreamError
	}
	// A dry run returns the object at the version it was applied to; the write must be to that one.
	if afterMeta, _ := meta.Accessor(after); afterMeta.GetResourceVersion() != rv {
		g.writeError(w, r, g.conflict(fmt.Errorf("the dry run saw resourceVersion %s, not the checked %s", afterMeta.GetResourceVersion(), rv)))
		return resultConflict
	}
	if !g.allows(after) || !maps.Equal(g.module.index.Selecting(g.served.resource.Grant, current), g.module.index.Selecting(g.served.resource.Grant, after)) {
		g.writeError(w, r, apierrors.NewForbidden(g.served.resource.Resource.GroupResource(), g.req.Info.Name,
			errors.New("tenant-proxy writes for a tenant owner only changes that leave the object in the same tenants' allowed sets")))
		return resultRefused
	}
	// The write itself: the client's query (its own dryRun included), the same body and precondition.
	resp, err = g.send(ctx, r.Method, r.URL.Path, r.URL.Query(), contentType, r.Header.Get("Accept"), conditional)
	if err != nil {
		g.writeError(w, r, err)
		return resultUpstreamError
	}
	return g.relay(w, r, resp)
}

// delete performs the client's DELETE with the checked UID and version as preconditions. There is no
// state after a deletion to check, so there is no dry run.
func (g *grantedWrite) delete(w http.ResponseWriter, r *http.Request, body []byte, before metav1.Object, rv string) string {
	options, err := deleteOptions(r.Header.Get("Content-Type"), body, r.URL.Query(), before.GetUID(), rv)
	if errors.Is(err, errPreconditionConflict) {
		g.writeError(w, r, g.conflict(err))
		return resultConflict
	}
	if err != nil {
		g.writeError(w, r, err)
		return resultBadRequest
	}
	if options.IgnoreStoreReadErrorWithClusterBreakingPotential != nil && *options.IgnoreStoreReadErrorWithClusterBreakingPotential {
		g.forward(w, r, body, "unsafe delete option")
		return resultForwarded
	}
	g.actAsProxy(r.Context(), rv)
	encoded, err := json.Marshal(options)
	if err != nil {
		g.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("encoding the delete options: %w", err)))
		return resultUpstreamError
	}
	// With a body, kube-apiserver reads the options from it only; the query goes on unchanged anyway.
	resp, err := g.send(r.Context(), http.MethodDelete, r.URL.Path, r.URL.Query(), "application/json", r.Header.Get("Accept"), encoded)
	if err != nil {
		g.writeError(w, r, err)
		return resultUpstreamError
	}
	return g.relay(w, r, resp)
}

// actAsProxy notes in the proxy's audit record that what follows is done with the proxy's credentials.
func (g *grantedWrite) actAsProxy(ctx context.Context, rv string) {
	k8saudit.AddAuditAnnotations(ctx,
		auditCredentials, "proxy",
		auditOnBehalfOf, g.req.User.GetName(),
		auditGrant, string(g.served.resource.Grant)+"/"+string(g.op),
		auditPrecondRV, rv)
}

// upstreamResponse is a complete API server answer; status is set when it is an error Status.
type upstreamResponse struct {
	code   int
	header http.Header
	body   []byte
	status *metav1.Status
}

// send makes one request with the proxy's credentials. The API server's answer is read whole: write
// answers are single objects, bounded like the request.
func (g *grantedWrite) send(ctx context.Context, method, path string, query url.Values, contentType, accept string, body []byte) (*upstreamResponse, error) {
	u := *g.module.upstream.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building the request: %w", err))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	// The proxy's own Audit-ID (never the client's), so the API server's events join the proxy's record.
	if id, ok := k8saudit.AuditIDFrom(ctx); ok {
		req.Header.Set("Audit-ID", string(id))
	}
	// The API server's audit log names the proxy's ServiceAccount; the user agent says for whom.
	req.Header.Set("User-Agent", "tenant-proxy/clusterscoped (on behalf of "+sanitize(g.req.User.GetName())+")")
	resp, err := g.module.upstream.client.Do(req)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("the API server did not answer: %v", err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4*maxWriteBodyBytes+1))
	if err != nil || len(data) > 4*maxWriteBodyBytes {
		return nil, apierrors.NewInternalError(errors.New("reading the API server's answer failed or it was too large"))
	}
	out := &upstreamResponse{code: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		out.status = decodeStatus(resp.StatusCode, data)
	}
	return out, nil
}

// get reads the live object with the proxy's credentials; an error Status is returned as status.
func (g *grantedWrite) get(ctx context.Context, r *http.Request) (runtime.Object, *metav1.Status, error) {
	resp, err := g.send(ctx, http.MethodGet, r.URL.Path, nil, "", "application/json", nil)
	if err != nil {
		return nil, nil, err
	}
	if resp.status != nil {
		return nil, resp.status, nil
	}
	obj, err := g.decode(resp.body)
	if err != nil {
		return nil, nil, apierrors.NewInternalError(fmt.Errorf("reading the current object: %w", err))
	}
	return obj, nil, nil
}

// decode reads an object of the served kind from the API server's JSON.
func (g *grantedWrite) decode(data []byte) (runtime.Object, error) {
	kind := g.served.resource.Kind
	obj, gvk, err := codecs.UniversalDeserializer().Decode(data, &kind, nil)
	if err != nil {
		return nil, err
	}
	if *gvk != kind {
		return nil, fmt.Errorf("got a %s, want a %s", gvk, kind)
	}
	if _, err := meta.Accessor(obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func decodeStatus(code int, data []byte) *metav1.Status {
	status := &metav1.Status{}
	if err := json.Unmarshal(data, status); err != nil || status.Kind != "Status" {
		status = &metav1.Status{Status: metav1.StatusFailure, Message: strings.TrimSpace(string(data)), Reason: metav1.StatusReasonUnknown}
	}
	status.Code = int32(code)
	return status
}

// upstreamFailed answers a failed dry run: a refusal of the proxy's own request names the missing
// permission; anything else is the API server's answer to the client's write.
func (g *grantedWrite) upstreamFailed(w http.ResponseWriter, r *http.Request, resp *upstreamResponse) string {
	if g.proxyForbidden(resp.status, g.req.Info.Verb) {
		g.writeError(w, r, g.missingPermission(g.req.Info.Verb))
		return resultProxyForbid
	}
	g.writeError(w, r, &apierrors.StatusError{ErrStatus: *resp.status})
	if resp.status.Code == http.StatusConflict {
		return resultConflict
	}
	return resultUpstreamError
}

// relay answers what the API server answered to the write.
func (g *grantedWrite) relay(w http.ResponseWriter, r *http.Request, resp *upstreamResponse) string {
	if resp.status != nil && g.proxyForbidden(resp.status, g.req.Info.Verb) {
		g.writeError(w, r, g.missingPermission(g.req.Info.Verb))
		return resultProxyForbid
	}
	for _, h := range []string{"Content-Type", "Warning"} {
		for _, v := range resp.header.Values(h) {
			w.Header().Add(h, v)
		}
	}
	w.WriteHeader(resp.code)
	_, _ = w.Write(resp.body)
	switch {
	case resp.status == nil:
		return resultWritten
	case resp.code == http.StatusConflict:
		return resultConflict
	}
	return resultUpstreamError
}

// proxyForbidden recognises RBAC refusing the proxy's own request (not, say, an admission webhook).
func (g *grantedWrite) proxyForbidden(status *metav1.Status, verb string) bool {
	return status.Code == http.StatusForbidden && strings.Contains(status.Message, " cannot "+verb+" resource ")
}

// missingPermission is the fail-closed answer when the proxy's ServiceAccount lacks the write RBAC.
func (g *grantedWrite) missingPermission(verb string) error {
	gvr := g.served.resource.Resource
	group := gvr.Group
	if group == "" {
		group = `""`
	}
	return apierrors.NewForbidden(gvr.GroupResource(), g.req.Info.Name, fmt.Errorf(
		"the caller's tenant grants %s, but tenant-proxy's own ServiceAccount may not %s %s in API group %s: "+
			"give the proxy that permission (Helm value rbac.clusterScopedWrites=true)", g.op, verb, gvr.Resource, group))
}

func (g *grantedWrite) conflict(err error) error {
	return apierrors.NewConflict(g.served.resource.Resource.GroupResource(), g.req.Info.Name, err)
}

// forward hands the request to the API server as the caller, with the body already read.
func (g *grantedWrite) forward(w http.ResponseWriter, r *http.Request, body []byte, why string) {
	k8saudit.AddAuditAnnotations(r.Context(), auditCredentials, "caller", auditOutcome+"-reason", why)
	forward := r.Clone(r.Context())
	forward.Body = io.NopCloser(bytes.NewReader(body))
	forward.ContentLength = int64(len(body))
	g.req.Forward.ServeHTTP(w, forward)
}

func (g *grantedWrite) writeError(w http.ResponseWriter, r *http.Request, err error) {
	responsewriters.ErrorNegotiated(err, codecs, g.served.resource.Kind.GroupVersion(), w, r)
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// sanitize keeps a user name printable for a header value.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
