// Package helmrepo fetches chart repository indexes and chart archives over HTTP(S) for the release and
// repository APIs, with the limits a server that fetches user-supplied URLs needs: bounded size and time, no
// loopback, private or link-local addresses unless allowed (checked on the dialled address), careful
// redirects, and the repository's Authorization header sent only to the repository's own origin.
package helmrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/klog/v2"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	repov1 "helm.sh/helm/v4/pkg/repo/v1"
)

var (
	// ErrNotFound: the chart, or the requested version of it, is not in the repository's index.
	ErrNotFound = errors.New("chart not found in repository index")
	// ErrForbiddenAddress: the repository (or a redirect) resolves to an address that is refused.
	ErrForbiddenAddress = errors.New("repository address refused")
	// ErrTooLarge: the index or archive exceeds the configured size.
	ErrTooLarge = errors.New("repository response too large")
	// ErrDigestMismatch: the archive's sha256 differs from the index digest.
	ErrDigestMismatch = errors.New("chart digest mismatch")
	// ErrInvalidURL: the repository or chart URL is not an absolute http(s) URL without credentials.
	ErrInvalidURL = errors.New("invalid repository URL")
)

const (
	defaultTimeout       = 30 * time.Second
	defaultMaxIndexBytes = 32 << 20
	defaultMaxChartBytes = 20 << 20
	defaultIndexTTL      = time.Minute
	maxRedirects         = 5
	// maxCachedIndexes bounds memory: each entry may hold up to MaxIndexBytes of parsed index.
	maxCachedIndexes = 64
)

// Options configures a Fetcher. Zero values take the defaults.
type Options struct {
	AllowPrivate  bool          // --allow-private-repositories: allow loopback, private, link-local addresses
	Timeout       time.Duration // per fetch; default 30s
	MaxIndexBytes int64         // default 32 MiB
	MaxChartBytes int64         // default 20 MiB
	IndexTTL      time.Duration // index cache; default 1m
}

// Repository is where to fetch from, with the credentials of the AppRepository that named it.
type Repository struct {
	URL        string // https:// or http:// base URL of the repository (index.yaml lives under it)
	AuthHeader string // full Authorization header value, or ""
	CAPEM      []byte // extra CA bundle, or nil
}

// Fetcher fetches indexes (cached for IndexTTL) and charts. Safe for concurrent use.
type Fetcher struct {
	opts      Options
	transport *http.Transport // shared by repositories without their own CA

	flight singleflight.Group
	mu     sync.Mutex
	cache  map[string]cachedIndex
	now    func() time.Time
}

type cachedIndex struct {
	index   *repov1.IndexFile
	expires time.Time
}

// New returns a Fetcher with opts, defaults filled in.
func New(opts Options) *Fetcher {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MaxIndexBytes <= 0 {
		opts.MaxIndexBytes = defaultMaxIndexBytes
	}
	if opts.MaxChartBytes <= 0 {
		opts.MaxChartBytes = defaultMaxChartBytes
	}
	if opts.IndexTTL <= 0 {
		opts.IndexTTL = defaultIndexTTL
	}
	f := &Fetcher{opts: opts, cache: map[string]cachedIndex{}, now: time.Now}
	f.transport = f.newTransport(nil)
	return f
}

func (f *Fetcher) newTransport(tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		// No Proxy: through an HTTP proxy the guarded dial would reach the proxy, not the repository.
		Proxy:                  nil,
		DialContext:            newDialer(f.opts).DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    f.opts.Timeout,
		ResponseHeaderTimeout:  f.opts.Timeout,
		MaxResponseHeaderBytes: 1 << 20,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           32,
		IdleConnTimeout:        90 * time.Second,
	}
}

// CheckURL reports whether raw is a repository or chart URL the Fetcher accepts: absolute http or https,
// with a host and without user information (credentials belong in the AppRepository's auth Secret).
func CheckURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%w: scheme must be https or http", ErrInvalidURL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: credentials in the URL are not accepted", ErrInvalidURL)
	}
	return u, nil
}

// Index fetches (or serves from a short cache) the repository's index.yaml. The returned index is shared
// between callers and must not be modified.
func (f *Fetcher) Index(ctx context.Context, r Repository) (*repov1.IndexFile, error) {
	if _, err := parseURL(r.URL); err != nil {
		return nil, err
	}
	key := cacheKey(r)
	if idx, ok := f.cached(key); ok {
		return idx, nil
	}
	// Concurrent requests for one index share one fetch. It runs without the first caller's cancellation
	// (others wait on it) but stays bounded by Timeout.
	shared := context.WithoutCancel(ctx)
	ch := f.flight.DoChan(key, func() (any, error) {
		idx, err := f.fetchIndex(shared, r)
		if err != nil {
			return nil, err
		}
		f.store(key, idx)
		return idx, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*repov1.IndexFile), nil
	}
}

