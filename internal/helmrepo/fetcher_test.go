package helmrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
)

// packageChart builds a one-template chart archive with the Helm SDK.
func packageChart(t *testing.T, name, version string) []byte {
	t.Helper()
	c := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version},
		Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte(
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n")}},
	}
	path, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// indexYAML is an index with one entry per chart: name, version, url, digest.
func indexYAML(t *testing.T, entries ...[4]string) []byte {
	t.Helper()
	idx := repov1.NewIndexFile()
	for _, e := range entries {
		idx.Entries[e[0]] = append(idx.Entries[e[0]], &repov1.ChartVersion{
			Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: e[0], Version: e[1]},
			URLs:     []string{e[2]}, Digest: e[3],
		})
	}
	data, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// repoServer serves path -> body, counts requests per path and records the Authorization headers it saw.
type repoServer struct {
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	auth  []string
	delay time.Duration
	// redirectTo, when set, answers /redirect/<path> with a redirect to redirectTo/<path>.
	redirectTo string
	// chunked sends bodies without Content-Length, so only the reader's limit can stop them.
	chunked bool
	server  *httptest.Server
}

func newRepoServer(t *testing.T, tlsServer bool) *repoServer {
	rs := &repoServer{files: map[string][]byte{}, hits: map[string]int{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.hits[r.URL.Path]++
		if a := r.Header.Get("Authorization"); a != "" {
			rs.auth = append(rs.auth, r.URL.Path+" "+a)
		}
		body, ok := rs.files[r.URL.Path]
		delay, redirectTo, chunked := rs.delay, rs.redirectTo, rs.chunked
		rs.mu.Unlock()
		if rest, found := strings.CutPrefix(r.URL.Path, "/redirect"); found && redirectTo != "" {
			http.Redirect(w, r, redirectTo+rest, http.StatusFound)
			return
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		if chunked {
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write(body)
	})
	if tlsServer {
		rs.server = httptest.NewTLSServer(h)
	} else {
		rs.server = httptest.NewServer(h)
	}
	t.Cleanup(rs.server.Close)
	return rs
}

func (rs *repoServer) set(path string, body []byte) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.files[path] = body
}

func (rs *repoServer) count(path string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.hits[path]
}

func (rs *repoServer) authSeen() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.auth...)
}

