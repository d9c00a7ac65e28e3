package testbed_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// With CapsuleCRDs and no Capsule, the cluster serves Capsule's resources as plain objects: v1beta2 only,
// no conversion, no webhooks, and the CapsuleConfiguration the proxy reads. Writes are not reconciled.
func TestClusterWithCapsuleCRDsOnly(t *testing.T) {
	binDir := testbed.DefaultBinDir()
	if err := testbed.CheckBinaries(binDir, true); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := testbed.Start(ctx, testbed.Options{BinDir: binDir, CapsuleCRDs: true, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	if pid := c.PID("capsule"); pid != 0 {
		t.Errorf("the Capsule controller runs (pid %d)", pid)
	}
	dyn, err := dynamic.NewForConfig(c.Admin)
	if err != nil {
		t.Fatal(err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})

	for _, name := range []string{"tenants.capsule.clastix.io", "capsuleconfigurations.capsule.clastix.io"} {
		t.Run("CRD "+name, func(t *testing.T) {
			crd, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			strategy, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy")
			if strategy != "None" {
				t.Errorf("conversion strategy %q, want None", strategy)
			}
			versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
			var served []string
			for _, v := range versions {
				if m := v.(map[string]any); m["served"] == true {
					served = append(served, m["name"].(string))
				}
			}
			if len(served) != 1 || served[0] != "v1beta2" {
				t.Errorf("served versions %v, want [v1beta2]", served)
			}
		})
	}

	t.Run("CapsuleConfiguration default", func(t *testing.T) {
		cfg, err := dyn.Resource(schema.GroupVersionResource{Group: "capsule.clastix.io", Version: "v1beta2", Resource: "capsuleconfigurations"}).
			Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		users, _, _ := unstructured.NestedSlice(cfg.Object, "spec", "users")
		if len(users) != 1 || users[0].(map[string]any)["name"] != testbed.CapsuleUsersGroup {
			t.Errorf("users %v, want the group %s", users, testbed.CapsuleUsersGroup)
		}
	})

	t.Run("no admission webhooks", func(t *testing.T) {
		v, err := c.AdminClient.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.AdminClient.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Items)+len(m.Items) != 0 {
			t.Errorf("%d validating and %d mutating webhook configurations", len(v.Items), len(m.Items))
		}
	})

	t.Run("a namespace of a tenant stays as written", func(t *testing.T) {
		tenants := dyn.Resource(schema.GroupVersionResource{Group: "capsule.clastix.io", Version: "v1beta2", Resource: "tenants"})
		tenant, err := tenants.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant", "metadata": map[string]any{"name": "oil"},
			"spec": map[string]any{"owners": []any{map[string]any{"kind": "User", "name": "alice"}}},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "oil-dev", Labels: map[string]string{testbed.CapsuleTenantLabel: "oil"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant", Name: "oil", UID: tenant.GetUID()}}}}
		if _, err := c.AdminClient.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedStringSlice(tenant.Object, []string{"oil-dev"}, "status", "namespaces"); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(tenant.Object, int64(1), "status", "size"); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(tenant.Object, "Active", "status", "state"); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedSlice(tenant.Object, []any{}, "status", "conditions"); err != nil {
			t.Fatal(err)
		}
		updated, err := tenants.UpdateStatus(ctx, tenant, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, _, _ := unstructured.NestedStringSlice(updated.Object, "status", "namespaces")
		if len(got) != 1 || got[0] != "oil-dev" {
			t.Errorf("status.namespaces %v", got)
		}
		// Nothing reconciles: a second after, the namespace is exactly as created.
		time.Sleep(time.Second)
		again, err := c.AdminClient.CoreV1().Namespaces().Get(ctx, "oil-dev", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(again.OwnerReferences) != 1 || again.Labels[testbed.CapsuleTenantLabel] != "oil" {
			t.Errorf("namespace changed: %v %v", again.OwnerReferences, again.Labels)
		}
	})
}
