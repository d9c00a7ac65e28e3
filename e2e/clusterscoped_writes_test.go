package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// writeTenants: in e2e-cw-pool, cw-ivy may list, update and delete the nodes of pool a and the classes
// cw-e2e-gold* (by name) and those labelled cw-e2e-tier=a; cw-jack owns the same tenant but may only list.
// e2e-cw-legacy grants its owner cw-kate, through the older annotations, listing and update of the nodes of
// pool b and listing and deletion of the classes labelled cw-e2e-tier=b.
const writeTenants = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-cw-pool
spec:
  owners:
  - kind: User
    name: cw-ivy
    proxySettings:
    - kind: Nodes
      operations: [List, Update, Delete]
    - kind: StorageClasses
      operations: [List, Update, Delete]
  - kind: User
    name: cw-jack
    proxySettings:
    - kind: Nodes
      operations: [List]
    - kind: StorageClasses
      operations: [List]
  nodeSelector:
    cw-e2e-pool: a
  storageClasses:
    allowedRegex: "^cw-e2e-gold"
    matchLabels:
      cw-e2e-tier: a
---
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-cw-legacy
  annotations:
    capsule.clastix.io/enable-node-listing: "true"
    capsule.clastix.io/enable-node-update: "true"
    capsule.clastix.io/enable-storageclass-listing: "true"
    capsule.clastix.io/enable-storageclass-deletion: "true"
spec:
  owners:
  - kind: User
    name: cw-kate
  nodeSelector:
    cw-e2e-pool: b
  storageClasses:
    matchLabels:
      cw-e2e-tier: b
