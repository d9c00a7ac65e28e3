// Package allnamespaces serves `kubectl get <namespaced-resource> -A [-w]` for Capsule tenant owners: the list
// (or watch) is asked of the API server once per namespace of the caller's tenants, as the caller, so the API
// server checks the caller's own right to list (watch) in every namespace it includes; namespaces it refuses
// are left out and the answers are merged into one list (one event stream). The proxy's own credentials never
// read any of it.
//
// Every namespace is listed at the resource version of the first namespace's answer (resourceVersionMatch
// Exact), so the merged list is one consistent cut of etcd and reports that resource version; a watch from it,
// one per namespace, continues exactly where the list ended. The merged watch ends, and the client re-lists or
// re-watches, when any namespace's watch ends or when the caller's namespaces change.
package allnamespaces

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/capture"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

const (
	// MaxNamespaces is the most namespaces one request is fanned out to.
	MaxNamespaces = 256
	// maxBytes bounds the answers held in memory for one request.
	maxBytes = 256 << 20
	// fanOut is how many namespaces of one request are listed at the same time: enough to hide the round
	// trips of a sequential loop, few enough that one client's -A does not crowd out everyone else's
	// requests in the API server's in-flight limit.
	fanOut = 4
)

// namespaceIndex is the part of the tenant index the module reads.
type namespaceIndex interface {
	Synced() bool
	CapsuleUser(u user.Info) bool
	Namespaces(u user.Info) ([]*corev1.Namespace, uint64)
}

// Module is the all-namespaces list and watch interceptor.
type Module struct {
	index   namespaceIndex
	scope   scoper
	members membershipSource
}

var _ modules.Module = (*Module)(nil)

// New returns the module; it reads the shared tenant index and learns from discovery (with cfg, the proxy's
// own configuration, which reads nothing else) which resources are namespaced.
func New(index *tenants.Index, cfg *rest.Config) *Module {
	return &Module{index: index, scope: newDiscoveryScope(cfg), members: indexMembership{index}}
}

func (m *Module) Name() string { return "allnamespaces" }

// Intercept takes a Capsule user's GET list or watch of a namespaced resource across all namespaces.
func (m *Module) Intercept(req modules.Request) http.Handler {
	info := req.Info
	if req.HTTP.Method != http.MethodGet || !info.IsResourceRequest || (info.Verb != "list" && info.Verb != "watch") ||
		info.Namespace != "" || info.Subresource != "" || info.Name != "" || info.Resource == "" || info.APIVersion == "" {
		return nil
	}
	if v := req.HTTP.URL.Query().Get("sendInitialEvents"); info.Verb == "watch" && v != "" && v != "false" {
		// A watch-list would need every namespace's end-of-initial-events bookmark merged into one; forwarded,
		// RBAC refuses it and client-go's reflector falls back to LIST and WATCH, which are served here.
		return nil
	}
	if !m.index.Synced() || !m.index.CapsuleUser(req.User) {
		return nil
	}
	visible, _ := m.index.Namespaces(req.User)
	if len(visible) == 0 {
		return nil
	}
	gvr := schema.GroupVersionResource{Group: info.APIGroup, Version: info.APIVersion, Resource: info.Resource}
	if !m.scope.Namespaced(gvr) {
		return nil
	}
	names := make([]string, 0, len(visible))
	for _, ns := range visible {
		names = append(names, ns.Name)
	}
	slices.Sort(names)
	if info.Verb == "watch" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			serveWatch(w, r, req.Forward, m.members, req.User, gvr)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, req.Forward, gvr, names) })
}

