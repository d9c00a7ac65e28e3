package namespaces

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/moduletest"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// The callers of the tests: alice owns tenant oil, bob (by group) tenant gas, admin is no Capsule user.
var callers = map[string]user.Info{
	"alice": &user.DefaultInfo{Name: "alice", Groups: []string{"projectcapsule.dev", "system:authenticated"}},
	"bob":   &user.DefaultInfo{Name: "bob", Groups: []string{"projectcapsule.dev", "gas-devs", "system:authenticated"}},
	"admin": &user.DefaultInfo{Name: "admin", Groups: []string{"system:masters", "system:authenticated"}},
}

// aliceNamespaces is what alice may see in the fixture, in name order.
var aliceNamespaces = []string{"oil-a", "oil-b", "oil-c", "oil-d", "oil-old"}

// fixture is the cluster the tests run against. Every namespace carries the tenant label of the tenant
// it belongs to, as Capsule sets it; only ownerReferences and Tenant status decide membership.
type fixture struct {
	client  *fake.Clientset
	dynamic *dynamicfake.FakeDynamicClient
	index   *tenants.Index
	module  *Module
	server  *httptest.Server
}

func namespace(name, tenant string, labels map[string]string) *corev1.Namespace {
	ns := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: nextRV(), Labels: map[string]string{}, CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	if tenant != "" {
		ns.Labels["capsule.clastix.io/tenant"] = tenant
		ns.OwnerReferences = []metav1.OwnerReference{{APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant", Name: tenant, UID: types.UID(tenant)}}
	}
	return ns
}

func tenantObject(name string, owners []any, statusNamespaces ...string) *unstructured.Unstructured {
	listed := []any{}
	for _, ns := range statusNamespaces {
		listed = append(listed, ns)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant",
		"metadata": map[string]any{"name": name, "uid": name, "resourceVersion": nextRV()},
		"spec":     map[string]any{"owners": owners},
		"status":   map[string]any{"namespaces": listed},
	}}
}

func owner(kind, name string) map[string]any { return map[string]any{"kind": kind, "name": name} }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	terminating := namespace("oil-d", "oil", nil)
	terminating.Status.Phase = corev1.NamespaceTerminating
	statusOnly := namespace("oil-old", "", nil) // created before Capsule set ownerReferences; listed in status
	objects := []runtime.Object{
		namespace("oil-a", "oil", map[string]string{"stage": "dev"}),
		namespace("oil-b", "oil", map[string]string{"stage": "prod"}),
		namespace("oil-c", "oil", nil),
		terminating, statusOnly,
		namespace("gas-a", "gas", map[string]string{"stage": "dev"}),
		namespace("gas-b", "gas", nil),
		namespace("kube-system", "", nil),
		namespace("default", "", nil),
		namespace("fake-oil", "", map[string]string{"capsule.clastix.io/tenant": "oil"}), // label only
	}
	f := &fixture{client: fake.NewClientset(objects...)}
	f.dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		tenants.TenantsResource:               "TenantList",
		tenants.CapsuleConfigurationsResource: "CapsuleConfigurationList",
	},
		tenantObject("oil", []any{owner("User", "alice")}, "oil-a", "oil-b", "oil-c", "oil-d", "oil-old"),
		tenantObject("gas", []any{owner("Group", "gas-devs")}, "gas-a", "gas-b"),
		&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "capsule.clastix.io/v1beta2", "kind": "CapsuleConfiguration",
			"metadata": map[string]any{"name": "default"},
			"spec":     map[string]any{"users": []any{owner("Group", "projectcapsule.dev")}},
		}},
	)
	f.index = tenants.New(f.client, f.dynamic, tenants.Options{})
	f.module = New(f.index)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.module.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the index to sync", func() bool { return f.module.Ready(ctx) == nil })
	f.server = newServer(t, f.module)
	return f
}

func newServer(t *testing.T, m modules.Module) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(proxyLike(m))
	t.Cleanup(s.Close)
	return s
}

const forwardedStatus = moduletest.ForwardedStatus

func proxyLike(m modules.Module) http.Handler { return moduletest.ProxyLike(m, callers) }

// clientFor is a real client-go clientset for caller, in JSON or protobuf.
func (f *fixture) clientFor(t *testing.T, caller string, protobuf bool) kubernetes.Interface {
	t.Helper()
	return moduletest.Client(t, f.server.URL, caller, protobuf)
}

// get sends one GET as caller and returns status, content type and body.
func (f *fixture) get(t *testing.T, caller, path, accept string) (int, string, []byte) {
	t.Helper()
	return f.do(t, http.MethodGet, caller, path, accept)
}

func (f *fixture) do(t *testing.T, method, caller, path, accept string) (int, string, []byte) {
	t.Helper()
	return moduletest.Do(t, f.server.URL, method, caller, path, accept)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	moduletest.Eventually(t, what, cond)
}

func namesOf(items []corev1.Namespace) []string {
	out := []string{}
	for _, ns := range items {
		out = append(out, ns.Name)
	}
	return out
}

func sameNames(got, want []string) bool { return slices.Equal(got, want) }

// The fake clients do not set resource versions; the tests do, from one counter, as etcd would.
var lastRV atomic.Uint64

func nextRV() string { return strconv.FormatUint(lastRV.Add(1), 10) }

// apply creates or updates ns with a new resource version and waits until the index has applied it, so
// that the next request sees it.
func (f *fixture) apply(t *testing.T, ns *corev1.Namespace) {
	t.Helper()
	ns = ns.DeepCopy()
	ns.ResourceVersion = nextRV()
	namespaces := f.client.CoreV1().Namespaces()
	_, err := namespaces.Update(context.Background(), ns, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		_, err = namespaces.Create(context.Background(), ns, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	f.waitForIndex(t, ns.ResourceVersion)
}

// applyTenant updates a tenant with a new resource version and waits for the index.
func (f *fixture) applyTenant(t *testing.T, tenant *unstructured.Unstructured) {
	t.Helper()
	tenant = tenant.DeepCopy()
	tenant.SetResourceVersion(nextRV())
	if _, err := f.dynamic.Resource(tenants.TenantsResource).Update(context.Background(), tenant, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitForIndex(t, tenant.GetResourceVersion())
}

func (f *fixture) deleteNamespace(t *testing.T, name string) {
	t.Helper()
	// The API server's deletion event carries a new revision; the fake's carries the object's last one, so
	// an update (seen by watchers as MODIFIED) gives it a fresh one first.
	ns, err := f.client.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.ResourceVersion = nextRV()
	if _, err := f.client.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitForIndex(t, ns.ResourceVersion)
	if err := f.client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, name+" to leave the index", func() bool {
		_, aliceSees := f.index.Namespace(callers["alice"], name)
		_, bobSees := f.index.Namespace(callers["bob"], name)
		return !aliceSees && !bobSees
	})
}

func (f *fixture) waitForIndex(t *testing.T, rv string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.index.WaitForResourceVersion(ctx, rvOf(t, rv)); err != nil {
		t.Fatal(err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func rvOf(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("resource version %q: %v", s, err)
	}
	return n
}
