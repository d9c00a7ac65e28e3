package releases

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// maxBodyBytes bounds an install or upgrade body (values included).
const maxBodyBytes = 4 << 20

// releaseRequest is the body of an install or upgrade, as Kubeapps' dashboard sends it.
type releaseRequest struct {
	ChartName                      string `json:"chartName"`
	ReleaseName                    string `json:"releaseName"`
	Version                        string `json:"version"`
	Values                         string `json:"values"`
	RepoURL                        string `json:"repoUrl"`
	AppRepositoryResourceName      string `json:"appRepositoryResourceName"`
	AppRepositoryResourceNamespace string `json:"appRepositoryResourceNamespace"`
}

// decodeRequest reads and validates the body: every problem is a 400.
func decodeRequest(r *http.Request, w http.ResponseWriter) (*releaseRequest, map[string]any, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, nil, newError(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", maxBodyBytes)
		}
		return nil, nil, newError(http.StatusBadRequest, "reading the body: %v", err)
	}
	var req releaseRequest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&req); err != nil {
		return nil, nil, newError(http.StatusBadRequest, "the body is not a release request: %v", err)
	}
	if dec.More() {
		return nil, nil, newError(http.StatusBadRequest, "the body holds more than one JSON value")
	}
	if req.ChartName == "" || req.ReleaseName == "" {
		return nil, nil, newError(http.StatusBadRequest, "chartName and releaseName are required")
	}
	if (req.RepoURL == "") == (req.AppRepositoryResourceName == "") {
		return nil, nil, newError(http.StatusBadRequest, "name the chart repository with exactly one of repoUrl and appRepositoryResourceName")
	}
	if req.AppRepositoryResourceName == "" && req.AppRepositoryResourceNamespace != "" {
		return nil, nil, newError(http.StatusBadRequest, "appRepositoryResourceNamespace needs appRepositoryResourceName")
	}
	if req.AppRepositoryResourceName != "" {
		if errs := validation.IsDNS1123Subdomain(req.AppRepositoryResourceName); len(errs) > 0 {
			return nil, nil, newError(http.StatusBadRequest, "invalid appRepositoryResourceName: %s", errs[0])
		}
	}
	if req.AppRepositoryResourceNamespace != "" {
		if errs := validation.IsDNS1123Label(req.AppRepositoryResourceNamespace); len(errs) > 0 {
			return nil, nil, newError(http.StatusBadRequest, "invalid appRepositoryResourceNamespace: %s", errs[0])
		}
	}
	values, err := parseValues(req.Values)
	if err != nil {
		return nil, nil, newError(http.StatusBadRequest, "values: %v", err)
	}
	return &req, values, nil
}

// parseValues reads values as Helm reads a values file: a YAML mapping, or nothing.
func parseValues(s string) (map[string]any, error) {
	values := map[string]any{}
	if strings.TrimSpace(s) == "" {
		return values, nil
	}
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	switch m := v.(type) {
	case nil:
		return values, nil
	case map[string]any:
		return m, nil
	default:
		return nil, fmt.Errorf("a YAML mapping is required, got %T", v)
	}
}
