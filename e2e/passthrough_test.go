package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// TestKubectlAsEachKindOfUser drives the real kubectl through the proxy as a certificate user, a
// ServiceAccount and an OIDC user: everything RBAC allows works, everything it forbids is Forbidden, and the
// API server sees the caller, not the proxy.
func TestKubectlAsEachKindOfUser(t *testing.T) {
	forEachUpstreamMode(t, testKubectlAsEachKindOfUser)
}

func testKubectlAsEachKindOfUser(t *testing.T, _ upstreamMode) {
	for _, short := range []string{"alice", "robot", "carol"} {
		id := env.users[short]
		t.Run(short, func(t *testing.T) {
			ns := id.namespace
			cm := "cm-" + short
			steps := []struct {
				args []string
				want string
			}{
				{[]string{"-n", ns, "create", "configmap", cm, "--from-literal=k=v1"}, "configmap/" + cm + " created"},
				{[]string{"-n", ns, "get", "configmap", cm, "-o", "jsonpath={.data.k}"}, "v1"},
				{[]string{"-n", ns, "get", "configmaps", "-o", "name"}, "configmap/" + cm},
				{[]string{"-n", ns, "patch", "configmap", cm, "-p", `{"data":{"k":"v2"}}`}, "patched"},
				{[]string{"-n", ns, "get", "configmap", cm, "-o", "jsonpath={.data.k}"}, "v2"},
				{[]string{"-n", ns, "label", "configmap", cm, "team=x"}, "labeled"},
				{[]string{"-n", ns, "get", "configmaps", "-l", "team=x", "-o", "name"}, "configmap/" + cm},
				{[]string{"-n", ns, "delete", "configmap", cm}, "deleted"},
			}
			for _, step := range steps {
				out, err := kubectl(t, id, step.args...)
				if err != nil || !strings.Contains(out, step.want) {
					t.Fatalf("kubectl %v = %q, %v; want output containing %q", step.args, out, err, step.want)
				}
			}

			out, err := kubectl(t, id, "-n", "kube-system", "get", "configmaps")
			if err == nil || !strings.Contains(out, "Forbidden") || !strings.Contains(out, id.name) {
				t.Fatalf("listing kube-system as %s = %q, %v; want Forbidden for %s", id.name, out, err, id.name)
			}
			out, err = kubectl(t, id, "auth", "can-i", "create", "configmaps", "-n", ns)
			if err != nil || strings.TrimSpace(out) != "yes" {
				t.Fatalf("auth can-i in own namespace = %q, %v", out, err)
			}

			out, err = kubectl(t, id, "auth", "whoami", "-o", "json")
			if err != nil {
				t.Fatalf("kubectl auth whoami: %v: %s", err, out)
			}
			w := parseWhoami(t, out)
			if w.Status.UserInfo.Username != id.name {
				t.Fatalf("whoami through the proxy = %q, want %q", w.Status.UserInfo.Username, id.name)
			}
			for _, g := range append(id.groups, "system:authenticated") {
				if !contains(w.Status.UserInfo.Groups, g) {
					t.Fatalf("whoami groups %v lack %q", w.Status.UserInfo.Groups, g)
				}
			}
			// The whole identity (UID and extras of a ServiceAccount token too) is the one the API server
			// sees when the caller comes directly.
			direct, err := env.cluster.Kubectl(context.Background(), id.directKubeconfig, "auth", "whoami", "-o", "json")
			if err != nil {
				t.Fatalf("kubectl auth whoami directly: %v: %s", err, direct)
			}
			if d := parseWhoami(t, direct); !reflect.DeepEqual(w.Status.UserInfo, d.Status.UserInfo) {
				t.Fatalf("whoami through the proxy = %+v, directly = %+v", w.Status.UserInfo, d.Status.UserInfo)
			}
		})
	}
}

// TestAPIServerSeesTheCallerImpersonated checks, in the API server's own audit log, that a forwarded request
// arrives as the proxy impersonating exactly the caller, or, in front-proxy mode, as the caller named by
// front-proxy headers without any impersonation.
func TestAPIServerSeesTheCallerImpersonated(t *testing.T) {
	forEachUpstreamMode(t, testAPIServerSeesTheCaller)
}

