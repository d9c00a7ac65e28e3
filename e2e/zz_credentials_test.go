package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestZZCredentialsNeverLeave runs last (file and name order): no credential used by the suite appears in
// the proxy's log at -v=10 or in its audit log.
func TestZZCredentialsNeverLeave(t *testing.T) {
	for _, path := range []string{env.proxy.LogPath, env.proxy.AuditPath} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			t.Fatalf("%s is empty: nothing was checked", path)
		}
		for name, secret := range env.secrets {
			for _, part := range secretParts(secret) {
				if strings.Contains(string(data), part) {
					t.Errorf("%s contains the %s", path, name)
					break
				}
			}
		}
	}
}

// secretParts splits a credential into the pieces that would identify it: a JWT's signature, a PEM's body
// lines, or the whole token.
func secretParts(secret string) []string {
	if strings.Contains(secret, "-----BEGIN") {
		var parts []string
		for _, line := range strings.Split(secret, "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				parts = append(parts, line)
			}
		}
		return parts
	}
	if fields := strings.Split(secret, "."); len(fields) == 3 {
		return []string{secret, fields[2]}
	}
	return []string{secret}
}

// TestZZEveryRequestIsAuditedOnce runs after the rest of the suite: every request the proxy served left
// exactly one audit record with an Audit-ID and a decision, and every forwarded one reached the API server
// with that same Audit-ID.
func TestZZEveryRequestIsAuditedOnce(t *testing.T) {
	records := readProxyAudit(t)
	if len(records) < 50 {
		t.Fatalf("only %d proxy audit records after the suite", len(records))
	}
	upstream := map[string]bool{}
	for _, e := range readAuditEvents(t, func(e auditEvent) bool { return e.AuditID != "" }) {
		upstream[e.AuditID] = true
	}
	seen := map[string]bool{}
	for _, r := range records {
		switch {
		case r.AuditID == "" || r.Decision == "":
			t.Errorf("audit record without Audit-ID or decision: %+v", r)
		case seen[r.AuditID]:
			t.Errorf("two audit records with Audit-ID %s", r.AuditID)
		case r.Decision == "forwarded" && !upstream[r.AuditID]:
			t.Errorf("forwarded request %s %s (%d) has no API server event with Audit-ID %s", r.Verb, r.Path, r.Code, r.AuditID)
		}
		seen[r.AuditID] = true
	}
}