`

// TestClusterScopedWrites: with the real kubectl through the proxy, a tenant owner granted Update and Delete
// cordons, taints, labels and uncordons the nodes of their pool and deletes their storage classes, which
// the proxy writes with its own ServiceAccount on exactly the checked resourceVersion; writes outside the
// allowed set, by an owner granted only List, of other kinds (create, deletecollection), or that would move
// an object into or out of a tenant's set are refused and change nothing.
func TestClusterScopedWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, adminDynamic := clusterScopedObjects(t, ctx, writeTenants, []string{"e2e-cw-pool", "e2e-cw-legacy"}, "cw-e2e-pool",
		map[string]string{"cw-e2e-node-a": "a", "cw-e2e-node-a2": "a", "cw-e2e-node-b": "b", "cw-e2e-node-x": "x"},
		map[string]map[string]string{
			"cw-e2e-gold": nil, "cw-e2e-gold-2": nil, "cw-e2e-gold-3": nil, "cw-e2e-labeled": {"cw-e2e-tier": "a"},
			"cw-e2e-bronze": {"cw-e2e-tier": "b"}, "cw-e2e-other": nil,
		})
	ivy := newNamespaceOwner(t, ctx, "cw-ivy", "e2e-cw-pool", nil, testbed.CapsuleUsersGroup)
	jack := newNamespaceOwner(t, ctx, "cw-jack", "e2e-cw-pool", nil, testbed.CapsuleUsersGroup)
	kate := newNamespaceOwner(t, ctx, "cw-kate", "e2e-cw-legacy", nil, testbed.CapsuleUsersGroup)
	for _, o := range []*namespaceOwner{ivy, jack, kate} {
		pollFor(t, ctx, "the proxy to serve "+o.name+"'s nodes", func(ctx context.Context) (bool, error) {
			out, err := o.kubectl(t, ctx, "get", "nodes", "-o", "name")
			return err == nil && len(namesWithPrefix(out, "node/cw-e2e-")) > 0, err
		})
	}
	node := func(name string) *corev1.Node {
		t.Helper()
		n, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get node %s directly: %v", name, err)
		}
		return n
	}
	hasTaint := func(n *corev1.Node, key string) bool {
		return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
	}

	t.Run("the granted owner cordons, taints, labels and uncordons a node of the pool", func(t *testing.T) {
		for _, args := range [][]string{
			{"cordon", "cw-e2e-node-a"},
			{"taint", "nodes", "cw-e2e-node-a", "cw-e2e-maintenance=ivy:NoSchedule"},
			{"label", "node", "cw-e2e-node-a", "cw-e2e-team=ivy"},
			{"annotate", "node", "cw-e2e-node-a", "cw-e2e-note=drained"},
		} {
			writeWithKubectl(t, ctx, ivy, args...)
		}
		n := node("cw-e2e-node-a")
		if !n.Spec.Unschedulable || !hasTaint(n, "cw-e2e-maintenance") || n.Labels["cw-e2e-team"] != "ivy" || n.Annotations["cw-e2e-note"] != "drained" {
			t.Errorf("directly, node a is unschedulable=%v taints=%v labels=%v annotations=%v: the writes did not all land",
				n.Spec.Unschedulable, n.Spec.Taints, n.Labels, n.Annotations)
		}
		writeWithKubectl(t, ctx, ivy, "uncordon", "cw-e2e-node-a")
		writeWithKubectl(t, ctx, ivy, "taint", "nodes", "cw-e2e-node-a", "cw-e2e-maintenance-")
		if n := node("cw-e2e-node-a"); n.Spec.Unschedulable || hasTaint(n, "cw-e2e-maintenance") {
			t.Errorf("directly, node a is still unschedulable=%v taints=%v", n.Spec.Unschedulable, n.Spec.Taints)
		}
	})

	t.Run("server-side apply, JSON patch and update through client-go", func(t *testing.T) {
		client, err := kubernetes.NewForConfig(ivy.proxyConfig)
		if err != nil {
			t.Fatal(err)
		}
		// The node lifecycle controller writes these nodes too: a 409 from the proxy is retried.
		apply := corev1apply.Node("cw-e2e-node-a2").WithLabels(map[string]string{"cw-e2e-applied": "yes"})
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			_, err := client.CoreV1().Nodes().Apply(ctx, apply, metav1.ApplyOptions{FieldManager: "cw-e2e", Force: true})
			return err
		}); err != nil {
			t.Fatalf("server-side apply: %v", err)
		}
		patch := []byte(`[{"op":"add","path":"/metadata/annotations/cw-e2e-json","value":"patched"}]`)
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			_, err := client.CoreV1().Nodes().Patch(ctx, "cw-e2e-node-a2", types.JSONPatchType, patch, metav1.PatchOptions{})
			return err
		}); err != nil {
			t.Fatalf("JSON patch: %v", err)
		}
		var current *corev1.Node
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var err error
			if current, err = client.CoreV1().Nodes().Get(ctx, "cw-e2e-node-a2", metav1.GetOptions{}); err != nil {
				return err
			}
			current.Labels["cw-e2e-updated"] = "yes"
			_, err = client.CoreV1().Nodes().Update(ctx, current, metav1.UpdateOptions{})
			return err
		}); err != nil {
			t.Fatalf("update: %v", err)
		}
		// The client's own precondition holds: an update from a stale version is a conflict.
		stale := current.DeepCopy()
		stale.ResourceVersion = "1"
		stale.Labels["cw-e2e-stale"] = "yes"
		if _, err := client.CoreV1().Nodes().Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("update from resourceVersion 1: %v, want a Conflict", err)
		}
		n := node("cw-e2e-node-a2")
		if n.Labels["cw-e2e-applied"] != "yes" || n.Annotations["cw-e2e-json"] != "patched" || n.Labels["cw-e2e-updated"] != "yes" || n.Labels["cw-e2e-stale"] != "" {
			t.Errorf("directly, node a2 has labels %v annotations %v", n.Labels, n.Annotations)
		}
		if !slices.ContainsFunc(n.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return f.Manager == "cw-e2e" }) {
			t.Errorf("the apply's field manager is not among %v", n.ManagedFields)
		}
	})

	t.Run("outside the pool, a missing node and a List-only owner: the API server's Forbidden, nothing changed", func(t *testing.T) {
		// kubectl cordon reads the node first: a node the owner may not see is NotFound, like a missing one
		// (the no-oracle rule of reads); a visible node the owner may not write is the API server's Forbidden.
		for _, c := range []struct {
			owner *namespaceOwner
			node  string
			want  string
		}{{ivy, "cw-e2e-node-b", "NotFound"}, {ivy, "cw-e2e-node-x", "NotFound"}, {ivy, "cw-e2e-node-missing", "NotFound"},
			{jack, "cw-e2e-node-a", "Forbidden"}, {kate, "cw-e2e-node-a", "NotFound"}} {
			// kubectl cordon reports a refused patch but exits 0: the message is what counts.
			out, err := c.owner.kubectl(t, ctx, "cordon", c.node)
			if !strings.Contains(strings.ToLower(out), strings.ToLower(c.want)) || strings.Contains(out, "cordoned") {
				t.Errorf("%s cordon %s: %v: %s, want %s", c.owner.name, c.node, err, out, c.want)
			}
		}
		hidden, _ := ivy.kubectl(t, ctx, "cordon", "cw-e2e-node-b")
		missing, _ := ivy.kubectl(t, ctx, "cordon", "cw-e2e-node-missing")
		if strings.ReplaceAll(hidden, "cw-e2e-node-b", "X") != strings.ReplaceAll(missing, "cw-e2e-node-missing", "X") {
			t.Errorf("kubectl cordon of another pool's node and of a missing one differ:\n%s\n%s", hidden, missing)
		}
		if n := node("cw-e2e-node-a"); n.Spec.Unschedulable {
			t.Error("node a was cordoned by an owner without the grant")
		}
		for _, name := range []string{"cw-e2e-node-b", "cw-e2e-node-x"} {
			if n := node(name); n.Spec.Unschedulable {
				t.Errorf("node %s was cordoned", name)
			}
		}
		// No oracle: another pool's node and a missing one answer alike, status and body.
		patch := `{"spec":{"unschedulable":true}}`
		hiddenCode, _, hidden := ownerRequest(t, ivy, http.MethodPatch, "/api/v1/nodes/cw-e2e-node-b", "application/strategic-merge-patch+json", patch)
		missingCode, _, missing := ownerRequest(t, ivy, http.MethodPatch, "/api/v1/nodes/cw-e2e-node-missing", "application/strategic-merge-patch+json", patch)
		if hiddenCode != http.StatusForbidden || hiddenCode != missingCode ||
			strings.ReplaceAll(hidden, "cw-e2e-node-b", "X") != strings.ReplaceAll(missing, "cw-e2e-node-missing", "X") {
			t.Errorf("another pool's node: %d %s\nmissing node: %d %s\nwant the same 403", hiddenCode, hidden, missingCode, missing)
		}
	})

	t.Run("the legacy annotations grant update of the tenant's nodes", func(t *testing.T) {
		writeWithKubectl(t, ctx, kate, "cordon", "cw-e2e-node-b")
		if n := node("cw-e2e-node-b"); !n.Spec.Unschedulable {
			t.Error("directly, node b is not cordoned")
		}
		writeWithKubectl(t, ctx, kate, "uncordon", "cw-e2e-node-b")
		// Update is granted, deletion is not.
		out, err := kate.kubectl(t, ctx, "delete", "node", "cw-e2e-node-b", "--wait=false")
		if err == nil || !strings.Contains(out, "Forbidden") {
			t.Errorf("cw-kate delete node cw-e2e-node-b: %v: %s, want Forbidden", err, out)
		}
	})

	t.Run("storage classes are deleted only inside the allowed set", func(t *testing.T) {
		writeWithKubectl(t, ctx, ivy, "delete", "storageclass", "cw-e2e-gold-2")
		if _, err := admin.StorageV1().StorageClasses().Get(ctx, "cw-e2e-gold-2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("directly, cw-e2e-gold-2 after its deletion: %v", err)
		}
		writeWithKubectl(t, ctx, kate, "delete", "storageclass", "cw-e2e-bronze")
		for _, c := range []struct {
			owner *namespaceOwner
			class string
		}{{ivy, "cw-e2e-other"}, {jack, "cw-e2e-gold"}, {kate, "cw-e2e-gold"}} {
			out, err := c.owner.kubectl(t, ctx, "delete", "storageclass", c.class, "--wait=false")
			if err == nil || !strings.Contains(out, "Forbidden") {
				t.Errorf("%s delete storageclass %s: %v: %s, want Forbidden", c.owner.name, c.class, err, out)
			}
			if _, err := admin.StorageV1().StorageClasses().Get(ctx, c.class, metav1.GetOptions{}); err != nil {
				t.Errorf("directly, %s after %s's refused deletion: %v", c.class, c.owner.name, err)
			}
		}
	})

	t.Run("moving an object into or out of a tenant's set is refused", func(t *testing.T) {
		for _, args := range [][]string{
			{"label", "node", "cw-e2e-node-a", "cw-e2e-pool=b", "--overwrite"}, // out of pool a, into b
			{"label", "node", "cw-e2e-node-a", "cw-e2e-pool-"},                 // out of pool a
			{"label", "storageclass", "cw-e2e-gold", "cw-e2e-tier=b"},          // also into e2e-cw-legacy's set
			{"label", "storageclass", "cw-e2e-labeled", "cw-e2e-tier=x", "--overwrite"},
		} {
			out, err := ivy.kubectl(t, ctx, args...)
			if err == nil || !strings.Contains(out, "same tenants") {
				t.Errorf("cw-ivy %v: %v: %s, want refused", args, err, out)
			}
		}
		if n := node("cw-e2e-node-a"); n.Labels["cw-e2e-pool"] != "a" {
			t.Errorf("directly, node a is in pool %q", n.Labels["cw-e2e-pool"])
		}
		for name, tier := range map[string]string{"cw-e2e-gold": "", "cw-e2e-labeled": "a"} {
			sc, err := admin.StorageV1().StorageClasses().Get(ctx, name, metav1.GetOptions{})
			if err != nil || sc.Labels["cw-e2e-tier"] != tier {
				t.Errorf("directly, %s: %v, tier %q, want %q", name, err, sc.Labels["cw-e2e-tier"], tier)
			}
		}
	})

	t.Run("create and deletecollection are forwarded as the caller and refused", func(t *testing.T) {
		for _, r := range []struct{ method, path, contentType, body string }{
			{http.MethodPost, "/apis/storage.k8s.io/v1/storageclasses", "application/json", `{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"cw-e2e-gold-new"},"provisioner":"example.com/cw-e2e"}`},
			{http.MethodDelete, "/apis/storage.k8s.io/v1/storageclasses?labelSelector=cw-e2e-tier%3Da", "", ""},
			{http.MethodDelete, "/api/v1/nodes?labelSelector=cw-e2e-pool%3Da", "", ""},
			{http.MethodPatch, "/api/v1/nodes/cw-e2e-node-a/status", "application/merge-patch+json", `{"status":{"capacity":{"pods":"1"}}}`},
		} {
			code, auditID, body := ownerRequest(t, ivy, r.method, r.path, r.contentType, r.body)
			if code != http.StatusForbidden {
				t.Errorf("%s %s: %d %s, want 403", r.method, r.path, code, body)
				continue
			}
			assertImpersonatedUpstream(t, auditID, "cw-ivy")
		}
		if _, err := admin.StorageV1().StorageClasses().Get(ctx, "cw-e2e-labeled", metav1.GetOptions{}); err != nil {
			t.Errorf("directly, cw-e2e-labeled: %v", err)
		}
	})

	t.Run("the API server saw the proxy's ServiceAccount write on the checked resourceVersion", func(t *testing.T) {
		var code int
		var auditID, body string
		for range 5 { // a 409 (the node lifecycle controller wrote meanwhile) is retried
			code, auditID, body = ownerRequest(t, ivy, http.MethodPatch, "/api/v1/nodes/cw-e2e-node-a", "application/merge-patch+json",
				`{"metadata":{"labels":{"cw-e2e-audited":"yes"}}}`)
			if code != http.StatusConflict {
				break
			}
		}
		if code != http.StatusOK {
			t.Fatalf("merge patch: %d %s", code, body)
		}
		rec := waitProxyRecord(t, func(r audit.Record) bool { return r.AuditID == auditID })
		checked := rec.Annotations["clusterscoped.tenant-proxy.io/precondition-resource-version"]
		if rec.User != "cw-ivy" || rec.Module != "clusterscoped" || rec.Annotations["clusterscoped.tenant-proxy.io/credentials"] != "proxy" ||
			rec.Annotations["clusterscoped.tenant-proxy.io/on-behalf-of"] != "cw-ivy" || checked == "" {
			t.Errorf("the proxy's audit record %+v does not say it wrote with its own credentials for cw-ivy", rec)
		}
		events := writeEvents(t, auditID, 3) // the live get, the dry run, the write
		var sawDryRun, sawWrite bool
		for _, e := range events {
			if e.User.Username != proxyServiceAccount || e.ImpersonatedUser != nil {
				t.Errorf("API server event %s %s by %q impersonating %+v, want the proxy's own ServiceAccount", e.Verb, e.RequestURI, e.User.Username, e.ImpersonatedUser)
			}
			if e.Verb != "patch" {
				continue
			}
			if rv := e.RequestObject.Metadata.ResourceVersion; rv != checked {
				t.Errorf("%s carried resourceVersion %q, want the checked %q", e.RequestURI, rv, checked)
			}
			if strings.Contains(e.RequestURI, "dryRun=All") {
				sawDryRun = true
			} else {
				sawWrite = e.ResponseStatus.Code == http.StatusOK
			}
		}
		if !sawDryRun || !sawWrite {
			t.Errorf("API server events %+v: want a dry run and a successful write", events)
		}

		resp, err := http.Get(env.proxy.MetricsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(metrics), `tenant_proxy_clusterscoped_writes_total{kind="Nodes",result="written",verb="patch"}`) {
			t.Error("/metrics does not count the granted write")
		}

		// A DELETE carries the UID and resourceVersion as preconditions.
		class, err := admin.StorageV1().StorageClasses().Get(ctx, "cw-e2e-gold-3", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		code, auditID, body = ownerRequest(t, ivy, http.MethodDelete, "/apis/storage.k8s.io/v1/storageclasses/cw-e2e-gold-3", "", "")
		if code != http.StatusOK {
			t.Fatalf("delete: %d %s", code, body)
		}
		var deleted bool
		for _, e := range writeEvents(t, auditID, 2) {
			if e.Verb == "delete" && e.User.Username == proxyServiceAccount && e.ImpersonatedUser == nil {
				p := e.RequestObject.Preconditions
				deleted = p != nil && p.UID == string(class.UID) && p.ResourceVersion == class.ResourceVersion
			}
		}
		if !deleted {
			t.Errorf("no delete by the proxy with preconditions uid=%s resourceVersion=%s", class.UID, class.ResourceVersion)
		}
	})

	t.Run("self-reviews agree with what the proxy serves", func(t *testing.T) {
		for _, c := range []struct {
			owner  *namespaceOwner
			args   []string
			answer string
		}{
			{ivy, []string{"patch", "nodes/cw-e2e-node-a"}, "yes"},
			{ivy, []string{"update", "nodes"}, "yes"},
			{ivy, []string{"delete", "storageclasses/cw-e2e-gold"}, "yes"},
			{ivy, []string{"patch", "nodes/cw-e2e-node-b"}, "no"},
			{ivy, []string{"patch", "nodes/cw-e2e-node-a", "--subresource", "status"}, "no"},
			{ivy, []string{"create", "storageclasses"}, "no"},
			{ivy, []string{"deletecollection", "nodes"}, "no"},
			{ivy, []string{"list", "nodes"}, "yes"},
			{jack, []string{"list", "storageclasses"}, "yes"},
			{jack, []string{"get", "nodes/cw-e2e-node-a"}, "yes"},
			{jack, []string{"get", "nodes/cw-e2e-node-b"}, "no"},
			{jack, []string{"patch", "nodes/cw-e2e-node-a"}, "no"},
			{kate, []string{"update", "nodes/cw-e2e-node-b"}, "yes"},
			{kate, []string{"delete", "nodes/cw-e2e-node-b"}, "no"},
		} {
			out, _ := c.owner.kubectl(t, ctx, append([]string{"auth", "can-i"}, c.args...)...)
			lines := strings.Split(strings.TrimSpace(out), "\n") // warnings first, the answer last
			if got := strings.TrimSpace(lines[len(lines)-1]); got != c.answer {
				t.Errorf("%s auth can-i %v: %q, want %s", c.owner.name, c.args, out, c.answer)
			}
		}
	})

	t.Run("an open watch ends when its grant is revoked", func(t *testing.T) {
		client, err := kubernetes.NewForConfig(jack.proxyConfig)
		if err != nil {
			t.Fatal(err)
		}
		w, err := client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		// cw-jack loses his proxy settings.
		patch := []byte(`[{"op":"test","path":"/spec/owners/1/name","value":"cw-jack"},{"op":"remove","path":"/spec/owners/1/proxySettings"}]`)
		if _, err := adminDynamic.Resource(nsTestTenants).Patch(ctx, "e2e-cw-pool", types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(time.Minute)
		for {
			select {
			case _, open := <-w.ResultChan():
				if !open {
					out, err := jack.kubectl(t, ctx, "get", "nodes")
					if err == nil || !strings.Contains(out, "Forbidden") {
						t.Errorf("cw-jack get nodes after the revocation: %v: %s, want Forbidden", err, out)
					}
					return
				}
			case <-deadline:
				t.Fatal("the watch still runs a minute after the grant was revoked")
			}
		}
	})
}

// clusterScopedObjects creates, as the administrator, nodes (name to the value of poolLabel), storage
// classes (name to labels, provisioner example.com/e2e) and the Tenants in tenantsYAML (named tenants), all
// removed when t ends; it returns the administrator's clients.
func clusterScopedObjects(t *testing.T, ctx context.Context, tenantsYAML string, tenants []string, poolLabel string,
	nodes map[string]string, classes map[string]map[string]string) (kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	admin, err := kubernetes.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	adminDynamic, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, name := range tenants {
			_ = adminDynamic.Resource(nsTestTenants).Delete(ctx, name, metav1.DeleteOptions{})
		}
		for name := range nodes {
			_ = admin.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
		}
		for name := range classes {
			_ = admin.StorageV1().StorageClasses().Delete(ctx, name, metav1.DeleteOptions{})
		}
	})
	for name, pool := range nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{poolLabel: pool}}}
		if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, labels := range classes {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Provisioner: "example.com/e2e"}
		if _, err := admin.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.cluster.ApplyYAML(ctx, []byte(tenantsYAML)); err != nil {
		t.Fatal(err)
	}
	return admin, adminDynamic
}

// writeWithKubectl runs a kubectl write through the proxy that must succeed. The node lifecycle controller
// also writes the test's nodes (not-ready taints), so a 409 Conflict, the proxy's answer when the object
// changed between its check and the write, is retried as a controller would.
func writeWithKubectl(t *testing.T, ctx context.Context, o *namespaceOwner, args ...string) {
	t.Helper()
	var out string
	var err error
	for range 5 {
		out, err = o.kubectl(t, ctx, args...)
		if err == nil || !strings.Contains(out, "the object has been modified") && !strings.Contains(out, "Conflict") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s kubectl %v: %v: %s", o.name, args, err, out)
	}
}

// ownerRequest sends one request through the proxy as o and returns status, Audit-Id and body.
func ownerRequest(t *testing.T, o *namespaceOwner, method, path, contentType, body string) (int, string, string) {
	t.Helper()
	client, err := rest.HTTPClientFor(o.proxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{"Accept": {"application/json"}}
	if body != "" {
		header.Set("Content-Type", contentType)
	}
	return do(t, client, method, path, header, body)
}

// writeEvent is the part of the API server's audit event that shows a write and its preconditions.
type writeEvent struct {
	auditEvent
	RequestObject struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Preconditions *struct {
			UID             string `json:"uid"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"preconditions"`
	} `json:"requestObject"`
}

// writeEvents returns the API server's audit events of auditID with their request objects.
func writeEvents(t *testing.T, auditID string, wantAtLeast int) []writeEvent {
	t.Helper()
	apiServerEvents(t, auditID, wantAtLeast) // waits for them
	var out []writeEvent
	data := mustRead(env.cluster.AuditLog)
	for _, line := range strings.Split(data, "\n") {
		if !strings.Contains(line, auditID) {
			continue
		}
		var e writeEvent
		if err := json.Unmarshal([]byte(line), &e); err == nil && e.AuditID == auditID {
			out = append(out, e)
		}
	}
	if len(out) < wantAtLeast {
		t.Fatalf("%d API server events for %s, want at least %d", len(out), auditID, wantAtLeast)
	}
	return out
}