func testAPIServerSeesTheCaller(t *testing.T, m upstreamMode) {
	id := env.users["alice"]
	status, auditID, body := do(t, rawClient(t, id), http.MethodGet, "/api/v1/namespaces/team-a/configmaps", nil, "")
	if status != http.StatusOK {
		t.Fatalf("list = %d %s", status, body)
	}
	events := apiServerEvents(t, auditID, 1)
	if len(events) != 1 {
		t.Fatalf("API server logged %d events with Audit-ID %s, want 1", len(events), auditID)
	}
	if _, groups := m.upstreamUser(t, events[0], "alice"); !contains(groups, "dev") {
		t.Fatalf("upstream acted as alice with groups %v, want dev", groups)
	}
}

// TestWatchIsStreamedPromptly opens a watch through the proxy and expects each event within a second.
func TestWatchIsStreamedPromptly(t *testing.T) {
	forEachUpstreamMode(t, testWatchIsStreamedPromptly)
}

func testWatchIsStreamedPromptly(t *testing.T, m upstreamMode) {
	id := env.users["robot"]
	client := kubernetes.NewForConfigOrDie(id.proxyConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := client.CoreV1().ConfigMaps(id.namespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range 3 {
		name := fmt.Sprintf("watched-%s-%d", m.name, i)
		created := time.Now()
		if _, err := client.CoreV1().ConfigMaps(id.namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case ev := <-w.ResultChan():
				if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != name {
					continue
				}
				if d := time.Since(created); d > time.Second {
					t.Fatalf("watch event for %s arrived after %s", name, d)
				}
			case <-ctx.Done():
				t.Fatalf("no watch event for %s", name)
			}
			break
		}
	}
	// The legacy /watch/ path is parsed and forwarded too.
	status, _, body := do(t, rawClient(t, id), http.MethodGet, "/api/v1/watch/namespaces/apps/configmaps?timeoutSeconds=1", bearer(id), "")
	if status != http.StatusOK || !strings.Contains(body, "watched-"+m.name+"-0") {
		t.Fatalf("legacy watch = %d %q", status, body)
	}
}

// TestKubectlVersionAndDiscovery checks that discovery and version pass through unchanged.
func TestKubectlVersionAndDiscovery(t *testing.T) {
	out, err := kubectl(t, env.users["alice"], "version", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl version: %v %s", err, out)
	}
	var v struct {
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ServerVersion.GitVersion != "v1.37.2" {
		t.Fatalf("server version through the proxy = %q (%v)", v.ServerVersion.GitVersion, err)
	}
	out, err = kubectl(t, env.users["alice"], "api-resources", "-o", "name")
	if err != nil || !strings.Contains(out, "tenants.capsule.clastix.io") {
		t.Fatalf("api-resources through the proxy lacks Capsule's tenants: %v %s", err, out)
	}
}

// TestSecretsPassThroughUnlogged: a Secret written and read through the proxy arrives intact; its value is
// then searched for in the proxy's logs and audit records by TestZZCredentialsNeverLeave.
func TestSecretsPassThroughUnlogged(t *testing.T) {
	alice := env.users["alice"]
	value := fmt.Sprintf("s3cr3t-%d", time.Now().UnixNano())
	env.secrets["secret value"] = value
	env.secrets["secret value, base64"] = base64.StdEncoding.EncodeToString([]byte(value))
	if out, err := kubectl(t, alice, "-n", alice.namespace, "create", "secret", "generic", "db-password", "--from-literal=password="+value); err != nil {
		t.Fatalf("create secret: %v %s", err, out)
	}
	out, err := kubectl(t, alice, "-n", alice.namespace, "get", "secret", "db-password", "-o", "jsonpath={.data.password}")
	if err != nil {
		t.Fatalf("get secret: %v %s", err, out)
	}
	if decoded, _ := base64.StdEncoding.DecodeString(out); string(decoded) != value {
		t.Fatalf("secret read through the proxy = %q, want the value written", decoded)
	}
}
