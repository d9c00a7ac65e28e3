package allnamespaces

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// fakeDiscovery serves legacy discovery of the core group and of one group, example.com/v1, whose resources
// can change.
type fakeDiscovery struct {
	mu      sync.Mutex
	example []metav1.APIResource
	hits    int
}

func (f *fakeDiscovery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits++
	var body any
	switch r.URL.Path {
	case "/api":
		body = metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}}
	case "/apis":
		body = metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{{
			Name:             "example.com",
			Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: "example.com/v1", Version: "v1"}},
			PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "example.com/v1", Version: "v1"},
		}}}
	case "/api/v1":
		body = metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", SingularName: "configmap", Namespaced: true, Kind: "ConfigMap", Verbs: []string{"list"}},
			{Name: "nodes", SingularName: "node", Kind: "Node", Verbs: []string{"list"}},
		}}
	case "/apis/example.com/v1":
		body = metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "example.com/v1", APIResources: f.example}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func TestDiscoveryScope(t *testing.T) {
	fake := &fakeDiscovery{}
	server := httptest.NewServer(fake)
	defer server.Close()
	s := newDiscoveryScope(&rest.Config{Host: server.URL})
	widgets := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

	tests := []struct {
		name string
		gvr  schema.GroupVersionResource
		want bool
	}{
		{"namespaced", schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true},
		{"singular name is not the resource", schema.GroupVersionResource{Version: "v1", Resource: "configmap"}, false},
		{"cluster-scoped", schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, false},
		{"unknown", widgets, false},
		{"unknown version", schema.GroupVersionResource{Version: "v2", Resource: "configmaps"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Namespaced(tt.gvr); got != tt.want {
				t.Fatalf("Namespaced(%s) = %v, want %v", tt.gvr, got, tt.want)
			}
		})
	}

	// A resource added later is found once a miss re-reads discovery, at most once per minRefresh.
	fake.mu.Lock()
	fake.example = []metav1.APIResource{{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget", Verbs: []string{"list"}}}
	hits := fake.hits
	fake.mu.Unlock()
	if s.Namespaced(widgets) {
		t.Fatal("discovery re-read before minRefresh")
	}
	fake.mu.Lock()
	if fake.hits != hits {
		t.Errorf("a miss within minRefresh asked discovery %d times", fake.hits-hits)
	}
	fake.mu.Unlock()
	s.mu.Lock()
	s.lastRefresh = time.Now().Add(-minRefresh)
	s.mu.Unlock()
	if !s.Namespaced(widgets) {
		t.Fatal("a new namespaced resource is not found after a refresh")
	}
}
