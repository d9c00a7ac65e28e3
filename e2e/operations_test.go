package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
	"github.com/tenant-proxy/tenant-proxy/internal/chart"
	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// proxyServiceAccount is the identity the API server sees the proxy authenticate as.
const proxyServiceAccount = "system:serviceaccount:" + testbed.ProxyNamespace + ":" + testbed.ProxyServiceAccount

// TestKubeconfigCommandReachesTheProxyAsTheCaller: the kubeconfig `tenant-proxy kubeconfig` writes from alice's
// own kubeconfig, used by the real kubectl, goes through the proxy and arrives upstream as alice.
func TestKubeconfigCommandReachesTheProxyAsTheCaller(t *testing.T) {
	alice := env.users["alice"]
	out := filepath.Join(t.TempDir(), "alice-via-proxy.kubeconfig")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(env.cluster.BinDir, "tenant-proxy"), "kubeconfig",
		"--kubeconfig", alice.directKubeconfig, "--server", env.proxy.URL,
		"--certificate-authority", env.proxy.CAFile, "--output", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tenant-proxy kubeconfig: %v: %s", err, msg)
	}
	cfg, err := clientcmd.LoadFromFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]; c == nil || c.Server != env.proxy.URL {
		t.Fatalf("current context's cluster %+v, want the proxy %s", c, env.proxy.URL)
	}

	since := time.Now()
	whoamiOut, err := env.cluster.Kubectl(ctx, out, "auth", "whoami", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl auth whoami: %v: %s", err, whoamiOut)
	}
	if w := parseWhoami(t, whoamiOut); w.Status.UserInfo.Username != "alice" || !contains(w.Status.UserInfo.Groups, "dev") {
		t.Fatalf("whoami = %+v, want alice in dev", w.Status.UserInfo)
	}

	// It went through the proxy: the proxy audited it, and the API server saw the proxy impersonating alice.
	rec := waitProxyRecord(t, func(r audit.Record) bool {
		return r.User == "alice" && r.Resource == "selfsubjectreviews" && !r.Time.Before(since)
	})
	assertImpersonatedUpstream(t, rec.AuditID, "alice")
}

// TestChartServerSideDryRun applies the rendered chart to the real API server with server-side dry-run, which
// runs validation, defaulting and admission (RBAC escalation checks included) without persisting anything.
// Values needing CRDs the test cluster lacks (ServiceMonitor, cert-manager) stay off.
func TestChartServerSideDryRun(t *testing.T) {
	// "default" exists in every cluster, and a namespace made here could surprise tests that list namespaces.
	ns := "default"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := chart.Dir()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]any
	}{
		{"defaults", nil},
		{"LoadBalancer, HPA, existing Secret, exposed metrics, OIDC, front proxy", map[string]any{
			"service":       map[string]any{"type": "LoadBalancer"},
			"autoscaling":   map[string]any{"enabled": true},
			"tls":           map[string]any{"mode": "secret", "existingSecret": "proxy-tls"},
			"metrics":       map[string]any{"exposed": true},
			"oidc":          map[string]any{"issuerURL": "https://issuer.example", "clientID": "kubernetes", "usernamePrefix": "oidc:"},
			"requestHeader": map[string]any{"clientCAConfigMap": "front-proxy-ca"},
			"rbac":          map[string]any{"clusterScopedWrites": true},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := "dry-run-" + strconv.Itoa(i)
			manifest, err := chart.Render(ctx, dir, chart.Options{ReleaseName: release, Namespace: ns, Values: tt.values})
			if err != nil {
				t.Fatal(err)
			}
			objs, err := chart.Decode(manifest)
			if err != nil {
				t.Fatal(err)
			}
			// Not under t.TempDir(): kubectl -f splits paths at the commas of subtest names.
			file := filepath.Join(env.dir, release+".yaml")
			if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := env.cluster.Kubectl(ctx, env.cluster.AdminKubeconfig, "apply", "--server-side", "--dry-run=server", "-f", file)
			if err != nil {
				t.Fatalf("server-side dry-run: %v\n%s", err, out)
			}
			for _, o := range objs {
				if !strings.Contains(out, "/"+o.GetName()+" serverside-applied (server dry run)") {
					t.Errorf("%s %s not applied: %s", o.GetKind(), o.GetName(), out)
				}
				if o.GetKind() == "ClusterRole" {
					writes, _, _ := unstructured.NestedBool(map[string]any{"v": tt.values}, "v", "rbac", "clusterScopedWrites")
					assertChartRoleCoversTestbed(t, ctx, o.Object, writes)
				}
			}
			// Dry run means nothing was created.
			if _, err := env.cluster.AdminClient.RbacV1().ClusterRoles().Get(ctx, release+"-tenant-proxy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("dry run created the ClusterRole (err %v)", err)
			}
		})
	}
}

