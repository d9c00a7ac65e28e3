package request

import (
	"net/http"
	"testing"
)

func TestParseRejectsNonCanonicalPaths(t *testing.T) {
	tests := []struct {
		target  string
		wantErr bool
	}{
		{"/api/v1/namespaces/default/pods", false},
		{"/apis/apps/v1/deployments?watch=true", false},
		{"/", false},
		{"/api/v1/namespaces/default/configmaps/system:name", false},
		{"//api/v1/namespaces", true},
		{"/api/v1//namespaces", true},
		{"/api/v1/namespaces/", true},
		{"/api/v1/namespaces/./default", true},
		{"/api/v1/namespaces/a/../b", true},
		{"/api/v1/namespaces/a%2Fb", true},
		{"/api/v1/namespaces/a%2fb", true},
		{"/api/v1/n%61mespaces", false}, // decodes to the canonical path, which is what is forwarded
		{"/api/v1/namespaces/%2E%2E/secrets", true},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, "https://proxy"+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			info, err := Parse(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse(%q) error = %v, wantErr %v", tt.target, err, tt.wantErr)
			}
			if err == nil && info == nil {
				t.Fatalf("Parse(%q) returned no RequestInfo", tt.target)
			}
		})
	}
}

func TestParseMatchesTheAPIServer(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "https://proxy/api/v1/watch/namespaces/team/configmaps/cm", nil)
	info, err := Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if info.Verb != "watch" || info.Namespace != "team" || info.Resource != "configmaps" || info.Name != "cm" {
		t.Fatalf("legacy watch path parsed as %+v", info)
	}
}
