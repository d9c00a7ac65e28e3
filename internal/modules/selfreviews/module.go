// Package selfreviews answers a Capsule user's SelfSubjectAccessReview (and completes their
// SelfSubjectRulesReview) the way the proxy really serves them: dashboards (k9s, Headlamp, Lens) ask "may I list namespaces?" before listing, and through the proxy
// a tenant owner may, although plain RBAC says no. Every other review is forwarded to the API server
// unchanged, as the caller, so it stays the judge of everything the proxy does not serve itself.
package selfreviews

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/capture"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// maxReviewBytes bounds the body read before deciding; a real review is a few hundred bytes.
const maxReviewBytes = 64 << 10

// Module is the self-review interceptor.
type Module struct {
	index     *tenants.Index
	reviewers []AccessReviewer
}

var _ modules.Module = (*Module)(nil)

// AccessReviewer is a module that serves some requests itself and can tell whether it would serve one.
type AccessReviewer interface {
	// ServesAccess reports whether the proxy itself performs what attrs describe for u.
	ServesAccess(u user.Info, attrs *authorizationv1.ResourceAttributes) bool
}

// New returns the module; it reads the shared tenant index and starts nothing itself. reviewers are the
// other modules whose answers a review must agree with (cluster-scoped reads and granted writes).
func New(index *tenants.Index, reviewers ...AccessReviewer) *Module {
	return &Module{index: index, reviewers: reviewers}
}

func (m *Module) Name() string { return "selfreviews" }

// Intercept takes POSTed authorization.k8s.io/v1 SelfSubjectAccessReviews of Capsule users.
func (m *Module) Intercept(req modules.Request) http.Handler {
	info := req.Info
	if req.HTTP.Method != http.MethodPost || !info.IsResourceRequest || info.Verb != "create" ||
		info.APIGroup != authorizationv1.GroupName || info.APIVersion != "v1" || info.Subresource != "" || info.Name != "" {
		return nil
	}
	if info.Resource != "selfsubjectaccessreviews" && info.Resource != "selfsubjectrulesreviews" {
		return nil
	}
	if !m.index.Synced() || !m.index.CapsuleUser(req.User) {
		return nil // the API server answers: never "yes" for someone the proxy does not serve
	}
	if info.Resource == "selfsubjectrulesreviews" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveRules(w, r, req) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, req) })
}

// namespaceReads is the rule the proxy adds for a Capsule user: it serves their namespaces.
var namespaceReads = authorizationv1.ResourceRule{
	Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"namespaces"},
}

// serveRules asks the API server for the caller's rules (as the caller) and adds what the proxy itself
// serves them, so `kubectl auth can-i --list` through the proxy matches what works through it. Anything
// the proxy cannot decode is relayed unchanged.
func serveRules(w http.ResponseWriter, r *http.Request, req modules.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil || len(body) > maxReviewBytes {
		writeStatus(w, r, apierrors.NewBadRequest("reading the review: missing, unreadable or larger than 64 KiB"))
		return
	}
	forward := r.Clone(r.Context())
	forward.Body = io.NopCloser(bytes.NewReader(body))
	forward.ContentLength = int64(len(body))
	upstream := capture.New(1 << 20)
	req.Forward.ServeHTTP(upstream, forward)

	if upstream.Overflow() {
		writeStatus(w, r, apierrors.NewInternalError(errors.New("the API server's rules review is larger than 1 MiB")))
		return
	}
	review := &authorizationv1.SelfSubjectRulesReview{}
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(upstream.Body(), nil, review)
	if upstream.Code() != http.StatusCreated || err != nil || obj != review ||
		gvk.GroupVersion() != authorizationv1.SchemeGroupVersion {
		relay(w, upstream)
		return
	}
	review.Status.ResourceRules = append(review.Status.ResourceRules, namespaceReads)
	review.TypeMeta.Kind, review.TypeMeta.APIVersion = "SelfSubjectRulesReview", authorizationv1.SchemeGroupVersion.String()
	responsewriters.WriteObjectNegotiated(scheme.Codecs.WithoutConversion(), negotiation.DefaultEndpointRestrictions,
		authorizationv1.SchemeGroupVersion, w, r, http.StatusCreated, review, false)
}