func TestChart(t *testing.T) {
	archive := packageChart(t, "demo", "1.0.0")
	newer := packageChart(t, "demo", "1.1.0")
	other := packageChart(t, "other", "1.0.0")
	abs := newRepoServer(t, false) // a second origin for absolute chart URLs
	abs.set("/elsewhere/demo-1.0.0.tgz", archive)

	tests := []struct {
		name     string
		index    func(base string) []byte
		files    map[string][]byte
		opts     Options
		version  string
		wantErr  error  // errors.Is target, nil for success
		wantText string // substring of the error when wantErr is nil but an error is expected
		wantVer  string
	}{
		{
			name: "relative URL with digest",
			index: func(string) []byte {
				return indexYAML(t, [4]string{"demo", "1.0.0", "charts/demo-1.0.0.tgz", digest(archive)})
			},
			files:   map[string][]byte{"/repo/charts/demo-1.0.0.tgz": archive},
			wantVer: "1.0.0",
		},
		{
			name: "absolute URL on another origin",
			index: func(string) []byte {
				return indexYAML(t, [4]string{"demo", "1.0.0", abs.server.URL + "/elsewhere/demo-1.0.0.tgz", digest(archive)})
			},
			wantVer: "1.0.0",
		},
		{
			name: "latest stable when no version is asked",
			index: func(string) []byte {
				return indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}, [4]string{"demo", "1.1.0", "demo-1.1.0.tgz", ""},
					[4]string{"demo", "2.0.0-rc.1", "demo-2.0.0-rc.1.tgz", ""})
			},
			files:   map[string][]byte{"/repo/demo-1.0.0.tgz": archive, "/repo/demo-1.1.0.tgz": newer},
			wantVer: "1.1.0",
		},
		{
			name: "exact older version",
			index: func(string) []byte {
				return indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}, [4]string{"demo", "1.1.0", "demo-1.1.0.tgz", ""})
			},
			files:   map[string][]byte{"/repo/demo-1.0.0.tgz": archive, "/repo/demo-1.1.0.tgz": newer},
			version: "1.0.0",
			wantVer: "1.0.0",
		},
		{
			name:    "digest mismatch",
			index:   func(string) []byte { return indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", digest(newer)}) },
			files:   map[string][]byte{"/repo/demo-1.0.0.tgz": archive},
			wantErr: ErrDigestMismatch,
		},
		{
			name:    "version not in index",
			index:   func(string) []byte { return indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}) },
			version: "9.9.9",
			wantErr: ErrNotFound,
		},
		{
			name:    "chart not in index",
			index:   func(string) []byte { return indexYAML(t, [4]string{"other", "1.0.0", "other-1.0.0.tgz", ""}) },
			wantErr: ErrNotFound,
		},
		{
			name:     "archive holds another chart",
			index:    func(string) []byte { return indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}) },
			files:    map[string][]byte{"/repo/demo-1.0.0.tgz": other},
			wantText: "contains another chart",
		},
		{
			name:    "chart too big",
			index:   func(string) []byte { return indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}) },
			files:   map[string][]byte{"/repo/demo-1.0.0.tgz": archive},
			opts:    Options{MaxChartBytes: int64(len(archive)) - 1},
			wantErr: ErrTooLarge,
		},
		{
			name:     "archive missing",
			index:    func(string) []byte { return indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}) },
			wantText: "404",
		},
		{
			name:     "invalid index",
			index:    func(string) []byte { return []byte("<html>not an index</html>") },
			wantText: "invalid repository index",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRepoServer(t, false)
			base := rs.server.URL + "/repo"
			rs.set("/repo/index.yaml", tt.index(base))
			for p, b := range tt.files {
				rs.set(p, b)
			}
			opts := tt.opts
			opts.AllowPrivate = true
			got, err := New(opts).Chart(context.Background(), Repository{URL: base}, "demo", tt.version)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			case tt.wantText != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantText)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if got.Metadata.Name != "demo" || got.Metadata.Version != tt.wantVer || len(got.Templates) != 1 {
					t.Fatalf("chart = %s %s with %d templates, want demo %s with 1", got.Metadata.Name, got.Metadata.Version, len(got.Templates), tt.wantVer)
				}
			}
		})
	}
}

func TestIndexLimits(t *testing.T) {
	index := indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""})
	tests := []struct {
		name    string
		opts    Options
		delay   time.Duration
		chunked bool
		wantErr error
	}{
		{name: "private address allowed", opts: Options{AllowPrivate: true}},
		{name: "private address refused", opts: Options{}, wantErr: ErrForbiddenAddress},
		{name: "index too big", opts: Options{AllowPrivate: true, MaxIndexBytes: int64(len(index)) - 1}, wantErr: ErrTooLarge},
		{name: "index too big, without Content-Length", opts: Options{AllowPrivate: true, MaxIndexBytes: int64(len(index)) - 1}, chunked: true, wantErr: ErrTooLarge},
		{name: "index at the limit, without Content-Length", opts: Options{AllowPrivate: true, MaxIndexBytes: int64(len(index))}, chunked: true},
		{name: "index at the limit", opts: Options{AllowPrivate: true, MaxIndexBytes: int64(len(index))}},
		{name: "timeout", opts: Options{AllowPrivate: true, Timeout: 200 * time.Millisecond}, delay: 5 * time.Second, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRepoServer(t, false)
			rs.set("/index.yaml", index)
			rs.delay, rs.chunked = tt.delay, tt.chunked
			start := time.Now()
			idx, err := New(tt.opts).Index(context.Background(), Repository{URL: rs.server.URL})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				if tt.delay > 0 && time.Since(start) > tt.delay/2 {
					t.Fatalf("took %v, the timeout did not bound it", time.Since(start))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !idx.Has("demo", "1.0.0") {
				t.Fatalf("index lacks demo 1.0.0: %v", idx.Entries)
			}
		})
	}
}

