package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
)

const quietVersionPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/version"]
- level: Metadata
`

// TestAuditPolicyFile: a second proxy started with --audit-policy-file records what its policy selects and
// nothing else.
func TestAuditPolicyFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(quietVersionPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	proxy, err := env.cluster.StartProxy(ctx, filepath.Join(env.cluster.BinDir, "tenant-proxy"), "tenant-proxy-audit-policy",
		"--audit-policy-file", policyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()

	alice := env.users["alice"]
	client := rawClient(t, alice)
	var listID, versionID string
	for _, req := range []struct {
		path string
		id   *string
	}{{"/api/v1/namespaces/team-a/configmaps", &listID}, {"/version", &versionID}} {
		r, _ := http.NewRequest(http.MethodGet, proxy.URL+req.path, nil)
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", req.path, resp.StatusCode)
		}
		*req.id = resp.Header.Get("Audit-Id")
	}
	proxy.Stop() // flushes the audit log

	data, err := os.ReadFile(proxy.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	records := parseAuditRecords(t, data)
	if !records[listID] {
		t.Errorf("the list (Audit-ID %s) has no record", listID)
	}
	if records[versionID] {
		t.Errorf("GET /version was recorded although the policy says None")
	}
}

func parseAuditRecords(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, line := range splitLines(data) {
		var r audit.Record
		if err := jsonUnmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		ids[r.AuditID] = true
	}
	return ids
}