func (f *Fetcher) fetchIndex(ctx context.Context, r Repository) (*repov1.IndexFile, error) {
	indexURL, err := repov1.ResolveReferenceURL(r.URL, "index.yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	data, err := f.get(ctx, r, indexURL, f.opts.MaxIndexBytes)
	if err != nil {
		return nil, err
	}
	return loadIndex(data)
}

// loadIndex parses and validates an index with Helm's own loader. Helm exports it only for files (its
// byte-level loadIndex is private), hence the temporary file.
func loadIndex(data []byte) (*repov1.IndexFile, error) {
	tmp, err := os.CreateTemp("", "helmrepo-index-*.yaml")
	if err != nil {
		return nil, fmt.Errorf("storing repository index: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("storing repository index: %w", werr)
	}
	idx, err := repov1.LoadIndexFile(tmp.Name())
	if err != nil {
		// Helm's message names the temporary file; say what it is instead.
		if cause := errors.Unwrap(err); cause != nil {
			err = cause
		}
		return nil, fmt.Errorf("invalid repository index: %w", err)
	}
	return idx, nil
}

// Chart resolves name and version ("" = latest stable) in the index, downloads the archive (relative or
// absolute URL from the index), verifies its sha256 against the index digest when the index has one, and
// loads it.
func (f *Fetcher) Chart(ctx context.Context, r Repository, name, version string) (*chart.Chart, error) {
	idx, err := f.Index(ctx, r)
	if err != nil {
		return nil, err
	}
	cv, err := idx.Get(name, version)
	if err != nil {
		return nil, fmt.Errorf("%w: %s version %q: %v", ErrNotFound, name, version, err)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("invalid repository index: chart %s %s has no URL", name, cv.Version)
	}
	chartURL, err := repov1.ResolveReferenceURL(r.URL, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%w: chart URL: %v", ErrInvalidURL, err)
	}
	data, err := f.get(ctx, r, chartURL, f.opts.MaxChartBytes)
	if err != nil {
		return nil, err
	}
	if cv.Digest != "" {
		sum := sha256.Sum256(data)
		if want := strings.TrimPrefix(cv.Digest, "sha256:"); !strings.EqualFold(hex.EncodeToString(sum[:]), want) {
			return nil, fmt.Errorf("%w: %s %s", ErrDigestMismatch, name, cv.Version)
		}
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("loading chart %s %s: %w", name, cv.Version, err)
	}
	// The archive must be the chart the index promised, not whatever the URL served.
	if ch.Metadata == nil || ch.Metadata.Name != name || ch.Metadata.Version != cv.Version {
		return nil, fmt.Errorf("chart archive for %s %s contains another chart", name, cv.Version)
	}
	return ch, nil
}

// get fetches rawURL within Timeout and at most limit bytes. The repository's Authorization header goes
// only to the repository's own origin (scheme, host and port).
func (f *Fetcher) get(ctx context.Context, r Repository, rawURL string, limit int64) ([]byte, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	repoURL, err := parseURL(r.URL)
	if err != nil {
		return nil, err
	}
	client, cleanup, err := f.client(r.CAPEM)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	req.Header.Set("User-Agent", "tenant-proxy")
	if r.AuthHeader != "" && sameOrigin(u, repoURL) {
		req.Header.Set("Authorization", r.AuthHeader)
	}
	where := safeURL(u)
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the URL with its query; keep only the cause (errors.Is still sees it).
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		klog.V(4).InfoS("Chart repository fetch failed", "url", where, "err", err)
		return nil, fmt.Errorf("fetching %s: %w", where, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		klog.V(4).InfoS("Chart repository fetch refused", "url", where, "status", resp.StatusCode)
		return nil, fmt.Errorf("fetching %s: server answered %s", where, resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("fetching %s: %w: %d bytes, limit %d", where, ErrTooLarge, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", where, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("fetching %s: %w: limit %d bytes", where, ErrTooLarge, limit)
	}
	klog.V(4).InfoS("Chart repository fetch", "url", where, "bytes", len(data))
	return data, nil
}

// client returns an HTTP client trusting caPEM in addition to the system roots when given. A transport
// with its own CA is used for one fetch only, so no connection pool outlives it.
func (f *Fetcher) client(caPEM []byte) (*http.Client, func(), error) {
	transport := f.transport
	cleanup := func() {}
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, nil, errors.New("repository CA bundle holds no PEM certificate")
		}
		transport = f.newTransport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		cleanup = transport.CloseIdleConnections
	}
	return &http.Client{Transport: transport, CheckRedirect: checkRedirect}, cleanup, nil
}

// checkRedirect follows at most maxRedirects redirects, never to another scheme (http to https excepted),
// and drops the Authorization header as soon as a redirect leaves the first request's origin. The dial
// guard still checks every address the redirects reach.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	prev := via[len(via)-1].URL
	if req.URL.Scheme != prev.Scheme && !(prev.Scheme == "http" && req.URL.Scheme == "https") {
		return fmt.Errorf("%w: redirect from %s to %s refused", ErrInvalidURL, prev.Scheme, req.URL.Scheme)
	}
	if req.URL.User != nil {
		return fmt.Errorf("%w: redirect to a URL with credentials refused", ErrInvalidURL)
	}
	if !sameOrigin(req.URL, via[0].URL) {
		req.Header.Del("Authorization")
	}
	return nil
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// safeURL is u for logs and errors: no query or fragment, which may carry tokens.
func safeURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// cacheKey identifies an index by everything that may change what the server answers, the credentials
// included, so one caller never gets an index fetched with another's credentials. Hashed, so the cache
// holds no credential.
func cacheKey(r Repository) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(r.URL), []byte(r.AuthHeader), r.CAPEM} {
		_, _ = fmt.Fprintf(h, "%d:", len(part))
		_, _ = h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (f *Fetcher) cached(key string) (*repov1.IndexFile, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.cache[key]
	if !ok || !f.now().Before(e.expires) {
		return nil, false
	}
	return e.index, true
}

func (f *Fetcher) store(key string, idx *repov1.IndexFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for k, e := range f.cache {
		if !now.Before(e.expires) {
			delete(f.cache, k)
		}
	}
	for k := range f.cache {
		if len(f.cache) < maxCachedIndexes {
			break
		}
		delete(f.cache, k) // arbitrary eviction: all entries are younger than IndexTTL anyway
	}
	f.cache[key] = cachedIndex{index: idx, expires: now.Add(f.opts.IndexTTL)}
}
