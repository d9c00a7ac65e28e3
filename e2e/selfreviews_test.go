package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const selfReviewTenant = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-reviews
spec:
  owners:
  - kind: User
    name: sr-owner
`

// TestSelfSubjectAccessReviews: through the proxy a tenant owner's "may I list namespaces?" is answered as
// the proxy serves it (yes), one namespace only when it is theirs, and every other question, and every
// caller who owns no tenant, gets the API server's own answer.
func TestSelfSubjectAccessReviews(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.ApplyYAML(ctx, []byte(selfReviewTenant)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Resource(nsTestTenants).Delete(context.Background(), "e2e-reviews", metav1.DeleteOptions{})
	})
	owner := newNamespaceOwner(t, ctx, "sr-owner", "e2e-reviews", []string{"e2e-reviews-one"}, testbed.CapsuleUsersGroup)
	createNamespaceThroughProxy(t, ctx, owner, "e2e-reviews-one")
	rv := waitTenantStatusLists(t, ctx, admin, "e2e-reviews", "e2e-reviews-one")
	syncProxyCaches(t, ctx, owner, rv)

	tests := []struct {
		name   string
		kcfg   func() string
		args   []string
		answer string
	}{
		{"owner lists namespaces through the proxy", func() string { return owner.proxyKubeconfig }, []string{"list", "namespaces"}, "yes"},
		{"owner watches namespaces through the proxy", func() string { return owner.proxyKubeconfig }, []string{"watch", "namespaces"}, "yes"},
		{"owner gets an own namespace", func() string { return owner.proxyKubeconfig }, []string{"get", "namespace/e2e-reviews-one"}, "yes"},
		{"owner gets another namespace", func() string { return owner.proxyKubeconfig }, []string{"get", "namespace/kube-system"}, "no"},
		{"owner deletes namespaces: the API server decides", func() string { return owner.proxyKubeconfig }, []string{"delete", "namespaces"}, "no"},
		{"owner lists secrets elsewhere: the API server decides", func() string { return owner.proxyKubeconfig }, []string{"list", "secrets", "-n", "kube-system"}, "no"},
		{"owner lists namespaces directly", func() string { return owner.directKubeconfig }, []string{"list", "namespaces"}, "no"},
		{"a caller without tenants", func() string { return env.users["alice"].proxyKubeconfig }, []string{"list", "namespaces"}, "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := env.cluster.Kubectl(ctx, tt.kcfg(), append([]string{"auth", "can-i"}, tt.args...)...)
			lines := strings.Split(strings.TrimSpace(out), "\n") // kubectl may print warnings first
			if got := lines[len(lines)-1]; got != tt.answer {
				t.Fatalf("kubectl auth can-i %v = %q, want %q", tt.args, got, tt.answer)
			}
		})
	}

	t.Run("a review the proxy does not answer reaches the API server unchanged", func(t *testing.T) {
		body := `{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"create","resource":"configmaps","namespace":"e2e-reviews-one"}}}`
		id := &identity{proxyConfig: owner.proxyConfig}
		status, auditID, resp := do(t, rawClient(t, id), http.MethodPost, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
			http.Header{"Content-Type": {"application/json"}}, body)
		if status != http.StatusCreated || !strings.Contains(resp, `"allowed":true`) {
			t.Fatalf("owner may create configmaps in an own namespace: %d %s", status, resp)
		}
		events := apiServerEvents(t, auditID, 1)
		if len(events) != 1 || events[0].ImpersonatedUser == nil || events[0].ImpersonatedUser.Username != "sr-owner" {
			t.Fatalf("API server audit for the forwarded review: %+v", events)
		}
	})

	t.Run("the rules review through the proxy includes reading namespaces", func(t *testing.T) {
		for _, tt := range []struct {
			kubeconfig string
			want       bool
		}{{owner.proxyKubeconfig, true}, {owner.directKubeconfig, false}} {
			// In "default" the owner has no RoleBinding: any namespace read listed there is the proxy's.
			out, err := env.cluster.Kubectl(ctx, tt.kubeconfig, "auth", "can-i", "--list", "-n", "default")
			if err != nil {
				t.Fatalf("kubectl auth can-i --list: %v %s", err, out)
			}
			got := false
			for _, line := range strings.Split(out, "\n") {
				fields := strings.Fields(line)
				if len(fields) > 0 && fields[0] == "namespaces" && strings.Contains(line, "list") {
					got = true
				}
			}
			if got != tt.want {
				t.Fatalf("namespaces rule listed = %v, want %v:\n%s", got, tt.want, out)
			}
		}
	})

	t.Run("the proxy's audit records name the caller's tenants", func(t *testing.T) {
		rec := waitProxyRecord(t, func(r audit.Record) bool { return r.User == "sr-owner" && len(r.Tenants) > 0 })
		if len(rec.Tenants) != 1 || rec.Tenants[0] != "e2e-reviews" {
			t.Fatalf("audit record of sr-owner names tenants %v, want [e2e-reviews]", rec.Tenants)
		}
	})
}