// assertChartRoleCoversTestbed: the chart grants at least what the test bed's proxy, which the whole suite runs
// with, is granted (its rules for granted writes only when the chart was rendered with writes); the unit test
// of the chart checks it grants nothing more dangerous.
func assertChartRoleCoversTestbed(t *testing.T, ctx context.Context, obj map[string]any, writes bool) {
	t.Helper()
	var chartRole rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &chartRole); err != nil {
		t.Fatal(err)
	}
	running, err := env.cluster.AdminClient.RbacV1().ClusterRoles().Get(ctx, testbed.ProxyServiceAccount, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range running.Rules {
		if !writes && slices.Contains(need.Verbs, "update") {
			continue // rbac.clusterScopedWrites is off
		}
		for _, group := range need.APIGroups {
			for _, resource := range need.Resources {
				for _, verb := range need.Verbs {
					if !grants(chartRole.Rules, group, resource, verb, need.ResourceNames) {
						t.Errorf("chart ClusterRole lacks %s on %s/%s %v, which the proxy uses", verb, group, resource, need.ResourceNames)
					}
				}
			}
		}
	}
}

func grants(rules []rbacv1.PolicyRule, group, resource, verb string, names []string) bool {
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		namesOK := len(r.ResourceNames) == 0 || (len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return !slices.Contains(r.ResourceNames, n) }))
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) && namesOK
	})
}

// metricLine is one sample of the text exposition format: name{labels} value.
var metricLine = regexp.MustCompile(`^(\w+)\{([^}]*)\} (\S+)$`)

// TestOperationsMetrics: after a request through the proxy, /metrics counts requests, with bounded labels only.
func TestOperationsMetrics(t *testing.T) {
	alice := env.users["alice"]
	if status, _, body := do(t, rawClient(t, alice), http.MethodGet, "/api/v1/namespaces/team-a/configmaps", nil, ""); status != http.StatusOK {
		t.Fatalf("list = %d %s", status, body)
	}
	resp, err := http.Get(env.proxy.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}

	var total float64
	var sawList bool
	scanner := bufio.NewScanner(bytes.NewReader(body))
	for scanner.Scan() {
		m := metricLine.FindStringSubmatch(scanner.Text())
		if m == nil || m[1] != "tenant_proxy_requests_total" {
			continue
		}
		value, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", scanner.Text(), err)
		}
		total += value
		labels := m[2]
		if strings.Contains(labels, `verb="list"`) && strings.Contains(labels, `code="200"`) && value > 0 {
			sawList = true
		}
		// Labels never carry user input: no user, namespace, path or resource name.
		for _, leaked := range []string{"alice", "team-a", "/api"} {
			if strings.Contains(labels, leaked) {
				t.Errorf("label set %q carries request data %q", labels, leaked)
			}
		}
	}
	if total == 0 {
		t.Fatalf("tenant_proxy_requests_total is zero or missing:\n%s", body)
	}
	if !sawList {
		t.Errorf("no tenant_proxy_requests_total sample for verb=list code=200 after a list")
	}
}

