package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// These tests cover ../shared/SECURITY.md. Each asserts what the API server really received: its answer to
// SelfSubjectReview (who it thinks is asking) and its audit log (the identity and the Audit-ID the proxy sent).

// TestIdentityHeadersFromClientsAreNeverTrusted: X-Remote-*, forwarding and Audit-ID headers from a client
// are dropped; the API server sees exactly the authenticated caller.
func TestIdentityHeadersFromClientsAreNeverTrusted(t *testing.T) {
	forged := []struct {
		name   string
		header http.Header
	}{
		{"front-proxy headers", http.Header{"X-Remote-User": {"admin"}, "X-Remote-Group": {"system:masters"}, "X-Remote-Extra-Scopes": {"all"}, "X-Remote-Uid": {"0"}}},
		{"front-proxy headers, lower case and repeated", http.Header{"x-remote-user": {"admin", "root"}, "x-remote-group": {"system:masters", "system:masters"}}},
		{"forwarding headers", http.Header{"X-Forwarded-For": {"10.0.0.1"}, "X-Forwarded-Client-Cert": {"Subject=\"CN=admin\""}, "Forwarded": {"for=10.0.0.1"}, "X-Forwarded-User": {"admin"}}},
		{"audit id", http.Header{"Audit-Id": {"forged-audit-id"}}},
		{"Connection names the identity headers", http.Header{"Connection": {"Impersonate-User, Impersonate-Group, Authorization"}}},
		{"Connection with odd spacing and case", http.Header{"Connection": {" impersonate-user ,IMPERSONATE-GROUP,  audit-id"}}},
	}
	forEachUpstreamMode(t, func(t *testing.T, m upstreamMode) {
		for _, short := range []string{"alice", "robot"} {
			id := env.users[short]
			for _, tt := range forged {
				t.Run(short+"/"+tt.name, func(t *testing.T) {
					header := bearer(id)
					for k, v := range tt.header {
						header[k] = v
					}
					header.Set("Content-Type", "application/json")
					status, auditID, body := do(t, rawClient(t, id), http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", header, selfSubjectReview)
					if status != http.StatusCreated {
						t.Fatalf("SelfSubjectReview = %d %s", status, body)
					}
					w := parseWhoami(t, body)
					if w.Status.UserInfo.Username != id.name || contains(w.Status.UserInfo.Groups, "system:masters") || len(w.Status.UserInfo.Extra["scopes"]) > 0 {
						t.Fatalf("API server saw %+v, want exactly %s", w.Status.UserInfo, id.name)
					}
					events := apiServerEvents(t, auditID, 1)
					if len(events) != 1 {
						t.Fatalf("API server audit for %s: %+v", auditID, events)
					}
					if _, groups := m.upstreamUser(t, events[0], id.name); contains(groups, "system:masters") {
						t.Fatalf("API server acted with groups %v", groups)
					}
				})
			}
		}
	})
}

// TestHTTP10ConnectionHeaderCannotStripIdentity sends a raw HTTP/1.0 request whose Connection header names
// the identity headers the proxy sets.
func TestHTTP10ConnectionHeaderCannotStripIdentity(t *testing.T) {
	forEachUpstreamMode(t, testHTTP10ConnectionHeaderCannotStripIdentity)
}

func testHTTP10ConnectionHeaderCannotStripIdentity(t *testing.T, _ upstreamMode) {
	id := env.users["robot"]
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(mustRead(env.proxy.CAFile)))
	conn, err := tls.Dial("tcp", strings.TrimPrefix(env.proxy.URL, "https://"), &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	body := selfSubjectReview
	fmt.Fprintf(conn, "POST /apis/authentication.k8s.io/v1/selfsubjectreviews HTTP/1.0\r\nHost: proxy\r\nAuthorization: Bearer %s\r\n"+
		"Connection: Impersonate-User, Impersonate-Group, Impersonate-Uid, X-Remote-User, X-Remote-Group, X-Remote-Uid\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		id.proxyConfig.BearerToken, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("HTTP/1.0 SelfSubjectReview = %d %s", resp.StatusCode, sb.String())
	}
	if w := parseWhoami(t, sb.String()); w.Status.UserInfo.Username != id.name {
		t.Fatalf("API server saw %q, want %q", w.Status.UserInfo.Username, id.name)
	}
}

// TestNoIdentityNoRequest: every missing, malformed or rejected credential is a 401 and nothing is sent
// upstream.
func TestNoIdentityNoRequest(t *testing.T) {
	robot := env.users["robot"]
	wrongAudience, err := env.cluster.OIDC.TokenWithAudience("carol", []string{"ops"}, time.Hour, "someone-else")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := env.cluster.OIDC.Token("carol", []string{"ops"}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header http.Header
	}{
		{"no credentials", http.Header{}},
		{"bearer with only spaces", http.Header{"Authorization": {"Bearer    "}}},
		{"bearer without token", http.Header{"Authorization": {"Bearer"}}},
		{"empty authorization", http.Header{"Authorization": {""}}},
		{"basic auth", http.Header{"Authorization": {"Basic YWRtaW46YWRtaW4="}}},
		{"two authorization headers", http.Header{"Authorization": {"Bearer " + robot.proxyConfig.BearerToken, "Bearer other"}}},
		{"unknown token", http.Header{"Authorization": {"Bearer not-a-real-token"}}},
		{"oidc token for another audience", http.Header{"Authorization": {"Bearer " + wrongAudience}}},
		{"expired oidc token", http.Header{"Authorization": {"Bearer " + expired}}},
		{"forged identity without credentials", http.Header{"Impersonate-User": {"admin"}, "X-Remote-User": {"admin"}}},
	}
	forEachUpstreamMode(t, func(t *testing.T, _ upstreamMode) {
		noCert := &identity{proxyConfig: env.users["robot"].proxyConfig}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, auditID, body := do(t, rawClient(t, noCert), http.MethodGet, "/api/v1/namespaces", tt.header, "")
				if status != http.StatusUnauthorized || !strings.Contains(body, `"kind":"Status"`) {
					t.Fatalf("status = %d %s, want a 401 Status", status, body)
				}
				if events := apiServerEvents(t, auditID, 0); len(events) != 0 {
					t.Fatalf("a rejected request reached the API server: %+v", events)
				}
			})
		}
	})
}

