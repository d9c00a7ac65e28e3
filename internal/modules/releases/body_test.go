package releases

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantCode   int // 0: accepted
		wantValues map[string]any
	}{
		{name: "repoUrl", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","values":"a: 1\nb: {c: d}\n"}`,
			wantValues: map[string]any{"a": float64(1), "b": map[string]any{"c": "d"}}},
		{name: "AppRepository, no values", body: `{"chartName":"c","releaseName":"r","appRepositoryResourceName":"repo"}`, wantValues: map[string]any{}},
		{name: "null values", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","values":"~"}`, wantValues: map[string]any{}},
		{name: "unknown fields are ignored", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","extra":1}`, wantValues: map[string]any{}},
		{name: "not JSON", body: `{`, wantCode: http.StatusBadRequest},
		{name: "two JSON values", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x"} {}`, wantCode: http.StatusBadRequest},
		{name: "no chartName", body: `{"releaseName":"r","repoUrl":"https://x"}`, wantCode: http.StatusBadRequest},
		{name: "no releaseName", body: `{"chartName":"c","repoUrl":"https://x"}`, wantCode: http.StatusBadRequest},
		{name: "no repository", body: `{"chartName":"c","releaseName":"r"}`, wantCode: http.StatusBadRequest},
		{name: "both repositories", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","appRepositoryResourceName":"a"}`, wantCode: http.StatusBadRequest},
		{name: "namespace without name", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","appRepositoryResourceNamespace":"n"}`, wantCode: http.StatusBadRequest},
		{name: "invalid AppRepository name", body: `{"chartName":"c","releaseName":"r","appRepositoryResourceName":"../x"}`, wantCode: http.StatusBadRequest},
		{name: "invalid AppRepository namespace", body: `{"chartName":"c","releaseName":"r","appRepositoryResourceName":"a","appRepositoryResourceNamespace":"a/b"}`, wantCode: http.StatusBadRequest},
		{name: "invalid YAML", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","values":"a: [\n"}`, wantCode: http.StatusBadRequest},
		{name: "values are a list", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","values":"- a\n"}`, wantCode: http.StatusBadRequest},
		{name: "too large", body: `{"chartName":"c","releaseName":"r","repoUrl":"https://x","values":"` + strings.Repeat("a", maxBodyBytes) + `"}`, wantCode: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/namespaces/n/releases", strings.NewReader(tt.body))
			_, values, err := decodeRequest(r, httptest.NewRecorder())
			var api *apiError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantCode != 0 && (!errors.As(err, &api) || api.Code != tt.wantCode):
				t.Fatalf("error %v, want code %d", err, tt.wantCode)
			case tt.wantCode == 0 && !reflect.DeepEqual(values, tt.wantValues):
				t.Errorf("values %#v, want %#v", values, tt.wantValues)
			}
		})
	}
}
