package releases

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/moduletest"
)

// TestRoutes: which requests the module takes, and the answers it gives before any Kubernetes call. The
// upstream address is unreachable: a route that called the cluster would fail with another code.
func TestRoutes(t *testing.T) {
	m, err := New(*NewOptions(), &rest.Config{Host: "https://127.0.0.1:1"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(moduletest.ProxyLike(m, map[string]user.Info{"ann": &user.DefaultInfo{Name: "ann"}}))
	defer server.Close()
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"Kubernetes API", http.MethodGet, "/api/v1/namespaces/a/secrets", moduletest.ForwardedStatus},
		{"other /v1 path", http.MethodGet, "/v1/other", moduletest.ForwardedStatus},
		{"deeper than a release", http.MethodGet, "/v1/namespaces/a/releases/r/history", moduletest.ForwardedStatus},
		{"method not allowed", http.MethodPatch, "/v1/namespaces/a/releases/r", http.StatusMethodNotAllowed},
		{"list all: POST not allowed", http.MethodPost, "/v1/releases", http.StatusMethodNotAllowed},
		{"invalid namespace", http.MethodGet, "/v1/namespaces/Not_A_Namespace/releases", http.StatusBadRequest},
		{"invalid release name", http.MethodGet, "/v1/namespaces/a/releases/Not_A_Release", http.StatusBadRequest},
		{"install without a body", http.MethodPost, "/v1/namespaces/a/releases", http.StatusBadRequest},
		{"upgrade without a body", http.MethodPut, "/v1/namespaces/a/releases/r", http.StatusBadRequest},
		{"unknown PUT action", http.MethodPut, "/v1/namespaces/a/releases/r?action=explode", http.StatusBadRequest},
		{"rollback without revision", http.MethodPut, "/v1/namespaces/a/releases/r?action=rollback", http.StatusBadRequest},
		{"rollback to revision 0", http.MethodPut, "/v1/namespaces/a/releases/r?action=rollback&revision=0", http.StatusBadRequest},
		{"purge not a boolean", http.MethodDelete, "/v1/namespaces/a/releases/r?purge=maybe", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, contentType, body := moduletest.Do(t, server.URL, tt.method, "ann", tt.path, "")
			if code != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
			if code == moduletest.ForwardedStatus {
				return
			}
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil || e.Code != code || e.Message == "" || contentType != "application/json" {
				t.Errorf("error answer %s (%s): %v", body, contentType, err)
			}
		})
	}
}