// TestClientImpersonationIsAuthorised: kubectl --as works only when a SubjectAccessReview allows it, and
// then exactly the checked identity is forwarded.
func TestClientImpersonationIsAuthorised(t *testing.T) {
	forEachUpstreamMode(t, func(t *testing.T, _ upstreamMode) {
		out, err := kubectl(t, env.users["alice"], "--as", "bob", "-n", "team-a", "get", "configmaps")
		if err == nil || !strings.Contains(out, `User "alice" cannot impersonate resource "users"`) {
			t.Fatalf("--as without permission = %q, %v; want Forbidden", out, err)
		}
	})

	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-impersonates-bob"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"users"}, ResourceNames: []string{"bob"}, Verbs: []string{"impersonate"}},
			{APIGroups: []string{""}, Resources: []string{"groups"}, ResourceNames: []string{"viewers"}, Verbs: []string{"impersonate"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-impersonates-bob"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}
	if _, err := env.cluster.AdminClient.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.cluster.AdminClient.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	forEachUpstreamMode(t, testGrantedImpersonation)
}

// testGrantedImpersonation: with alice allowed to impersonate bob in viewers, exactly that identity reaches
// the API server, and nothing beyond the grant is allowed.
func testGrantedImpersonation(t *testing.T, m upstreamMode) {
	alice := env.users["alice"]
	var out string
	var err error
	// The proxy caches a denial for a few seconds; wait for the allow to be visible.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err = kubectl(t, alice, "--as", "bob", "--as-group", "viewers", "auth", "whoami", "-o", "json")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("--as bob --as-group viewers after the grant: %v %s", err, out)
	}
	w := parseWhoami(t, out)
	if w.Status.UserInfo.Username != "bob" || !contains(w.Status.UserInfo.Groups, "viewers") || contains(w.Status.UserInfo.Groups, "dev") {
		t.Fatalf("impersonated identity = %+v, want bob in viewers only", w.Status.UserInfo)
	}
	header := http.Header{"Impersonate-User": {"bob"}, "Impersonate-Group": {"viewers"}, "Content-Type": {"application/json"}}
	status, auditID, body := do(t, rawClient(t, alice), http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", header, selfSubjectReview)
	if status != http.StatusCreated {
		t.Fatalf("SelfSubjectReview as bob = %d %s", status, body)
	}
	if events := apiServerEvents(t, auditID, 1); len(events) != 1 {
		t.Fatalf("API server audit for %s: %+v", auditID, events)
	} else if _, groups := m.upstreamUser(t, events[0], "bob"); !contains(groups, "viewers") || contains(groups, "dev") {
		t.Fatalf("API server acted as bob with groups %v, want viewers and not dev", groups)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a group not granted", []string{"--as", "bob", "--as-group", "system:masters", "get", "--raw", "/version"}, `cannot impersonate resource "groups"`},
		{"a user not granted", []string{"--as", "carol", "get", "--raw", "/version"}, `cannot impersonate resource "users"`},
		{"a uid not granted", []string{"--as", "bob", "--as-uid", "1234", "get", "--raw", "/version"}, `cannot impersonate resource "uids"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := kubectl(t, alice, tt.args...)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Fatalf("kubectl %v = %q, %v; want %s", tt.args, out, err, tt.want)
			}
		})
	}

	t.Run("too many impersonation values", func(t *testing.T) {
		header := http.Header{"Impersonate-User": {"bob"}}
		for i := range 100 {
			header.Add("Impersonate-Group", fmt.Sprintf("g%d", i))
		}
		status, auditID, body := do(t, rawClient(t, alice), http.MethodGet, "/api/v1/namespaces/team-a/configmaps", header, "")
		if status != http.StatusBadRequest {
			t.Fatalf("status = %d %s, want 400", status, body)
		}
		if events := apiServerEvents(t, auditID, 0); len(events) != 0 {
			t.Fatalf("request reached the API server: %+v", events)
		}
	})
}

// TestNonCanonicalPathsAreRejected: paths that parsers could read differently are refused before anything is
// forwarded.
func TestNonCanonicalPathsAreRejected(t *testing.T) {
	alice := env.users["alice"]
	for _, path := range []string{
		"//api/v1/namespaces/kube-system/secrets",
		"/api/v1//namespaces/kube-system/secrets",
		"/api/v1/namespaces/team-a/configmaps/../../kube-system/secrets",
		"/api/v1/namespaces/team-a/./configmaps",
		"/api/v1/namespaces/team-a%2Fconfigmaps",
		"/api/v1/namespaces/team-a/configmaps/",
	} {
		t.Run(path, func(t *testing.T) {
			status, auditID, body := do(t, rawClient(t, alice), http.MethodGet, path, nil, "")
			if status != http.StatusBadRequest || !strings.Contains(body, `"kind":"Status"`) {
				t.Fatalf("status = %d %s, want a 400 Status", status, body)
			}
			if events := apiServerEvents(t, auditID, 0); len(events) != 0 {
				t.Fatalf("request reached the API server: %+v", events)
			}
		})
	}
}

// TestUpgradesAreLimitedAndRelayed: only SPDY and WebSocket upgrades are spliced, and a refused upgrade is
// relayed as the API server's error.
func TestUpgradesAreLimitedAndRelayed(t *testing.T) {
	forEachUpstreamMode(t, testUpgradesAreLimitedAndRelayed)
}

func testUpgradesAreLimitedAndRelayed(t *testing.T, _ upstreamMode) {
	alice := env.users["alice"]
	status, _, body := do(t, rawClient(t, alice), http.MethodGet, "/api/v1/namespaces/team-a/configmaps",
		http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}}, "")
	if status != http.StatusBadRequest {
		t.Fatalf("h2c upgrade = %d %s, want 400", status, body)
	}
	out, err := kubectl(t, alice, "-n", "team-a", "exec", "no-such-pod", "--", "echo")
	if err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("exec into a missing pod = %q, %v; want the API server's NotFound", out, err)
	}
	out, err = kubectl(t, alice, "-n", "kube-system", "exec", "any-pod", "--", "echo")
	if err == nil || !strings.Contains(out, "Forbidden") {
		t.Fatalf("exec where alice may not = %q, %v; want Forbidden", out, err)
	}
}

// TestFrontProxyHeadersNeedTheFrontProxyCertificate: identity headers count only from a certificate signed
// by --requestheader-client-ca-file with an allowed name.
func TestFrontProxyHeadersNeedTheFrontProxyCertificate(t *testing.T) {
	header := http.Header{"X-Remote-User": {"dave"}, "X-Remote-Group": {"front-users"}, "Content-Type": {"application/json"}}
	tests := []struct {
		name       string
		ca         func(user string, groups ...string) ([]byte, []byte, error)
		cn         string
		wantStatus int
		wantUser   string
	}{
		{"trusted front proxy", env.cluster.FrontProxyCA.IssueClientCert, "front-proxy-client", http.StatusCreated, "dave"},
		{"front-proxy CA but a name not allowed", env.cluster.FrontProxyCA.IssueClientCert, "intruder", http.StatusUnauthorized, ""},
		{"an ordinary client certificate", env.cluster.CA.IssueClientCert, "front-proxy-client", http.StatusCreated, "front-proxy-client"},
	}
	forEachUpstreamMode(t, func(t *testing.T, _ upstreamMode) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				certPEM, keyPEM, err := tt.ca(tt.cn)
				if err != nil {
					t.Fatal(err)
				}
				id := &identity{proxyConfig: env.users["alice"].proxyConfig}
				cfg := *id.proxyConfig
				cfg.CertData, cfg.KeyData = certPEM, keyPEM
				id.proxyConfig = &cfg
				status, _, body := do(t, rawClient(t, id), http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", header, selfSubjectReview)
				if status != tt.wantStatus {
					t.Fatalf("status = %d %s, want %d", status, body, tt.wantStatus)
				}
				if tt.wantUser != "" {
					if w := parseWhoami(t, body); w.Status.UserInfo.Username != tt.wantUser {
						t.Fatalf("API server saw %q, want %q", w.Status.UserInfo.Username, tt.wantUser)
					}
				}
			})
		}
	})
}

// TestBearerTokenIsReviewedOnce: a busy client costs one TokenReview, not one per request.
func TestBearerTokenIsReviewedOnce(t *testing.T) {
	token, err := env.cluster.ServiceAccountToken(context.Background(), "apps", "busy", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	env.secrets["busy token"] = token
	reviews := func() int {
		return len(readAuditEvents(t, func(e auditEvent) bool {
			return e.Verb == "create" && strings.HasPrefix(e.RequestURI, "/apis/authentication.k8s.io/v1/tokenreviews") &&
				e.User.Username == "system:serviceaccount:tenant-proxy-system:tenant-proxy"
		}))
	}
	before := reviews()
	id := &identity{proxyConfig: env.users["robot"].proxyConfig}
	header := http.Header{"Authorization": {"Bearer " + token}}
	for range 20 {
		if status, _, body := do(t, rawClient(t, id), http.MethodGet, "/version", header, ""); status != http.StatusOK {
			t.Fatalf("GET /version = %d %s", status, body)
		}
	}
	if got := reviews() - before; got != 1 {
		t.Fatalf("20 requests with one token made %d TokenReviews, want 1", got)
	}
}

// TestProbesNeedNoCredentials: /healthz, /livez and /readyz answer without credentials.
func TestProbesNeedNoCredentials(t *testing.T) {
	noCert := &identity{proxyConfig: env.users["robot"].proxyConfig}
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		if status, _, body := do(t, rawClient(t, noCert), http.MethodGet, path, nil, ""); status != http.StatusOK || body != "ok" {
			t.Fatalf("%s = %d %q", path, status, body)
		}
	}
}
