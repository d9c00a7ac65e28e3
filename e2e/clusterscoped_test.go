package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// clusterScopedTenant lets cs-carol list storage classes and nodes: the class cs-e2e-gold by name, the
// cs-e2e-silver-* classes by expression, cs-e2e-labeled by label, and the nodes of the pool cs-e2e-pool=a.
// cs-dave owns the same tenant without proxy settings.
const clusterScopedTenant = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-clusterscoped
spec:
  owners:
  - kind: User
    name: cs-carol
    proxySettings:
    - kind: StorageClasses
      operations: [List]
    - kind: Nodes
      operations: [List]
  - kind: User
    name: cs-dave
  nodeSelector:
    cs-e2e-pool: a
  storageClasses:
    allowed: [cs-e2e-gold]
    allowedRegex: "^cs-e2e-silver-.*$"
    matchLabels:
      cs-e2e-tier: allowed
`

// TestClusterScoped: through the proxy and with the real kubectl, a tenant owner granted List sees exactly
// the storage classes and nodes their tenant allows; another class is as absent as a missing one. An
// owner without the grant, and the same owner directly at the API server, are refused by RBAC.
func TestClusterScoped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin, err := kubernetes.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	adminDynamic, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}

	classes := map[string]map[string]string{
		"cs-e2e-gold":     nil,
		"cs-e2e-silver-1": nil,
		"cs-e2e-labeled":  {"cs-e2e-tier": "allowed"},
		"cs-e2e-bronze":   {"cs-e2e-tier": "other"},
	}
	for name, labels := range classes {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Provisioner: "example.com/cs-e2e"}
		if _, err := admin.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, pool := range map[string]string{"cs-e2e-node-a": "a", "cs-e2e-node-b": "b"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"cs-e2e-pool": pool}}}
		if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.cluster.ApplyYAML(ctx, []byte(clusterScopedTenant)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = adminDynamic.Resource(nsTestTenants).Delete(ctx, "e2e-clusterscoped", metav1.DeleteOptions{})
		for name := range classes {
			_ = admin.StorageV1().StorageClasses().Delete(ctx, name, metav1.DeleteOptions{})
		}
		for _, name := range []string{"cs-e2e-node-a", "cs-e2e-node-b"} {
			_ = admin.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
		}
	})

	carol := newNamespaceOwner(t, ctx, "cs-carol", "e2e-clusterscoped", nil, testbed.CapsuleUsersGroup)
	dave := newNamespaceOwner(t, ctx, "cs-dave", "e2e-clusterscoped", nil, testbed.CapsuleUsersGroup)

	wantClasses := []string{"cs-e2e-gold", "cs-e2e-labeled", "cs-e2e-silver-1"}
	wantNodes := []string{"cs-e2e-node-a"}
	// Other tests share the cluster: only this test's objects are compared.
	ours := func(names []string) []string {
		var kept []string
		for _, n := range names {
			if strings.HasPrefix(n, "cs-e2e-") {
				kept = append(kept, n)
			}
		}
		return kept
	}
	// The proxy learns of the tenant and the objects from its watches: wait until it serves them.
	pollFor(t, ctx, "the proxy to serve cs-carol's storage classes and nodes", func(ctx context.Context) (bool, error) {
		sc, err := carol.kubectl(t, ctx, "get", "storageclasses", "-o", "name")
		if err != nil {
			return false, err
		}
		nodes, err := carol.kubectl(t, ctx, "get", "nodes", "-o", "name")
		if err != nil {
			return false, err
		}
		return len(ours(namesWithPrefix(sc, "storageclass.storage.k8s.io/"))) == len(wantClasses) &&
			len(ours(namesWithPrefix(nodes, "node/"))) == len(wantNodes), nil
	})

	t.Run("lists show exactly the allowed set", func(t *testing.T) {
		out, err := carol.kubectl(t, ctx, "get", "storageclasses", "-o", "name")
		if err != nil {
			t.Fatalf("get storageclasses: %v: %s", err, out)
		}
		assertSameNames(t, "storage classes", ours(namesWithPrefix(out, "storageclass.storage.k8s.io/")), wantClasses)
		out, err = carol.kubectl(t, ctx, "get", "nodes", "-o", "name")
		if err != nil {
			t.Fatalf("get nodes: %v: %s", err, out)
		}
		assertSameNames(t, "nodes", ours(namesWithPrefix(out, "node/")), wantNodes)
	})

	t.Run("default table output", func(t *testing.T) {
		out, err := carol.kubectl(t, ctx, "get", "storageclasses", "--no-headers")
		if err != nil {
			t.Fatalf("get storageclasses: %v: %s", err, out)
		}
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if fields := strings.Fields(line); len(fields) > 0 {
				names = append(names, fields[0])
			}
		}
		assertSameNames(t, "storage classes in the table", ours(names), wantClasses)
		if !strings.Contains(out, "example.com/cs-e2e") {
			t.Errorf("table lacks the provisioner column:\n%s", out)
		}
	})

	t.Run("a client selector only narrows", func(t *testing.T) {
		out, err := carol.kubectl(t, ctx, "get", "storageclasses", "-o", "name", "-l", "cs-e2e-tier notin (allowed)")
		if err != nil {
			t.Fatalf("get storageclasses: %v: %s", err, out)
		}
		assertSameNames(t, "storage classes not labeled allowed", ours(namesWithPrefix(out, "storageclass.storage.k8s.io/")), []string{"cs-e2e-gold", "cs-e2e-silver-1"})
		out, err = carol.kubectl(t, ctx, "get", "nodes", "-o", "name", "--field-selector", "metadata.name=cs-e2e-node-b")
		if err != nil {
			t.Fatalf("get nodes: %v: %s", err, out)
		}
		if names := namesWithPrefix(out, "node/"); len(names) != 0 {
			t.Errorf("field selector widened the nodes to %v", names)
		}
	})

	t.Run("a class outside the set is as absent as a missing one", func(t *testing.T) {
		hidden, err := carol.kubectl(t, ctx, "get", "storageclass", "cs-e2e-bronze")
		if err == nil || !strings.Contains(hidden, "NotFound") {
			t.Fatalf("get storageclass cs-e2e-bronze: %v: %s, want NotFound", err, hidden)
		}
		missing, _ := carol.kubectl(t, ctx, "get", "storageclass", "cs-e2e-missing")
		if strings.ReplaceAll(hidden, "cs-e2e-bronze", "X") != strings.ReplaceAll(missing, "cs-e2e-missing", "X") {
			t.Errorf("hidden and missing classes differ:\n%s\n%s", hidden, missing)
		}
		out, err := carol.kubectl(t, ctx, "get", "storageclass", "cs-e2e-gold", "-o", "name")
		if err != nil || strings.TrimSpace(out) != "storageclass.storage.k8s.io/cs-e2e-gold" {
			t.Errorf("get storageclass cs-e2e-gold: %v: %s", err, out)
		}
		out, err = carol.kubectl(t, ctx, "get", "node", "cs-e2e-node-b")
		if err == nil || !strings.Contains(out, "NotFound") {
			t.Errorf("get node cs-e2e-node-b: %v: %s, want NotFound", err, out)
		}
	})

	t.Run("protobuf list and a watch that follows new classes", func(t *testing.T) {
		cfg := rest.CopyConfig(carol.proxyConfig)
		cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeProtobuf, runtime.ContentTypeProtobuf
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		list, err := client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, sc := range list.Items {
			names = append(names, sc.Name)
		}
		assertSameNames(t, "storage classes over protobuf", ours(names), wantClasses)

		w, err := client.StorageV1().StorageClasses().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		for _, name := range []string{"cs-e2e-copper", "cs-e2e-silver-2"} { // only the second is allowed
			sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "example.com/cs-e2e"}
			if _, err := admin.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = admin.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
			})
		}
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatal("watch ended")
				}
				sc, isClass := ev.Object.(*storagev1.StorageClass)
				if !isClass || !strings.HasPrefix(sc.Name, "cs-e2e-") {
					continue // other tests' classes
				}
				if sc.Name != "cs-e2e-silver-2" || ev.Type != watch.Added {
					t.Fatalf("watch event %s %s, want only ADDED cs-e2e-silver-2", ev.Type, sc.Name)
				}
				return
			case <-ctx.Done():
				t.Fatal("no watch event for cs-e2e-silver-2")
			}
		}
	})

	t.Run("without the grant, and directly, RBAC refuses", func(t *testing.T) {
		out, err := dave.kubectl(t, ctx, "get", "storageclasses")
		if err == nil || !strings.Contains(out, "Forbidden") {
			t.Errorf("cs-dave get storageclasses through the proxy: %v: %s, want Forbidden", err, out)
		}
		out, err = env.cluster.Kubectl(ctx, carol.directKubeconfig, "get", "nodes")
		if err == nil || !strings.Contains(out, "Forbidden") {
			t.Errorf("cs-carol get nodes directly: %v: %s, want Forbidden", err, out)
		}
	})
}
