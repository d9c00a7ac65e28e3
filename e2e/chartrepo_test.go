package e2e

import (
	"crypto/subtle"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
)

// In-process chart repositories for the release and repository API tests, served on loopback (the suite's
// proxy runs with --allow-private-repositories so it may fetch from them).
//
//	url := serveTestCharts(t, []testChart{{Name: "demo", Version: "0.1.0", Files: map[string]string{
//		"templates/cm.yaml": "...", "values.yaml": "...", "crds/x.yaml": "..."}}})
//
// startChartRepo does the same with options (TLS with its own CA, a required Authorization header) and
// returns the repository, which also counts the requests it served.

// testChart is one chart of a test repository: Chart.yaml is made from Name and Version; Files maps paths
// inside the chart (templates/..., crds/..., values.yaml) to their content.
type testChart struct {
	Name, Version string
	Files         map[string]string
}

// chartRepoOptions shape a test repository.
type chartRepoOptions struct {
	// TLS serves https with a certificate of its own; its CA is chartRepo.CAPEM.
	TLS bool
	// AuthHeader, when set, is the Authorization header every request must carry (401 otherwise).
	AuthHeader string
}

// chartRepo is a running test repository: index.yaml and the packaged charts at its URL.
type chartRepo struct {
	URL   string
	CAPEM []byte // the TLS server's certificate, for TLS repositories

	mu       sync.Mutex
	requests map[string]int // path -> requests served (whatever the answer)
}

// serveTestCharts packages charts with the Helm SDK and serves them over plain HTTP on loopback until the
// test ends; it returns the repository URL.
func serveTestCharts(t *testing.T, charts []testChart) string {
	t.Helper()
	return startChartRepo(t, chartRepoOptions{}, charts...).URL
}

// startChartRepo packages charts as `helm package` does, indexes them as `helm repo index` does, and serves
// the directory until the test ends.
func startChartRepo(t *testing.T, opts chartRepoOptions, charts ...testChart) *chartRepo {
	t.Helper()
	dir := t.TempDir()
	for _, c := range charts {
		packageTestChart(t, c, dir)
	}
	index, err := repov1.IndexDirectory(dir, "")
	if err != nil {
		t.Fatalf("indexing test charts: %v", err)
	}
	index.SortEntries()
	if err := index.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := &chartRepo{requests: map[string]int{}}
	files := http.FileServer(http.Dir(dir))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo.mu.Lock()
		repo.requests[r.URL.Path]++
		repo.mu.Unlock()
		if opts.AuthHeader != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(opts.AuthHeader)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/index.yaml" && !strings.HasSuffix(r.URL.Path, ".tgz") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	var server *httptest.Server
	if opts.TLS {
		server = httptest.NewTLSServer(handler)
		repo.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})
	} else {
		server = httptest.NewServer(handler)
	}
	t.Cleanup(server.Close)
	repo.URL = server.URL
	return repo
}

// packageTestChart writes c as a chart directory and packages it into dir.
func packageTestChart(t *testing.T, c testChart, dir string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), c.Name)
	files := map[string]string{"Chart.yaml": "apiVersion: v2\nname: " + c.Name + "\nversion: " + c.Version + "\ntype: application\n"}
	for name, content := range c.Files {
		files[name] = content
	}
	for name, content := range files {
		path := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := loader.LoadDir(src)
	if err != nil {
		t.Fatalf("loading test chart %s: %v", c.Name, err)
	}
	if _, err := chartutil.Save(ch, dir); err != nil {
		t.Fatalf("packaging test chart %s: %v", c.Name, err)
	}
}

// served is how many requests the repository got for path ("/index.yaml", "/demo-0.1.0.tgz").
func (r *chartRepo) served(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}
