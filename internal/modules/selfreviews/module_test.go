package selfreviews

import (
	"bytes"
	"net/http"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes/scheme"
)

func encode(t *testing.T, mediaType string, obj runtime.Object) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		t.Fatalf("no serializer for %s", mediaType)
	}
	var buf bytes.Buffer
	encoder := scheme.Codecs.EncoderForVersion(info.Serializer, authorizationv1.SchemeGroupVersion)
	if err := encoder.Encode(obj, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeReview(t *testing.T) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces"}}}
	other := &authorizationv1.SubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	tests := []struct {
		name        string
		contentType string
		body        []byte
		want        bool
	}{
		{"json", "application/json", encode(t, "application/json", review), true},
		{"json with charset", "application/json; charset=utf-8", encode(t, "application/json", review), true},
		{"protobuf (kubectl's default)", "application/vnd.kubernetes.protobuf", encode(t, "application/vnd.kubernetes.protobuf", review), true},
		{"another kind", "application/json", encode(t, "application/json", other), false},
		{"malformed", "application/json", []byte(`{"kind":`), false},
		{"unknown media type", "text/plain", []byte(`hello`), false},
		{"no media type", "", encode(t, "application/json", review), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "https://proxy/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", nil)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			got, ok := decodeReview(r, tt.body)
			if ok != tt.want {
				t.Fatalf("decodeReview ok = %v, want %v", ok, tt.want)
			}
			if ok && (got.Spec.ResourceAttributes == nil || got.Spec.ResourceAttributes.Resource != "namespaces") {
				t.Fatalf("decoded %+v", got.Spec)
			}
		})
	}
}

// TestAllowsOnlyNamespaceReads covers the answers that need no tenant index: anything but reading
// namespaces is left to the API server.
func TestAllowsOnlyNamespaceReads(t *testing.T) {
	m := &Module{}
	u := &user.DefaultInfo{Name: "owner"}
	tests := []struct {
		name  string
		attrs *authorizationv1.ResourceAttributes
		want  bool
	}{
		{"list namespaces", &authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces"}, true},
		{"watch namespaces with kubectl's namespace filled in", &authorizationv1.ResourceAttributes{Verb: "watch", Resource: "namespaces", Namespace: "default"}, true},
		{"get any namespace (no name)", &authorizationv1.ResourceAttributes{Verb: "get", Resource: "namespaces"}, true},
		{"no resource attributes", nil, false},
		{"delete namespaces", &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "namespaces"}, false},
		{"create namespaces", &authorizationv1.ResourceAttributes{Verb: "create", Resource: "namespaces"}, false},
		{"namespace status", &authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces", Subresource: "status"}, false},
		{"another group", &authorizationv1.ResourceAttributes{Verb: "list", Group: "example.com", Resource: "namespaces"}, false},
		{"another version", &authorizationv1.ResourceAttributes{Verb: "list", Version: "v2", Resource: "namespaces"}, false},
		{"with a label selector", &authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces", LabelSelector: &authorizationv1.LabelSelectorAttributes{RawSelector: "a=b"}}, false},
		{"a list of a name", &authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces", Name: "x"}, false},
		{"secrets", &authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.allows(u, tt.attrs); got != tt.want {
				t.Fatalf("allows = %v, want %v", got, tt.want)
			}
		})
	}
}

// nodePatcher serves patches of one node, as the cluster-scoped module does for a granted owner.
type nodePatcher struct{}

func (nodePatcher) ServesAccess(_ user.Info, attrs *authorizationv1.ResourceAttributes) bool {
	return attrs.Verb == "patch" && attrs.Resource == "nodes" && attrs.Name == "pool-a-1"
}

// TestAllowsWhatReviewersServe: the review agrees with the other modules; what none serves is left to
// the API server.
func TestAllowsWhatReviewersServe(t *testing.T) {
	m := &Module{reviewers: []AccessReviewer{nodePatcher{}}}
	u := &user.DefaultInfo{Name: "owner"}
	tests := []struct {
		name  string
		attrs *authorizationv1.ResourceAttributes
		want  bool
	}{
		{"a node the reviewer serves", &authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "pool-a-1"}, true},
		{"another node", &authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "pool-b-1"}, false},
		{"namespaces still answered", &authorizationv1.ResourceAttributes{Verb: "list", Resource: "namespaces"}, true},
		{"no resource attributes", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.allows(u, tt.attrs); got != tt.want {
				t.Fatalf("allows = %v, want %v", got, tt.want)
			}
		})
	}
}