func TestIndexCache(t *testing.T) {
	rs := newRepoServer(t, false)
	rs.set("/index.yaml", indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}))
	f := New(Options{AllowPrivate: true, IndexTTL: time.Minute})
	now := time.Now()
	f.now = func() time.Time { return now }
	repo := Repository{URL: rs.server.URL}

	steps := []struct {
		name     string
		advance  time.Duration
		repo     Repository
		wantHits int
	}{
		{name: "first fetch", repo: repo, wantHits: 1},
		{name: "cache hit within TTL", advance: 30 * time.Second, repo: repo, wantHits: 1},
		{name: "other credentials are not served from the cache", repo: Repository{URL: rs.server.URL, AuthHeader: "Bearer x"}, wantHits: 2},
		{name: "refetch after TTL", advance: 31 * time.Second, repo: repo, wantHits: 3},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if _, err := f.Index(context.Background(), s.repo); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := rs.count("/index.yaml"); got != s.wantHits {
			t.Fatalf("%s: index fetched %d times, want %d", s.name, got, s.wantHits)
		}
	}
}

func TestAuthHeaderStaysWithTheRepository(t *testing.T) {
	archive := packageChart(t, "demo", "1.0.0")
	other := newRepoServer(t, false)
	other.set("/demo-1.0.0.tgz", archive)
	other.set("/index.yaml", indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}))

	tests := []struct {
		name  string
		setup func(rs *repoServer) // configures the repository server
	}{
		{name: "absolute chart URL on another origin", setup: func(rs *repoServer) {
			rs.set("/index.yaml", indexYAML(t, [4]string{"demo", "1.0.0", other.server.URL + "/demo-1.0.0.tgz", ""}))
		}},
		{name: "redirect to another origin", setup: func(rs *repoServer) {
			rs.set("/index.yaml", indexYAML(t, [4]string{"demo", "1.0.0", "redirect/demo-1.0.0.tgz", ""}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newRepoServer(t, false)
			rs.redirectTo = other.server.URL
			tt.setup(rs)
			before := len(other.authSeen())
			_, err := New(Options{AllowPrivate: true}).Chart(context.Background(),
				Repository{URL: rs.server.URL, AuthHeader: "Bearer secret-token"}, "demo", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := rs.authSeen(); len(got) == 0 || got[0] != "/index.yaml Bearer secret-token" {
				t.Fatalf("repository saw Authorization %q, want it with the index", got)
			}
			if got := other.authSeen()[before:]; len(got) != 0 {
				t.Fatalf("other origin saw Authorization %q", got)
			}
			if other.count("/demo-1.0.0.tgz") == 0 {
				t.Fatal("the chart was not fetched from the other origin")
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	target := newRepoServer(t, false)
	target.set("/index.yaml", indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}))
	loops := 0
	tests := []struct {
		name     string
		location func(r *http.Request) string
		wantText string
	}{
		{name: "same scheme is followed", location: func(*http.Request) string { return target.server.URL + "/index.yaml" }},
		{name: "https to http is refused", location: func(*http.Request) string { return target.server.URL + "/index.yaml" }, wantText: "redirect from https to http refused"},
		{name: "to another scheme is refused", location: func(*http.Request) string { return "ftp://example.com/index.yaml" }, wantText: "redirect from http to ftp refused"},
		{name: "endless redirects stop", location: func(r *http.Request) string { loops++; return r.URL.Path }, wantText: "stopped after 5 redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tt.location(r), http.StatusFound)
			})
			var srv *httptest.Server
			var repo Repository
			if strings.HasPrefix(tt.name, "https") {
				srv = httptest.NewTLSServer(h)
				repo = Repository{URL: srv.URL, CAPEM: serverCA(srv)}
			} else {
				srv = httptest.NewServer(h)
				repo = Repository{URL: srv.URL}
			}
			defer srv.Close()
			_, err := New(Options{AllowPrivate: true}).Index(context.Background(), repo)
			assertErrorText(t, err, tt.wantText)
		})
	}
	if loops != 6 {
		t.Fatalf("the redirect loop was requested %d times, want 6 (the first request and 5 redirects)", loops)
	}
}

// assertErrorText: err is nil when want is "", else an error containing want.
func assertErrorText(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func serverCA(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func TestCustomCA(t *testing.T) {
	rs := newRepoServer(t, true)
	rs.set("/index.yaml", indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}))
	tests := []struct {
		name     string
		ca       []byte
		wantText string
	}{
		{name: "trusted with the repository CA", ca: serverCA(rs.server)},
		{name: "unknown authority without it", wantText: "certificate"},
		{name: "bundle without certificates", ca: []byte("not pem"), wantText: "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{AllowPrivate: true}).Index(context.Background(), Repository{URL: rs.server.URL, CAPEM: tt.ca})
			assertErrorText(t, err, tt.wantText)
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://charts.example.com/stable", true},
		{"http://charts.example.com", true},
		{"oci://registry.example.com/charts", false},
		{"file:///etc/passwd", false},
		{"https://user:pass@charts.example.com", false},
		{"charts.example.com/stable", false},
		{"https://", false},
		{"https://:443/", false},
	}
	for _, tt := range tests {
		err := CheckURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidURL) {
			t.Errorf("CheckURL(%q) = %v, not ErrInvalidURL", tt.url, err)
		}
	}
}

func TestForbiddenAddress(t *testing.T) {
	tests := []struct {
		addr    string
		refused bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"fe80::1", true},
		{"fc00::1", true},
		{"0.0.0.0", true},
		{"::", true},
		{"224.0.0.1", true},
		{"ff02::1", true},
		{"100.64.0.1", true},
		{"255.255.255.255", true},
		{"64:ff9b::a00:1", true}, // NAT64 of 10.0.0.1
		{"2002:a00:1::", true},   // 6to4 of 10.0.0.1
		{"8.8.8.8", false},
		{"140.82.112.3", false},
		{"2606:4700::1111", false},
	}
	for _, tt := range tests {
		got := forbiddenAddress(netip.MustParseAddr(tt.addr)) != ""
		if got != tt.refused {
			t.Errorf("forbiddenAddress(%s) refused=%v, want %v", tt.addr, got, tt.refused)
		}
	}
}

// The dial guard sees the resolved address: a host name that resolves to loopback is refused too.
func TestDialGuardResolvesNames(t *testing.T) {
	rs := newRepoServer(t, false)
	rs.set("/index.yaml", indexYAML(t, [4]string{"demo", "1.0.0", "demo-1.0.0.tgz", ""}))
	url := strings.Replace(rs.server.URL, "127.0.0.1", "localhost", 1)
	_, err := New(Options{}).Index(context.Background(), Repository{URL: url})
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("error = %v, want ErrForbiddenAddress", err)
	}
	if rs.count("/index.yaml") != 0 {
		t.Fatal("the refused server was reached")
	}
}

func TestFlags(t *testing.T) {
	var o Options
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--allow-private-repositories", "--repository-timeout=5s", "--repository-max-chart-bytes=1024"}); err != nil {
		t.Fatal(err)
	}
	want := Options{AllowPrivate: true, Timeout: 5 * time.Second, MaxIndexBytes: defaultMaxIndexBytes, MaxChartBytes: 1024, IndexTTL: defaultIndexTTL}
	if o != want {
		t.Fatalf("options = %+v, want %+v", o, want)
	}
}
