package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
)

// The chart both sides of the helm workloads install: one small ConfigMap, so that the row measures the
// release machinery (chart fetch, render, checks, release records) rather than a big apply.
const (
	benchChartName    = "bench-config"
	benchChartVersion = "0.1.0"
	benchChartValues  = "greeting: bench\n"
)

var benchChartFiles = map[string]string{
	"Chart.yaml":  "apiVersion: v2\nname: " + benchChartName + "\nversion: " + benchChartVersion + "\ntype: application\n",
	"values.yaml": "greeting: hello\n",
	"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
`,
}

// chartRepo is an in-process chart repository on loopback (index.yaml and the packaged chart), as `helm
// package` and `helm repo index` would lay it out. The proxy may fetch from it only with
// --allow-private-repositories.
type chartRepo struct {
	URL    string
	server *httptest.Server
}

// startChartRepo packages the bench chart into dir and serves it until stop.
func startChartRepo(dir string) (*chartRepo, error) {
	src := filepath.Join(dir, "src", benchChartName)
	for name, content := range benchChartFiles {
		path := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("chart source: %w", err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("chart source: %w", err)
		}
	}
	ch, err := loader.LoadDir(src)
	if err != nil {
		return nil, fmt.Errorf("load bench chart: %w", err)
	}
	served := filepath.Join(dir, "served")
	if err := os.MkdirAll(served, 0o755); err != nil {
		return nil, fmt.Errorf("chart repository: %w", err)
	}
	if _, err := chartutil.Save(ch, served); err != nil {
		return nil, fmt.Errorf("package bench chart: %w", err)
	}
	index, err := repov1.IndexDirectory(served, "")
	if err != nil {
		return nil, fmt.Errorf("index bench chart: %w", err)
	}
	if err := index.WriteFile(filepath.Join(served, "index.yaml"), 0o644); err != nil {
		return nil, fmt.Errorf("index bench chart: %w", err)
	}
	files := http.FileServer(http.Dir(served))
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/index.yaml" && !strings.HasSuffix(r.URL.Path, ".tgz") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
	return &chartRepo{URL: server.URL, server: server}, nil
}

func (r *chartRepo) stop() { r.server.Close() }
