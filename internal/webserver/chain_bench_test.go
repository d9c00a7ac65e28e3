package webserver

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
	"github.com/tenant-proxy/tenant-proxy/internal/modules"
)

// BenchmarkPassthroughGET measures one forwarded GET through the whole filter chain, over TLS and HTTP/2 on
// both legs, against an in-process upstream that answers like the API server does for a small object. The
// client and the upstream run in the same process, so compare ns/op and allocs/op between versions, not
// with the bench's numbers.
func BenchmarkPassthroughGET(b *testing.B) {
	for _, mode := range []struct {
		name       string
		frontProxy frontProxyHeaders
		groups     int
		noAuditLog bool // what the audit log costs, against "impersonation"
	}{
		{"impersonation", nil, 2, false},
		{"impersonation-no-audit-log", nil, 2, true},
		{"front-proxy", defaultHeaders, 2, false},
		{"impersonation-200-groups", nil, 200, false},
		{"front-proxy-200-groups", defaultHeaders, 200, false},
	} {
		b.Run(mode.name, func(b *testing.B) {
			body := `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"target"},"data":{"config.yaml":"` + strings.Repeat(`key: value\n`, 90) + `"}}`
			upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				id := r.Header.Get("Audit-Id")
				if id == "" { // as kube-apiserver does
					id = uuid.NewString()
				}
				w.Header().Set("Audit-Id", id)
				_, _ = io.WriteString(w, body)
			}))
			upstream.EnableHTTP2 = true
			upstream.StartTLS()
			defer upstream.Close()

			cfg := &rest.Config{Host: upstream.URL, BearerToken: "proxy-token-" + strings.Repeat("x", 900), QPS: -1, // a ServiceAccount JWT is about 1 KiB
				TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
			forwarder, err := NewForwarder(cfg, nil, newMetrics().upstreamErrors)
			if err != nil {
				b.Fatal(err)
			}
			if mode.frontProxy != nil { // the same upstream, reading identity from front-proxy headers
				forwarder.frontProxy, forwarder.headers = &forwarder.impersonating, mode.frontProxy
				for _, leg := range []*upstreamLeg{forwarder.frontProxy.ordinary, forwarder.frontProxy.wide} {
					leg.transport.(*identityRoundTripper).frontProxy = mode.frontProxy
				}
			}
			var logger *audit.Logger // nil writes no audit log
			if !mode.noAuditLog {
				if logger, err = audit.Open(filepath.Join(b.TempDir(), "audit.log")); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = logger.Close() }()
			}
			groups := []string{"system:authenticated"}
			for i := 1; i < mode.groups; i++ {
				groups = append(groups, "bench-group-"+strings.Repeat("x", i%7)+string(rune('a'+i%26)))
			}
			caller := &user.DefaultInfo{Name: "bencher", Groups: groups}
			proxyURL, client := serveTestChain(b, caller, forwarder, logger, nil)
			url := proxyURL + "/api/v1/namespaces/bench/configmaps/target"
			get := func() {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
				req.Header.Set("Accept", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
					b.Fatalf("%s %s", resp.Proto, resp.Status)
				}
			}
			get()
			b.ReportAllocs()
			b.ResetTimer()
			cpuBefore := processCPU(b)
			for range b.N {
				get()
			}
			// CPU time is what the bench's ratios are made of; wall time per op also counts waiting.
			b.ReportMetric(float64(processCPU(b)-cpuBefore)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the user and system time this process has used so far: client, proxy and upstream.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serveTestChain serves the whole filter chain over TLS and HTTP/2, with every request authenticated as
// caller, and returns its URL and a client for it; the server stops with the test.
func serveTestChain(tb testing.TB, caller user.Info, forwarder *Forwarder, logger *audit.Logger, mods []modules.Module) (string, *http.Client) {
	c := &chain{
		authenticator: authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
			return &authenticator.Response{User: caller}, true, nil
		}),
		maxImpersonationValues: 64,
		modules:                mods,
		forwarder:              forwarder,
		audit:                  logger,
		metrics:                newMetrics(),
	}
	proxy := httptest.NewUnstartedServer(c.handler())
	proxy.EnableHTTP2 = true
	proxy.StartTLS()
	tb.Cleanup(proxy.Close)
	return proxy.URL, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
}
