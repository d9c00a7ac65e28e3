package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
	admin, _ := clusterScopedObjects(t, ctx, clusterScopedTenant, []string{"e2e-clusterscoped"}, "cs-e2e-pool",
		map[string]string{"cs-e2e-node-a": "a", "cs-e2e-node-b": "b"},
		map[string]map[string]string{
			"cs-e2e-gold":     nil,
			"cs-e2e-silver-1": nil,
			"cs-e2e-labeled":  {"cs-e2e-tier": "allowed"},
			"cs-e2e-bronze":   {"cs-e2e-tier": "other"},
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
		if !strings.Contains(out, "example.com/e2e") {
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

// volumeTenants are two tenants for persistent volumes: cs-erin may list the volumes of e2e-cs-oil, cs-frank
// owns it without proxy settings, and cs-gina owns e2e-cs-gas.
const volumeTenants = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-cs-oil
spec:
  owners:
  - kind: User
    name: cs-erin
    proxySettings:
    - kind: PersistentVolumes
      operations: [List]
  - kind: User
    name: cs-frank
---
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-cs-gas
spec:
  owners:
  - kind: User
    name: cs-gina
`

// tenantGrantTenant grants cs-hana List of the kind Tenant, which Capsule's Go API defines (TenantProxy) but
// the v1beta2 CRD of Capsule v0.13 does not admit.
const tenantGrantTenant = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-cs-tnt
spec:
  owners:
  - kind: User
    name: cs-hana
    proxySettings:
    - kind: Tenant
      operations: [List]
`

// tenantGrantTenantAnnotation grants the same with the Tenant annotation, for a CRD that rejects the kind.
const tenantGrantTenantAnnotation = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-cs-tnt
  annotations:
    capsule.clastix.io/enable-tenant-listing: "true"
spec:
  owners:
  - kind: User
    name: cs-hana
`

// csVolume is a volume pre-bound to the claim data in claimNamespace (or to none), as an administrator
// writes it; a pre-bound claim that does not exist leaves the claimRef in place.
func csVolume(name, claimNamespace string, labels map[string]string) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
	if claimNamespace != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claimNamespace, Name: "data"}
	}
	return pv
}

// TestClusterScopedVolumesAndTenants: through the proxy, with the real kubectl, an owner granted List of
// PersistentVolumes sees the volumes bound in their tenant's namespaces (membership as Capsule records it,
// not the tenant label on a volume), and an owner granted List of Tenant sees only the Tenants they own
// (where the installed Capsule CRD admits that grant).
func TestClusterScopedVolumesAndTenants(t *testing.T) {
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
	if err := env.cluster.ApplyYAML(ctx, []byte(volumeTenants)); err != nil {
		t.Fatal(err)
	}
	volumes := []string{"cs-e2e-pv-oil", "cs-e2e-pv-gas", "cs-e2e-pv-free", "cs-e2e-pv-oil-new", "cs-e2e-pv-gas-new"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, name := range []string{"e2e-cs-oil", "e2e-cs-gas"} { // their namespaces go with them
			_ = adminDynamic.Resource(nsTestTenants).Delete(ctx, name, metav1.DeleteOptions{})
		}
		for _, name := range volumes {
			_ = admin.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{})
		}
	})

	erin := newNamespaceOwner(t, ctx, "cs-erin", "e2e-cs-oil", []string{"cs-e2e-oil-1"}, testbed.CapsuleUsersGroup)
	frank := newNamespaceOwner(t, ctx, "cs-frank", "e2e-cs-oil", nil, testbed.CapsuleUsersGroup)
	gina := newNamespaceOwner(t, ctx, "cs-gina", "e2e-cs-gas", []string{"cs-e2e-gas-1"}, testbed.CapsuleUsersGroup)
	for _, o := range []*namespaceOwner{erin, gina} {
		for _, ns := range o.creates {
			createNamespaceThroughProxy(t, ctx, o, ns)
		}
		waitTenantStatusLists(t, ctx, adminDynamic, o.tenant, o.creates...)
	}
	// The gas volume carries oil's tenant label, and so does the unbound one: neither is oil's.
	oilLabel := map[string]string{"capsule.clastix.io/tenant": "e2e-cs-oil"}
	for _, pv := range []*corev1.PersistentVolume{
		csVolume("cs-e2e-pv-oil", "cs-e2e-oil-1", nil),
		csVolume("cs-e2e-pv-gas", "cs-e2e-gas-1", oilLabel),
		csVolume("cs-e2e-pv-free", "", oilLabel),
	} {
		if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ours := func(names []string) []string {
		var kept []string
		for _, n := range names {
			if strings.HasPrefix(n, "cs-e2e-pv-") {
				kept = append(kept, n)
			}
		}
		return kept
	}
	pollFor(t, ctx, "the proxy to serve cs-erin's volumes", func(ctx context.Context) (bool, error) {
		pvs, err := erin.kubectl(t, ctx, "get", "pv", "-o", "name")
		if err != nil {
			return false, err
		}
		return len(ours(namesWithPrefix(pvs, "persistentvolume/"))) == 1, nil
	})

	t.Run("volumes of the tenant's namespaces, in every format", func(t *testing.T) {
		out, err := erin.kubectl(t, ctx, "get", "pv", "-o", "name")
		if err != nil {
			t.Fatalf("get pv: %v: %s", err, out)
		}
		assertSameNames(t, "volumes", ours(namesWithPrefix(out, "persistentvolume/")), []string{"cs-e2e-pv-oil"})
		out, err = erin.kubectl(t, ctx, "get", "pv", "--no-headers")
		if err != nil {
			t.Fatalf("get pv: %v: %s", err, out)
		}
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if fields := strings.Fields(line); len(fields) > 0 {
				names = append(names, fields[0])
			}
		}
		assertSameNames(t, "volumes in the table", ours(names), []string{"cs-e2e-pv-oil"})
		if !strings.Contains(out, "cs-e2e-oil-1/data") {
			t.Errorf("table lacks the claim column:\n%s", out)
		}
		out, err = erin.kubectl(t, ctx, "get", "pv", "-o", "name", "-l", "capsule.clastix.io/tenant=e2e-cs-oil")
		if err != nil {
			t.Fatalf("get pv -l: %v: %s", err, out)
		}
		// Capsule labels the volumes claimed in a tenant (only those without the label yet), so the selector
		// may match cs-e2e-pv-oil; the gas and unbound volumes that carry oil's label must stay hidden.
		for _, name := range ours(namesWithPrefix(out, "persistentvolume/")) {
			if name != "cs-e2e-pv-oil" {
				t.Errorf("the tenant label selector widened the volumes to %s", name)
			}
		}
		cfg := rest.CopyConfig(erin.proxyConfig)
		cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeProtobuf, runtime.ContentTypeProtobuf
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		list, err := client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names = nil
		for _, pv := range list.Items {
			names = append(names, pv.Name)
		}
		assertSameNames(t, "volumes over protobuf", ours(names), []string{"cs-e2e-pv-oil"})
	})

	t.Run("another tenant's volume is as absent as a missing one", func(t *testing.T) {
		hidden, err := erin.kubectl(t, ctx, "get", "pv", "cs-e2e-pv-gas")
		if err == nil || !strings.Contains(hidden, "NotFound") {
			t.Fatalf("get pv cs-e2e-pv-gas: %v: %s, want NotFound", err, hidden)
		}
		missing, _ := erin.kubectl(t, ctx, "get", "pv", "cs-e2e-pv-nope")
		if strings.ReplaceAll(hidden, "cs-e2e-pv-gas", "X") != strings.ReplaceAll(missing, "cs-e2e-pv-nope", "X") {
			t.Errorf("hidden and missing volumes differ:\n%s\n%s", hidden, missing)
		}
	})

	t.Run("a watch follows new volumes", func(t *testing.T) {
		client, err := kubernetes.NewForConfig(erin.proxyConfig)
		if err != nil {
			t.Fatal(err)
		}
		list, err := client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := client.CoreV1().PersistentVolumes().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		// Only the second is bound in oil's namespace.
		for _, pv := range []*corev1.PersistentVolume{csVolume("cs-e2e-pv-gas-new", "cs-e2e-gas-1", oilLabel), csVolume("cs-e2e-pv-oil-new", "cs-e2e-oil-1", nil)} {
			if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatal("watch ended")
				}
				pv, isVolume := ev.Object.(*corev1.PersistentVolume)
				if !isVolume || !strings.HasPrefix(pv.Name, "cs-e2e-pv-") {
					continue // other tests' volumes
				}
				if pv.Name != "cs-e2e-pv-oil-new" || ev.Type != watch.Added {
					t.Fatalf("watch event %s %s, want only ADDED cs-e2e-pv-oil-new", ev.Type, pv.Name)
				}
				return
			case <-ctx.Done():
				t.Fatal("no watch event for cs-e2e-pv-oil-new")
			}
		}
	})

	t.Run("the API server serves Tenants in the media types the proxy does", func(t *testing.T) {
		// The proxy's Tenant reader refuses protobuf for the objects themselves and accepts it for their
		// metadata, as kube-apiserver does for custom resources; check the API server's side of that.
		client, err := rest.HTTPClientFor(env.cluster.Admin)
		if err != nil {
			t.Fatal(err)
		}
		for accept, want := range map[string]int{
			"application/vnd.kubernetes.protobuf":                                                 http.StatusNotAcceptable,
			"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io": http.StatusOK,
		} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.cluster.Admin.Host+"/apis/capsule.clastix.io/v1beta2/tenants", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", accept)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s: the API server answered %d, the proxy answers %d", accept, resp.StatusCode, want)
			}
		}
	})

	t.Run("an owner granted Tenant sees only the tenants they own", func(t *testing.T) {
		err := env.cluster.ApplyYAML(ctx, []byte(tenantGrantTenant))
		if err != nil && strings.Contains(err.Error(), `Unsupported value: "Tenant"`) {
			// Capsule v0.13's CRD rejects the kind: the annotation is the grant it can store.
			t.Logf("this Capsule's Tenant CRD does not admit proxySettings kind Tenant; granting with the annotation")
			err = env.cluster.ApplyYAML(ctx, []byte(tenantGrantTenantAnnotation))
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = adminDynamic.Resource(nsTestTenants).Delete(context.Background(), "e2e-cs-tnt", metav1.DeleteOptions{})
		})
		hana := newNamespaceOwner(t, ctx, "cs-hana", "e2e-cs-tnt", nil, testbed.CapsuleUsersGroup)
		pollFor(t, ctx, "the proxy to serve cs-hana's tenant", func(ctx context.Context) (bool, error) {
			out, err := hana.kubectl(t, ctx, "get", "tenants", "-o", "name")
			return err == nil && slices.Equal(namesWithPrefix(out, "tenant.capsule.clastix.io/"), []string{"e2e-cs-tnt"}), err
		})
		out, err := hana.kubectl(t, ctx, "get", "tenants", "--no-headers")
		if err != nil || strings.Fields(out)[0] != "e2e-cs-tnt" || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("get tenants as a table: %v: %s", err, out)
		}
		out, err = hana.kubectl(t, ctx, "get", "tenant", "e2e-cs-tnt", "-o", "jsonpath={.spec.owners[0].name}")
		if err != nil || out != "cs-hana" {
			t.Errorf("get tenant e2e-cs-tnt: %v: %s", err, out)
		}
		hidden, err := hana.kubectl(t, ctx, "get", "tenant", "e2e-cs-oil")
		if err == nil || !strings.Contains(hidden, "NotFound") {
			t.Fatalf("get tenant e2e-cs-oil: %v: %s, want NotFound", err, hidden)
		}
		missing, _ := hana.kubectl(t, ctx, "get", "tenant", "e2e-cs-nope")
		if strings.ReplaceAll(hidden, "e2e-cs-oil", "X") != strings.ReplaceAll(missing, "e2e-cs-nope", "X") {
			t.Errorf("hidden and missing tenants differ:\n%s\n%s", hidden, missing)
		}
	})

	t.Run("without the grant, and directly, RBAC refuses", func(t *testing.T) {
		for _, args := range [][]string{{"get", "pv"}, {"get", "tenants"}} {
			out, err := frank.kubectl(t, ctx, args...)
			if err == nil || !strings.Contains(out, "Forbidden") {
				t.Errorf("cs-frank %v through the proxy: %v: %s, want Forbidden", args, err, out)
			}
			out, err = env.cluster.Kubectl(ctx, erin.directKubeconfig, args...)
			if err == nil || !strings.Contains(out, "Forbidden") {
				t.Errorf("cs-erin %v directly: %v: %s, want Forbidden", args, err, out)
			}
		}
		out, err := gina.kubectl(t, ctx, "get", "pv")
		if err == nil || !strings.Contains(out, "Forbidden") {
			t.Errorf("cs-gina get pv through the proxy: %v: %s, want Forbidden", err, out)
		}
		// cs-erin has no Tenant grant: the Tenant reader leaves her to RBAC too.
		out, err = erin.kubectl(t, ctx, "get", "tenants")
		if err == nil || !strings.Contains(out, "Forbidden") {
			t.Errorf("cs-erin get tenants through the proxy: %v: %s, want Forbidden", err, out)
		}
	})
}