// TestOperationsAuditLog: every record of the proxy's audit log has an Audit-ID and a decision, a request made
// here has exactly one record with the right user and decision, and the API server's audit event for it has the
// same Audit-ID with the caller impersonated.
func TestOperationsAuditLog(t *testing.T) {
	alice := env.users["alice"]
	status, auditID, body := do(t, rawClient(t, alice), http.MethodGet, "/api/v1/namespaces/team-a/configmaps", nil, "")
	if status != http.StatusOK || auditID == "" {
		t.Fatalf("list = %d (Audit-Id %q) %s", status, auditID, body)
	}
	rec := waitProxyRecord(t, func(r audit.Record) bool { return r.AuditID == auditID })
	if rec.User != "alice" || rec.Decision != audit.Forwarded || rec.Code != http.StatusOK ||
		rec.Verb != "list" || rec.Resource != "configmaps" || rec.Namespace != "team-a" {
		t.Errorf("audit record %+v, want alice's forwarded list of configmaps in team-a with 200", rec)
	}

	records := readProxyAudit(t)
	if len(records) == 0 {
		t.Fatal("the proxy's audit log is empty")
	}
	same := 0
	for i, r := range records {
		if r.AuditID == "" || r.Decision == "" {
			t.Errorf("audit line %d lacks an Audit-ID or decision: %+v", i+1, r)
		}
		if r.AuditID == auditID {
			same++
		}
	}
	if same != 1 {
		t.Errorf("%d audit records with Audit-ID %s, want exactly 1", same, auditID)
	}
	assertImpersonatedUpstream(t, auditID, "alice")
}

// assertImpersonatedUpstream: the API server logged auditID as the proxy's ServiceAccount impersonating user.
func assertImpersonatedUpstream(t *testing.T, auditID, user string) {
	t.Helper()
	events := apiServerEvents(t, auditID, 1)
	if len(events) == 0 {
		t.Fatalf("API server has no audit event with Audit-ID %s", auditID)
	}
	for _, e := range events {
		if e.User.Username != proxyServiceAccount || e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != user {
			t.Errorf("API server event %s: user %q impersonating %+v, want %s impersonating %s",
				auditID, e.User.Username, e.ImpersonatedUser, proxyServiceAccount, user)
		}
	}
}

// readProxyAudit parses the proxy's audit log. A line still being written (no newline yet) is left for later.
func readProxyAudit(t *testing.T) []audit.Record {
	t.Helper()
	data, err := os.ReadFile(env.proxy.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var records []audit.Record
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %d is not JSON: %v", i+1, err)
		}
		records = append(records, r)
	}
	return records
}

// waitProxyRecord returns the first audit record matching keep; the proxy writes it as the response completes,
// which can be just after the client has read it.
func waitProxyRecord(t *testing.T, keep func(audit.Record) bool) audit.Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range readProxyAudit(t) {
			if keep(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no matching record in the proxy's audit log")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startupPagesLine is the proxy's log line once it gave back the executable pages start-up touched.
var startupPagesLine = regexp.MustCompile(`"Released start-up pages of the executable" residentMiBBefore=(\d+) residentMiBAfter=(\d+)`)

// TestOperationsStartupPagesReleased: once ready, each proxy drops the executable pages package
// initialisation touched from its resident set (most of them), and keeps serving: the code it runs
// afterwards faults back in from the page cache.
func TestOperationsStartupPagesReleased(t *testing.T) {
	forEachUpstreamMode(t, func(t *testing.T, _ upstreamMode) {
		var m []string
		deadline := time.Now().Add(30 * time.Second)
		for m == nil && time.Now().Before(deadline) {
			logs, err := os.ReadFile(env.proxy.LogPath)
			if err != nil {
				t.Fatal(err)
			}
			if m = startupPagesLine.FindStringSubmatch(string(logs)); m == nil {
				time.Sleep(200 * time.Millisecond)
			}
		}
		if m == nil {
			t.Fatal("the proxy's log never said it released its start-up pages")
		}
		before, _ := strconv.Atoi(m[1])
		after, _ := strconv.Atoi(m[2])
		if before < 16 || after > before/4 {
			t.Fatalf("resident executable pages %d MiB before the release, %d MiB after: want most of them released", before, after)
		}
		status, _, body := do(t, rawClient(t, env.users["alice"]), http.MethodGet, "/api/v1/namespaces/team-a/configmaps", nil, "")
		if status != http.StatusOK {
			t.Fatalf("list after the release = %d %s", status, body)
		}
	})
}
