package webserver

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
	"github.com/tenant-proxy/tenant-proxy/internal/modules"
)

// forwardingModule takes requests for the path it names and lets the API server answer them through
// req.Forward, as a module does for the requests it makes as the caller.
type forwardingModule struct{ path string }

func (forwardingModule) Name() string { return "forwarding" }

func (m forwardingModule) Intercept(req modules.Request) http.Handler {
	if req.HTTP.URL.Path != m.path {
		return nil
	}
	return req.Forward
}

// TestAuditIDOfForwardedRequests: a request forwarded whole goes without an Audit-ID, and the API server's
// becomes the one the client sees and the audit record keeps; a module's request carries the proxy's; when
// the upstream gives no usable one, or cannot be reached, the proxy's stays. In every case the client gets
// exactly one Audit-Id and the record has the same.
func TestAuditIDOfForwardedRequests(t *testing.T) {
	const modulePath = "/api/v1/namespaces/team/configmaps/by-module"
	for _, tc := range []struct {
		name       string
		path       string
		upstreamID []string // the Audit-Id values the upstream answers with
		down       bool     // the upstream cannot be reached
		wantSent   bool     // the proxy's Audit-ID goes upstream
		wantID     string   // the client's and the record's; "" means the proxy's own (the one sent, if any)
		wantCode   int
	}{
		{name: "forwarded: the API server's", path: "/api/v1/namespaces/team/configmaps/one", upstreamID: []string{"api-server-id"}, wantID: "api-server-id", wantCode: http.StatusOK},
		{name: "forwarded, upstream sends none", path: "/api/v1/namespaces/team/configmaps/one", wantCode: http.StatusOK},
		{name: "forwarded, upstream sends two", path: "/api/v1/namespaces/team/configmaps/one", upstreamID: []string{"a", "b"}, wantCode: http.StatusOK},
		{name: "forwarded, aggregated API echoes it", path: "/apis/metrics.k8s.io/v1beta1/nodes", upstreamID: []string{"api-server-id", "api-server-id"}, wantID: "api-server-id", wantCode: http.StatusOK},
		{name: "forwarded, upstream sends an odd one", path: "/api/v1/namespaces/team/configmaps/one", upstreamID: []string{"a b;c"}, wantCode: http.StatusOK},
		{name: "forwarded, upstream sends a long one", path: "/api/v1/namespaces/team/configmaps/one", upstreamID: []string{strings.Repeat("x", maxAuditIDLength+1)}, wantCode: http.StatusOK},
		{name: "forwarded, upstream down", path: "/api/v1/namespaces/team/configmaps/one", down: true, wantCode: http.StatusServiceUnavailable},
		{name: "module's request: the proxy's", path: modulePath, upstreamID: []string{"api-server-id"}, wantSent: true, wantCode: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var sent []string
			upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				sent = append(sent, r.Header.Values("Audit-Id")...)
				mu.Unlock()
				w.Header()["Audit-Id"] = tc.upstreamID
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"kind":"ConfigMap","apiVersion":"v1"}`)
			}))
			upstream.EnableHTTP2 = true
			upstream.StartTLS()
			defer upstream.Close()
			host := upstream.URL
			if tc.down {
				upstream.Close()
			}

			forwarder, err := NewForwarder(&rest.Config{Host: host, BearerToken: "proxy-token", QPS: -1,
				TLSClientConfig: rest.TLSClientConfig{Insecure: true}}, nil, newMetrics().upstreamErrors)
			if err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(t.TempDir(), "audit.log")
			logger, err := audit.Open(logPath)
			if err != nil {
				t.Fatal(err)
			}
			caller := &user.DefaultInfo{Name: "alice", Groups: []string{"system:authenticated"}}
			proxyURL, client := serveTestChain(t, caller, forwarder, logger, []modules.Module{forwardingModule{path: modulePath}})
			resp, err := client.Get(proxyURL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err := logger.Close(); err != nil {
				t.Fatal(err)
			}

			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			got := resp.Header.Values("Audit-Id")
			if len(got) != 1 || got[0] == "" {
				t.Fatalf("client got Audit-Id %q, want exactly one", got)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tc.wantSent && (len(sent) != 1 || sent[0] != got[0]):
				t.Errorf("upstream got Audit-Id %q, want the proxy's %q", sent, got[0])
			case !tc.wantSent && len(sent) != 0:
				t.Errorf("upstream got Audit-Id %q, want none", sent)
			}
			if tc.wantID != "" && got[0] != tc.wantID {
				t.Errorf("client got Audit-Id %q, want %q", got[0], tc.wantID)
			}
			if tc.wantID == "" && len(tc.upstreamID) > 0 && got[0] == tc.upstreamID[0] {
				t.Errorf("client got the upstream's unusable Audit-Id %q", got[0])
			}
			if records := recordIDs(t, logPath); len(records) != 1 || records[0] != got[0] {
				t.Errorf("audit records %q, want one with the client's Audit-Id %q", records, got[0])
			}
		})
	}
}

func recordIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(s.Bytes(), &rec); err != nil {
			t.Fatalf("audit record %q: %v", s.Text(), err)
		}
		ids = append(ids, rec.AuditID)
	}
	return ids
}