// relay answers exactly what the API server answered.
func relay(w http.ResponseWriter, upstream *capture.Recorder) {
	for k, v := range upstream.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(upstream.Code())
	_, _ = w.Write(upstream.Body())
}

func (m *Module) serve(w http.ResponseWriter, r *http.Request, req modules.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil {
		writeStatus(w, r, apierrors.NewBadRequest(fmt.Sprintf("reading the review: %v", err)))
		return
	}
	if len(body) > maxReviewBytes {
		writeStatus(w, r, apierrors.NewRequestEntityTooLargeError("a SelfSubjectAccessReview is at most 64 KiB"))
		return
	}
	review, ok := decodeReview(r, body)
	if ok && m.allows(req.User, review.Spec.ResourceAttributes) {
		review.Status = authorizationv1.SubjectAccessReviewStatus{
			Allowed: true,
			Reason:  fmt.Sprintf("tenant-proxy serves the %s of the caller's tenants", review.Spec.ResourceAttributes.Resource),
		}
		review.TypeMeta.Kind, review.TypeMeta.APIVersion = "SelfSubjectAccessReview", authorizationv1.SchemeGroupVersion.String()
		responsewriters.WriteObjectNegotiated(scheme.Codecs.WithoutConversion(), negotiation.DefaultEndpointRestrictions,
			authorizationv1.SchemeGroupVersion, w, r, http.StatusCreated, review, false)
		return
	}
	// Not ours to answer: the API server gets exactly the bytes the client sent.
	forward := r.Clone(r.Context())
	forward.Body = io.NopCloser(bytes.NewReader(body))
	forward.ContentLength = int64(len(body))
	req.Forward.ServeHTTP(w, forward)
}

// allows reports the reviews the proxy answers "yes" to on its own: reading namespaces (all of them, or one
// the caller's tenants contain), and what the other modules serve.
func (m *Module) allows(u user.Info, attrs *authorizationv1.ResourceAttributes) bool {
	if attrs == nil {
		return false
	}
	for _, r := range m.reviewers {
		if r.ServesAccess(u, attrs) {
			return true
		}
	}
	return m.allowsNamespaces(u, attrs)
}

func (m *Module) allowsNamespaces(u user.Info, attrs *authorizationv1.ResourceAttributes) bool {
	// attrs.Namespace is not checked: namespaces are cluster-scoped, and kubectl fills in its current
	// namespace anyway (with a warning).
	if attrs == nil || attrs.Group != "" || attrs.Resource != "namespaces" || attrs.Subresource != "" ||
		attrs.FieldSelector != nil || attrs.LabelSelector != nil {
		return false
	}
	if attrs.Version != "" && attrs.Version != "v1" && attrs.Version != "*" {
		return false
	}
	switch attrs.Verb {
	case "list", "watch":
		return attrs.Name == ""
	case "get":
		if attrs.Name == "" {
			return true
		}
		_, visible := m.index.Namespace(u, attrs.Name)
		return visible
	}
	return false
}

// decodeReview decodes a review in JSON, YAML or protobuf (kubectl sends protobuf for built-in types).
// Anything that does not decode to an authorization.k8s.io/v1 SelfSubjectAccessReview is left to the API
// server, which gives the authoritative error.
func decodeReview(r *http.Request, body []byte) (*authorizationv1.SelfSubjectAccessReview, bool) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, false
	}
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		return nil, false
	}
	review := &authorizationv1.SelfSubjectAccessReview{}
	obj, gvk, err := info.Serializer.Decode(body, nil, review)
	if err != nil || obj != review || gvk == nil || gvk.GroupVersion() != authorizationv1.SchemeGroupVersion || gvk.Kind != "SelfSubjectAccessReview" {
		return nil, false
	}
	return review, true
}

func writeStatus(w http.ResponseWriter, r *http.Request, err error) {
	responsewriters.ErrorNegotiated(err, scheme.Codecs.WithoutConversion(), authorizationv1.SchemeGroupVersion, w, r)
}