func serve(w http.ResponseWriter, r *http.Request, forward http.Handler, gvr schema.GroupVersionResource, names []string) {
	if len(names) > MaxNamespaces {
		writeStatus(w, r, apierrors.NewBadRequest(fmt.Sprintf(
			"listing %s across more than %d namespaces is not supported; name a namespace (-n)", gvr.Resource, MaxNamespaces)))
		return
	}
	accept, ok := jsonAccept(r.Header.Values("Accept"))
	if !ok {
		writeStatus(w, r, notAcceptable("listing across all namespaces is served as JSON only (application/json, also as=Table)"))
		return
	}
	query := r.URL.Query()
	query.Del("limit")
	query.Del("continue")
	rawQuery := query.Encode()
	budget := capture.NewBudget(maxBytes)
	results := make([]result, 0, len(names))
	cut := ""
	// One namespace after the other until the first answer fixes the cut; the rest are listed at exactly its
	// resource version, which the merged list then reports (and a watch from it is correct in every
	// namespace), so they can be asked at the same time.
	rest := names
	for cut == "" && len(rest) > 0 {
		rec := capture.NewShared(budget)
		forward.ServeHTTP(rec, subRequest(r, namespacedPath(gvr, rest[0]), rawQuery, accept))
		rest = rest[1:]
		if rec.Overflow() {
			writeTooLarge(w, r, gvr)
			return
		}
		res := resultOf(rec)
		results = append(results, res)
		if res.code != http.StatusOK && res.code != http.StatusForbidden {
			rest = nil // merge answers this one as is
			break
		}
		if res.code == http.StatusOK {
			if cut = listResourceVersion(res.body); cut != "" {
				rawQuery = atResourceVersion(query, cut)
			}
		}
		if r.Context().Err() != nil {
			return // the client went away
		}
	}
	recs := make([]*capture.Recorder, len(rest))
	var wg sync.WaitGroup
	slots := make(chan struct{}, fanOut)
	for i, ns := range rest {
		recs[i] = capture.NewShared(budget)
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			forward.ServeHTTP(recs[i], subRequest(r, namespacedPath(gvr, ns), rawQuery, accept))
		})
	}
	wg.Wait()
	if r.Context().Err() != nil {
		return
	}
	for _, rec := range recs {
		if rec.Overflow() {
			writeTooLarge(w, r, gvr)
			return
		}
		results = append(results, resultOf(rec))
	}
	out, err := merge(results, cut)
	if err != nil {
		writeStatus(w, r, apierrors.NewInternalError(err))
		return
	}
	if out.contentType != "" {
		w.Header().Set("Content-Type", out.contentType)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(out.code)
	_, _ = w.Write(out.body)
}

func writeTooLarge(w http.ResponseWriter, r *http.Request, gvr schema.GroupVersionResource) {
	writeStatus(w, r, apierrors.NewBadRequest(fmt.Sprintf(
		"the combined list of %s is larger than %d MiB; name a namespace (-n)", gvr.Resource, maxBytes>>20)))
}

// namespacedPath is the list path of gvr in one namespace.
func namespacedPath(gvr schema.GroupVersionResource, ns string) string {
	if gvr.Group == "" {
		return path.Join("/api", gvr.Version, "namespaces", ns, gvr.Resource)
	}
	return path.Join("/apis", gvr.Group, gvr.Version, "namespaces", ns, gvr.Resource)
}

// subRequest is a fresh GET of p for the same caller (the request context carries the identity): no body, and
// of the client's headers only the JSON forms it accepts.
func subRequest(r *http.Request, p, rawQuery, accept string) *http.Request {
	sub := r.Clone(r.Context())
	sub.Method = http.MethodGet
	sub.URL = &url.URL{Path: p, RawQuery: rawQuery}
	sub.RequestURI = ""
	sub.Header = http.Header{"Accept": {accept}}
	sub.Body = http.NoBody
	sub.ContentLength = 0
	sub.TransferEncoding = nil
	sub.Trailer = nil
	sub.Form, sub.PostForm, sub.MultipartForm = nil, nil, nil
	return sub
}

// jsonAccept returns the JSON alternatives of the client's Accept header (a wildcard becomes plain JSON, no
// header means JSON), and false when the client accepts no JSON at all.
func jsonAccept(values []string) (string, bool) {
	var kept []string
	empty := true
	for _, value := range values {
		for _, clause := range strings.Split(value, ",") {
			clause = strings.TrimSpace(clause)
			if clause == "" {
				continue
			}
			empty = false
			mediaType, _, err := mime.ParseMediaType(clause)
			if err != nil {
				continue
			}
			switch mediaType {
			case "application/json":
				kept = append(kept, clause)
			case "*/*", "application/*":
				kept = append(kept, "application/json")
			}
		}
	}
	if empty {
		return "application/json", true
	}
	if len(kept) == 0 {
		return "", false
	}
	return strings.Join(slices.Compact(kept), ","), true
}

