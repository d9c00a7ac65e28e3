package audit

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
)

const testPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  users: ["system:kube-proxy"]
- level: None
  resources: [{group: "", resources: ["events"]}]
- level: None
  nonResourceURLs: ["/version"]
- level: Metadata
`

func TestPolicyRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	alice := &user.DefaultInfo{Name: "alice"}
	tests := []struct {
		name string
		user user.Info
		info *apirequest.RequestInfo
		path string
		want bool
	}{
		{"an ordinary request", alice, &apirequest.RequestInfo{IsResourceRequest: true, Verb: "list", Resource: "pods", Namespace: "a"}, "/api/v1/namespaces/a/pods", true},
		{"a user with level None", &user.DefaultInfo{Name: "system:kube-proxy"}, &apirequest.RequestInfo{IsResourceRequest: true, Verb: "list", Resource: "pods"}, "/api/v1/pods", false},
		{"a resource with level None", alice, &apirequest.RequestInfo{IsResourceRequest: true, Verb: "create", Resource: "events", Namespace: "a"}, "/api/v1/namespaces/a/events", false},
		{"a path with level None", alice, &apirequest.RequestInfo{Verb: "get", Path: "/version"}, "/version", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "https://proxy"+tt.path, nil)
			if got := p.Records(tt.user, tt.info, r); got != tt.want {
				t.Fatalf("Records = %v, want %v", got, tt.want)
			}
		})
	}
	var none *Policy
	if !none.Records(alice, nil, &http.Request{}) {
		t.Fatal("without a policy everything must be recorded")
	}
	if _, err := LoadPolicy(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing policy file must be an error")
	}
}
