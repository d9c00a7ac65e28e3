package namespaces

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/moduletest"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// scaleModule serves tenantCount tenants of 10 namespaces each; the owner of tenant t0007 is "owner".
func scaleModule(b *testing.B, tenantCount int) http.Handler {
	b.Helper()
	objects := make([]runtime.Object, 0, tenantCount*10)
	tenantObjects := []runtime.Object{&unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "CapsuleConfiguration",
		"metadata": map[string]any{"name": "default"},
		"spec":     map[string]any{"users": []any{owner("Group", "projectcapsule.dev")}},
	}}}
	for i := range tenantCount {
		name := fmt.Sprintf("t%04d", i)
		var names []string
		for k := range 10 {
			ns := namespace(fmt.Sprintf("%s-ns%02d", name, k), name, map[string]string{"stage": "dev"})
			objects = append(objects, ns)
			names = append(names, ns.Name)
		}
		tenantObjects = append(tenantObjects, tenantObject(name, []any{owner("User", "owner-"+name)}, names...))
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		tenants.TenantsResource:               "TenantList",
		tenants.CapsuleConfigurationsResource: "CapsuleConfigurationList",
	}, tenantObjects...)
	index := tenants.New(fake.NewClientset(objects...), dyn, tenants.Options{})
	m := New(index)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); m.Ready(ctx) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the index did not sync")
		}
	}
	if _, n, _ := index.Size(); n != tenantCount*10 {
		b.Fatalf("index has %d namespaces, want %d", n, tenantCount*10)
	}
	return moduletest.ProxyLike(m, map[string]user.Info{
		"owner": &user.DefaultInfo{Name: "owner-t0007", Groups: []string{"projectcapsule.dev", "system:authenticated"}},
	})
}

// An owner's `kubectl get ns`, the whole request through the module (negotiation, list, encoding), must
// cost the same, in time and allocations, at 1,000 and at 10,000 namespaces: the owner sees 10 in both.
func BenchmarkOwnerList(b *testing.B) {
	for _, namespaces := range []int{1000, 10000} {
		handler := scaleModule(b, namespaces/10)
		for _, format := range []struct{ name, accept string }{
			{"json", "application/json"},
			{"table", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
		} {
			b.Run(fmt.Sprintf("%s/namespaces=%d", format.name, namespaces), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces", nil)
					r.Header.Set(moduletest.UserHeader, "owner")
					r.Header.Set("Accept", format.accept)
					w := httptest.NewRecorder()
					handler.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}