// result is the API server's answer for one namespace.
type result struct {
	code        int
	contentType string
	body        []byte
}

// merge combines the answers: 403s are left out, the first other failure is the answer as is, and the lists
// (items) or Tables (rows) of the 200s are concatenated into the first one, without continue token, and with
// resource version cut, the one every answer was listed at (none when cut is empty).
func merge(results []result, cut string) (result, error) {
	var (
		base        map[string]json.RawMessage
		contentType string
		field       string
		typeOf      string
		entries     []json.RawMessage
		forbidden   *result
	)
	for i := range results {
		res := &results[i]
		switch res.code {
		case http.StatusOK:
		case http.StatusForbidden:
			if forbidden == nil {
				forbidden = res
			}
			continue
		default:
			return *res, nil
		}
		if mediaType, _, err := mime.ParseMediaType(res.contentType); err != nil || mediaType != "application/json" {
			return result{}, fmt.Errorf("unexpected content type %q from the API server", res.contentType)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(res.body, &obj); err != nil {
			return result{}, fmt.Errorf("decoding a list from the API server: %w", err)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(res.body, &tm); err != nil {
			return result{}, fmt.Errorf("decoding a list from the API server: %w", err)
		}
		f := "items"
		if tm.Kind == "Table" && (tm.APIVersion == "meta.k8s.io/v1" || tm.APIVersion == "meta.k8s.io/v1beta1") {
			f = "rows"
		}
		raw, ok := obj[f]
		if !ok && f == "items" && !strings.HasSuffix(tm.Kind, "List") {
			return result{}, fmt.Errorf("the API server answered a %s %s, not a list", tm.APIVersion, tm.Kind)
		}
		if base == nil {
			base, contentType, field, typeOf = obj, res.contentType, f, tm.APIVersion+"/"+tm.Kind
		} else if typeOf != tm.APIVersion+"/"+tm.Kind {
			return result{}, fmt.Errorf("the API server answered both %s and %s/%s", typeOf, tm.APIVersion, tm.Kind)
		}
		var some []json.RawMessage
		if ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			if err := json.Unmarshal(raw, &some); err != nil {
				return result{}, fmt.Errorf("decoding the %s of a list: %w", f, err)
			}
		}
		entries = append(entries, some...)
	}
	if base == nil {
		if forbidden != nil {
			return *forbidden, nil // refused everywhere: the API server's own answer
		}
		return result{}, fmt.Errorf("no namespace answered")
	}
	if entries == nil {
		entries = []json.RawMessage{}
	}
	var err error
	if base[field], err = json.Marshal(entries); err != nil {
		return result{}, err
	}
	metadata := map[string]json.RawMessage{}
	if raw, ok := base["metadata"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &metadata); err != nil {
			return result{}, fmt.Errorf("decoding list metadata: %w", err)
		}
	}
	delete(metadata, "continue")
	delete(metadata, "resourceVersion")
	delete(metadata, "remainingItemCount")
	if cut != "" {
		if metadata["resourceVersion"], err = json.Marshal(cut); err != nil {
			return result{}, err
		}
	}
	if base["metadata"], err = json.Marshal(metadata); err != nil {
		return result{}, err
	}
	body, err := json.Marshal(base)
	if err != nil {
		return result{}, err
	}
	return result{code: http.StatusOK, contentType: contentType, body: body}, nil
}

// resultOf is what the API server answered one sub-request.
func resultOf(rec *capture.Recorder) result {
	return result{code: rec.Code(), contentType: rec.Header().Get("Content-Type"), body: rec.Body()}
}

func notAcceptable(message string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable, Message: message,
	}}
}

func writeStatus(w http.ResponseWriter, r *http.Request, err error) {
	responsewriters.ErrorNegotiated(err, scheme.Codecs.WithoutConversion(), corev1.SchemeGroupVersion, w, r)
}
