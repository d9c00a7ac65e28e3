package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// TestUpstreamImpersonationIsConstrained checks, in the API server's audit log, how the proxy's ServiceAccount
// impersonates each kind of caller with the chart's ClusterRole: users (here with 40 groups) in the
// constrained mode user-info, whose checks of the identity the API server caches, instead of one check per
// group on every request; ServiceAccounts in legacy mode with the groups the API server derives; and nobody
// as system:masters, which constrained impersonation refuses and legacy impersonation is not granted for.
func TestUpstreamImpersonationIsConstrained(t *testing.T) {
	groups := make([]string, 40)
	for i := range groups {
		groups[i] = fmt.Sprintf("wide-%02d", i)
	}
	wide := certCaller(t, "wide-user", groups...)
	root := certCaller(t, "root-user", "system:masters")
	robot := env.users["robot"]

	tests := []struct {
		name       string
		caller     *identity
		header     http.Header
		method     string
		path       string
		wantStatus int
		wantUser   string
		wantGroups []string
		constraint string
	}{
		{"user with 40 groups, resource request", wide, nil, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", http.StatusCreated,
			"wide-user", append(slices.Clone(groups), "system:authenticated"), "impersonate:user-info"},
		{"user with 40 groups, non-resource request", wide, nil, http.MethodGet, "/version", http.StatusOK,
			"wide-user", append(slices.Clone(groups), "system:authenticated"), "impersonate:user-info"},
		{"ServiceAccount", robot, bearer(robot), http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", http.StatusCreated,
			robot.name, []string{"system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated"}, ""},
		{"ServiceAccount, through the release API", robot, bearer(robot), http.MethodGet, "/v1/namespaces/apps/releases", http.StatusOK,
			robot.name, []string{"system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated"}, ""},
		{"system:masters", root, nil, http.MethodGet, "/version", http.StatusForbidden, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{"Content-Type": {"application/json"}}
			for k, v := range tt.header {
				header[k] = v
			}
			body := ""
			if tt.method == http.MethodPost {
				body = selfSubjectReview
			}
			status, auditID, answer := do(t, rawClient(t, tt.caller), tt.method, tt.path, header, body)
			if status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, status, answer, tt.wantStatus)
			}
			events := apiServerEvents(t, auditID, 1)
			if len(events) == 0 {
				t.Fatalf("the API server logged no event with Audit-ID %s", auditID)
			}
			e := events[len(events)-1]
			if e.User.Username != proxyServiceAccount {
				t.Fatalf("API server audit: user %+v, want the proxy's ServiceAccount", e.User)
			}
			if tt.wantStatus == http.StatusForbidden {
				// Which mode's refusal is answered depends on the mode that last succeeded for the proxy.
				if e.ResponseStatus.Code != http.StatusForbidden || e.ImpersonatedUser != nil || !strings.Contains(answer, `"reason":"Forbidden"`) {
					t.Fatalf("API server answered %d as %+v (%s); want the impersonation of system:masters refused", e.ResponseStatus.Code, e.ImpersonatedUser, answer)
				}
				return
			}
			if e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != tt.wantUser || !slices.Equal(e.ImpersonatedUser.Groups, tt.wantGroups) {
				t.Fatalf("API server acted as %+v, want %s with groups %v", e.ImpersonatedUser, tt.wantUser, tt.wantGroups)
			}
			constraint := ""
			if e.AuthenticationMetadata != nil {
				constraint = e.AuthenticationMetadata.ImpersonationConstraint
			}
			if constraint != tt.constraint {
				t.Fatalf("impersonation constraint %q, want %q", constraint, tt.constraint)
			}
		})
	}
}

// certCaller is a caller of the impersonating proxy with a client certificate for name and groups.
func certCaller(t *testing.T, name string, groups ...string) *identity {
	t.Helper()
	certPEM, keyPEM, err := env.cluster.CA.IssueClientCert(name, groups...)
	if err != nil {
		t.Fatal(err)
	}
	env.secrets[name+" private key"] = string(keyPEM)
	proxy := env.modes[0].proxy // impersonation
	return &identity{name: name, groups: groups, proxyConfig: &rest.Config{Host: proxy.URL,
		TLSClientConfig: rest.TLSClientConfig{CAFile: proxy.CAFile, CertData: certPEM, KeyData: keyPEM}}}
}
