package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// kubectl runs the real kubectl as id through the proxy.
func kubectl(t *testing.T, id *identity, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return env.cluster.Kubectl(ctx, id.proxyKubeconfig, args...)
}

// auditEvent is the part of kube-apiserver's audit event that says what it received.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string              `json:"username"`
		UID      string              `json:"uid"`
		Groups   []string            `json:"groups"`
		Extra    map[string][]string `json:"extra"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string              `json:"username"`
		UID      string              `json:"uid"`
		Groups   []string            `json:"groups"`
		Extra    map[string][]string `json:"extra"`
	} `json:"impersonatedUser"`
	// AuthenticationMetadata.ImpersonationConstraint is the constrained impersonation verb the API server
	// authorised the impersonation with; empty for legacy impersonation.
	AuthenticationMetadata *struct {
		ImpersonationConstraint string `json:"impersonationConstraint"`
	} `json:"authenticationMetadata"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	ObjectRef *struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
}

// apiServerEvents returns the API server's audit events carrying auditID (a forwarded request's is the one the
// API server assigned; a module's requests carry the proxy's). The API server writes events in blocking mode;
// a short poll covers the response race.
func apiServerEvents(t *testing.T, auditID string, wantAtLeast int) []auditEvent {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		events := readAuditEvents(t, func(e auditEvent) bool { return e.AuditID == auditID })
		if len(events) >= wantAtLeast || time.Now().After(deadline) {
			return events
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readAuditEvents(t *testing.T, keep func(auditEvent) bool) []auditEvent {
	t.Helper()
	f, err := os.Open(env.cluster.AuditLog)
	if err != nil {
		t.Fatalf("open API server audit log: %v", err)
	}
	defer f.Close()
	var events []auditEvent
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var e auditEvent
		if json.Unmarshal(scanner.Bytes(), &e) == nil && keep(e) {
			events = append(events, e)
		}
	}
	return events
}

// rawClient returns an HTTP/1.1 client to the proxy that presents id's client certificate, if it has one,
// but adds no Authorization header: tests set every header themselves. HTTP/1.1 because Connection and
// Upgrade headers, the attacks tested with it, exist only there (kubectl covers HTTP/2).
func rawClient(t *testing.T, id *identity) *http.Client {
	t.Helper()
	cfg := rest.CopyConfig(id.proxyConfig)
	cfg.BearerToken = ""
	cfg.NextProtos = []string{"http/1.1"}
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends one request to the proxy and returns status, Audit-Id and body.
func do(t *testing.T, client *http.Client, method, path string, header http.Header, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, env.proxy.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ids := resp.Header.Values("Audit-Id"); len(ids) > 1 {
		t.Errorf("%s %s: Audit-Id %q, want one", method, path, ids)
	}
	return resp.StatusCode, resp.Header.Get("Audit-Id"), string(data)
}

// bearer returns the Authorization header of a token identity.
func bearer(id *identity) http.Header {
	if id.proxyConfig.BearerToken == "" {
		return http.Header{}
	}
	return http.Header{"Authorization": {"Bearer " + id.proxyConfig.BearerToken}}
}

// whoami is the API server's own answer (SelfSubjectReview) to "who is this request from".
type whoami struct {
	Status struct {
		UserInfo struct {
			Username string              `json:"username"`
			UID      string              `json:"uid"`
			Groups   []string            `json:"groups"`
			Extra    map[string][]string `json:"extra"`
		} `json:"userInfo"`
	} `json:"status"`
}

const selfSubjectReview = `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`

func parseWhoami(t *testing.T, body string) whoami {
	t.Helper()
	var w whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("SelfSubjectReview answer %q: %v", body, err)
	}
	return w
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func splitLines(data []byte) [][]byte {
	var lines [][]byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	return lines
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// upstreamMode is one proxy under test, with the suite's callers configured for it.
type upstreamMode struct {
	name       string
	frontProxy bool // identity goes upstream as front-proxy headers instead of Impersonate-*
	proxy      *testbed.Proxy
	users      map[string]*identity
}

// forEachUpstreamMode runs test as a subtest per mode, with env.proxy and env.users pointing at that mode's
// proxy and callers (tests do not run in parallel).
func forEachUpstreamMode(t *testing.T, test func(t *testing.T, m upstreamMode)) {
	t.Helper()
	for _, m := range env.modes {
		t.Run(m.name, func(t *testing.T) {
			proxy, users := env.proxy, env.users
			env.proxy, env.users = m.proxy, m.users
			defer func() { env.proxy, env.users = proxy, users }()
			test(t, m)
		})
	}
}

// upstreamUser checks that the API server received e from the proxy on behalf of user, the way m says who
// the caller is, and returns the identity it acted as: impersonated by the proxy's ServiceAccount, or
// authenticated directly from the front-proxy headers with no impersonation.
func (m upstreamMode) upstreamUser(t *testing.T, e auditEvent, user string) (name string, groups []string) {
	t.Helper()
	if m.frontProxy {
		if e.ImpersonatedUser != nil || e.User.Username != user {
			t.Fatalf("API server audit %s: user %+v, impersonated %+v; want %s from front-proxy headers, no impersonation", e.AuditID, e.User, e.ImpersonatedUser, user)
		}
		return e.User.Username, e.User.Groups
	}
	if e.User.Username != proxyServiceAccount || e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != user {
		t.Fatalf("API server audit %s: user %+v, impersonated %+v; want the proxy impersonating %s", e.AuditID, e.User, e.ImpersonatedUser, user)
	}
	return e.ImpersonatedUser.Username, e.ImpersonatedUser.Groups
}
