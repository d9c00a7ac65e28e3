package testbed_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

func TestClusterWithCapsule(t *testing.T) {
	binDir := testbed.DefaultBinDir()
	if err := testbed.CheckBinaries(binDir, true); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	began := time.Now()
	c, err := testbed.Start(ctx, testbed.Options{BinDir: binDir, Capsule: true, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("Start took %s", time.Since(began).Round(time.Millisecond))

	t.Run("kubectl version", func(t *testing.T) {
		out, err := c.Kubectl(ctx, c.AdminKubeconfig, "version")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Server Version: v1.37.2") {
			t.Errorf("kubectl version:\n%s", out)
		}
	})

	t.Run("client certificate", func(t *testing.T) {
		cfg, err := c.UserConfig("alice", "dev")
		if err != nil {
			t.Fatal(err)
		}
		assertIdentity(ctx, t, cfg, "alice", "dev")
	})

	t.Run("service account token", func(t *testing.T) {
		token, err := c.ServiceAccountToken(ctx, "robots", "robot", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		assertIdentity(ctx, t, c.TokenConfig(token), "system:serviceaccount:robots:robot", "system:serviceaccounts:robots")
	})

	t.Run("OIDC token", func(t *testing.T) {
		token, err := c.OIDC.Token("bob", []string{"ops"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		assertIdentity(ctx, t, c.TokenConfig(token), "oidc:bob", "oidc:ops")
	})

	t.Run("kubectl as a tenant owner", func(t *testing.T) {
		err := c.ApplyYAML(ctx, []byte(`apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: oil
spec:
  owners:
  - kind: User
    name: alice
`))
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := c.CA.IssueClientCert("alice", testbed.CapsuleUsersGroup)
		if err != nil {
			t.Fatal(err)
		}
		kubeconfig := filepath.Join(t.TempDir(), "alice.kubeconfig")
		if err := c.WriteKubeconfig(kubeconfig, c.URL, c.CAFile, "alice", certPEM, keyPEM, ""); err != nil {
			t.Fatal(err)
		}
		if out, err := c.Kubectl(ctx, kubeconfig, "create", "namespace", "oil-dev"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		ns, err := c.AdminClient.CoreV1().Namespaces().Get(ctx, "oil-dev", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ns.Labels[testbed.CapsuleTenantLabel]; got != "oil" {
			t.Errorf("namespace oil-dev has %s=%q, want oil", testbed.CapsuleTenantLabel, got)
		}
	})

	t.Run("conversion webhook serves v1beta1 tenants", func(t *testing.T) {
		out, err := c.Kubectl(ctx, c.AdminKubeconfig, "get", "tenants.v1beta1.capsule.clastix.io", "oil", "-o", "jsonpath={.apiVersion}")
		if err != nil || out != "capsule.clastix.io/v1beta1" {
			t.Errorf("v1beta1 tenant: %q, %v", out, err)
		}
	})

	t.Run("audit log", func(t *testing.T) {
		events, err := c.AuditEvents()
		if err != nil {
			t.Fatal(err)
		}
		var byAlice []string
		for _, e := range events {
			if e.User.Username == "alice" {
				byAlice = append(byAlice, e.Verb+" "+e.RequestURI)
			}
		}
		// kubectl adds query parameters such as fieldManager.
		if !slices.ContainsFunc(byAlice, func(s string) bool { return strings.HasPrefix(s, "create /api/v1/namespaces?") }) {
			t.Errorf("audit log %s has no namespace creation by alice; alice's requests: %v", c.AuditLog, byAlice)
		}
	})

	t.Run("front proxy configuration is published", func(t *testing.T) {
		cm, err := c.AdminClient.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(cm.Data["requestheader-allowed-names"], "front-proxy-client") {
			t.Errorf("extension-apiserver-authentication: %v", cm.Data)
		}
	})

	t.Run("controller-manager creates default service accounts", func(t *testing.T) {
		err := waitUntil(ctx, func() bool {
			_, err := c.AdminClient.CoreV1().ServiceAccounts("oil-dev").Get(ctx, "default", metav1.GetOptions{})
			return err == nil
		})
		if err != nil {
			t.Fatal("no ServiceAccount default in oil-dev:", err)
		}
	})
}

// assertIdentity checks with a SelfSubjectReview that cfg authenticates as user in group.
func assertIdentity(ctx context.Context, t *testing.T, cfg *rest.Config, user, group string) {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := review.Status.UserInfo
	if info.Username != user || !slices.Contains(info.Groups, group) {
		t.Errorf("SelfSubjectReview: user %q groups %v, want %q in %q", info.Username, info.Groups, user, group)
	}
}

func waitUntil(ctx context.Context, cond func() bool) error {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}

// testWriter sends the test bed's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
