package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const allNamespacesTenant = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-allns
spec:
  owners:
  - kind: User
    name: allns-owner
`

// TestAllNamespaces: a tenant owner's `kubectl get configmaps -A` through the proxy lists the ConfigMaps of
// exactly their namespaces, each asked of the API server as the owner in that namespace; directly the API
// server refuses the same list.
func TestAllNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.ApplyYAML(ctx, []byte(allNamespacesTenant)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Resource(nsTestTenants).Delete(context.Background(), "e2e-allns", metav1.DeleteOptions{})
	})
	own := []string{"e2e-allns-one", "e2e-allns-two"}
	owner := newNamespaceOwner(t, ctx, "allns-owner", "e2e-allns", own, testbed.CapsuleUsersGroup)
	for _, ns := range own {
		createNamespaceThroughProxy(t, ctx, owner, ns)
	}
	syncProxyCaches(t, ctx, owner, waitTenantStatusLists(t, ctx, admin, "e2e-allns", own...))

	// A ConfigMap in each namespace, created through the proxy as the owner once Capsule has bound them there;
	// kube-controller-manager adds kube-root-ca.crt to every namespace.
	want := map[string]bool{}
	for _, ns := range own {
		name := "allns-cm-" + strings.TrimPrefix(ns, "e2e-allns-")
		pollFor(t, ctx, "configmap "+ns+"/"+name, func(ctx context.Context) (bool, error) {
			out, err := owner.kubectl(t, ctx, "-n", ns, "create", "configmap", name, "--from-literal=k=v")
			if err == nil || strings.Contains(out, "AlreadyExists") {
				return true, nil
			}
			return false, fmt.Errorf("%s", strings.TrimSpace(out))
		})
		want[ns+"/"+name] = true
		want[ns+"/kube-root-ca.crt"] = true
	}
	wantList := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})

	t.Run("table", func(t *testing.T) {
		var got []string
		pollFor(t, ctx, "the owner's ConfigMaps in every namespace", func(ctx context.Context) (bool, error) {
			out, err := owner.kubectl(t, ctx, "get", "configmaps", "-A")
			if err != nil {
				return false, fmt.Errorf("kubectl get configmaps -A: %v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if header := strings.Fields(lines[0]); len(header) < 2 || header[0] != "NAMESPACE" || header[1] != "NAME" {
				t.Fatalf("table header %v, want NAMESPACE NAME ...", header)
			}
			got = nil
			for _, line := range lines[1:] {
				fields := strings.Fields(line)
				if !slices.Contains(own, fields[0]) {
					t.Fatalf("the owner's table shows %q from another namespace", line)
				}
				got = append(got, fields[0]+"/"+fields[1])
			}
			slices.Sort(got)
			return slices.Equal(got, wantList), fmt.Errorf("rows %v", got)
		})
	})

	t.Run("name", func(t *testing.T) {
		out, err := owner.kubectl(t, ctx, "get", "configmaps", "-A", "-o", "name")
		if err != nil {
			t.Fatalf("kubectl get configmaps -A -o name: %v: %s", err, out)
		}
		var wantNames []string
		for _, k := range wantList {
			wantNames = append(wantNames, "configmap/"+k[strings.Index(k, "/")+1:])
		}
		assertSameNames(t, "kubectl get configmaps -A -o name", strings.Fields(out), wantNames)
	})

	t.Run("json names the namespaces, each asked as the owner", func(t *testing.T) {
		status, auditID, body := do(t, rawClient(t, &identity{proxyConfig: owner.proxyConfig}), http.MethodGet,
			"/api/v1/configmaps?limit=1", http.Header{"Accept": {"application/json"}}, "")
		if status != http.StatusOK {
			t.Fatalf("GET /api/v1/configmaps: %d %s", status, body)
		}
		var list struct {
			Metadata metav1.ListMeta `json:"metadata"`
			Items    []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, item := range list.Items {
			got = append(got, item.Metadata.Namespace+"/"+item.Metadata.Name)
		}
		assertSameNames(t, "items", got, wantList)
		if list.Metadata.Continue != "" || list.Metadata.ResourceVersion != "" {
			t.Errorf("merged list metadata %+v", list.Metadata)
		}
		events := apiServerEvents(t, auditID, len(own))
		var uris []string
		for _, e := range events {
			if e.Stage != "ResponseComplete" {
				continue
			}
			if e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != owner.name {
				t.Errorf("API server was asked %s not as the owner: %+v", e.RequestURI, e)
			}
			uris = append(uris, strings.Split(e.RequestURI, "?")[0])
		}
		assertSameNames(t, "requests the API server received", uris,
			[]string{"/api/v1/namespaces/e2e-allns-one/configmaps", "/api/v1/namespaces/e2e-allns-two/configmaps"})
	})

	t.Run("protobuf only is not acceptable", func(t *testing.T) {
		status, _, body := do(t, rawClient(t, &identity{proxyConfig: owner.proxyConfig}), http.MethodGet,
			"/api/v1/configmaps", http.Header{"Accept": {"application/vnd.kubernetes.protobuf"}}, "")
		if status != http.StatusNotAcceptable {
			t.Fatalf("protobuf-only list: %d %q", status, body)
		}
	})

	t.Run("directly the API server refuses", func(t *testing.T) {
		out, err := env.cluster.Kubectl(ctx, owner.directKubeconfig, "get", "configmaps", "-A")
		if err == nil || !strings.Contains(strings.ToLower(out), "forbidden") {
			t.Fatalf("direct kubectl get configmaps -A as the owner: %v: %s", err, out)
		}
	})
}
