package e2e

import (
	"bufio"
	"flag"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestZZCredentialsNeverLeave runs last (file and name order): no credential used by the suite appears in
// any proxy's log at -v=10 or in its audit log.
func TestZZCredentialsNeverLeave(t *testing.T) {
	var paths []string
	for _, m := range env.modes {
		paths = append(paths, m.proxy.LogPath, m.proxy.AuditPath)
	}
	for _, path := range paths {
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
	skipUnlessWholeSuite(t)
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

// TestZZMetricsCoverTheSuite runs after the rest of the suite: the families an operator watches all have
// samples, including for exec and watch.
func TestZZMetricsCoverTheSuite(t *testing.T) {
	skipUnlessWholeSuite(t)
	resp, err := http.Get(env.proxy.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	samples := map[string]float64{}
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if m := metricLine.FindStringSubmatch(scanner.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			samples[m[1]+"{"+m[2]+"}"] += v
		}
	}
	for _, want := range []string{
		`tenant_proxy_long_running_requests_total{kind="stream"}`,
		`tenant_proxy_long_running_requests_total{kind="watch"}`,
		`tenant_proxy_authentications_total{result="success"}`,
		`tenant_proxy_authentications_total{result="failure"}`,
		`tenant_proxy_token_cache_lookups_total{result="hit"}`,
		`tenant_proxy_client_certificate_cache_lookups_total{result="hit"}`,
	} {
		if samples[want] <= 0 {
			t.Errorf("%s = %v after the suite, want > 0", want, samples[want])
		}
	}
	var intercepted, forwarded float64
	for key, v := range samples {
		if strings.HasPrefix(key, "tenant_proxy_requests_total{") {
			switch {
			case strings.Contains(key, `decision="intercepted"`):
				intercepted += v
			case strings.Contains(key, `decision="forwarded"`):
				forwarded += v
			}
		}
	}
	if intercepted == 0 || forwarded == 0 {
		t.Errorf("requests: %v intercepted, %v forwarded; want both > 0", intercepted, forwarded)
	}
}

// skipUnlessWholeSuite skips checks about the whole suite when only some tests were selected with -run.
func skipUnlessWholeSuite(t *testing.T) {
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		t.Skip("checks the whole suite; -run selected only part of it")
	}
}
