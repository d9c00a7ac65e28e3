package clusterscoped

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

// The callers of the tests: alice owns tenant oil and may list its storage classes, nodes, volumes and
// the Tenant itself; bob owns it
// too but has no proxy settings; admin is no Capsule user.
var callers = map[string]user.Info{
	"alice": &user.DefaultInfo{Name: "alice", Groups: []string{"projectcapsule.dev", "system:authenticated"}},
	"bob":   &user.DefaultInfo{Name: "bob", Groups: []string{"projectcapsule.dev", "system:authenticated"}},
	"admin": &user.DefaultInfo{Name: "admin", Groups: []string{"system:masters", "system:authenticated"}},
	// gas-owner owns tenant gas and may list Tenants.
	"gas-owner": &user.DefaultInfo{Name: "gas-owner", Groups: []string{"projectcapsule.dev", "system:authenticated"}},
}

// aliceClasses and aliceNodes are what alice may see, in name order: gold by name, silver-* by expression,
// labeled by label. None carries a name label.
var (
	aliceClasses = []string{"gold", "labeled", "silver-1", "silver-2"}
	aliceNodes   = []string{"oil-node-1", "oil-node-2"}
)

type fixture struct {
	client  *fake.Clientset
	dynamic *dynamicfake.FakeDynamicClient
	module  *Module
	server  *httptest.Server
}

func storageClass(name string, labels map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: labels, ResourceVersion: "10", CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))},
		Provisioner: "example.com/" + name,
	}
}

func node(name, pool string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pool": pool}, ResourceVersion: "11"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

func oilTenant() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant",
		"metadata": map[string]any{"name": "oil", "uid": "oil", "resourceVersion": "5"},
		"spec": map[string]any{
			"owners": []any{
				map[string]any{"kind": "User", "name": "alice", "proxySettings": []any{
					map[string]any{"kind": "StorageClasses", "operations": []any{"List"}},
					map[string]any{"kind": "Nodes", "operations": []any{"List"}},
					map[string]any{"kind": "PersistentVolumes", "operations": []any{"List"}},
					map[string]any{"kind": "Tenant", "operations": []any{"List"}},
				}},
				map[string]any{"kind": "User", "name": "bob"},
			},
			"nodeSelector": map[string]any{"pool": "oil"},
			"storageClasses": map[string]any{
				"allowed": []any{"gold"}, "allowedRegex": "^silver-", "matchLabels": map[string]any{"tier": "oil"},
			},
		},
	}}
}

// gasTenant is another tenant, with a namespace and volumes of its own, that alice does not own.
func gasTenant() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant",
		"metadata": map[string]any{"name": "gas", "uid": "gas", "resourceVersion": "6"},
		"spec": map[string]any{"owners": []any{map[string]any{"kind": "User", "name": "gas-owner", "proxySettings": []any{
			map[string]any{"kind": "Tenant", "operations": []any{"List"}},
		}}}},
		"status": map[string]any{"namespaces": []any{"gas-dev"}},
	}}
}

// tenantNamespace belongs to the tenant with uid as the Capsule controller records it.
func tenantNamespace(name string, uid types.UID) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "3", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant", Name: string(uid), UID: uid}}}}
}

// volume is bound to a claim in claimNamespace, or to none.
func volume(name, claimNamespace string, labels map[string]string) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, ResourceVersion: "12"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "gold",
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	if claimNamespace != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: claimNamespace, Name: "data"}
		pv.Status.Phase = corev1.VolumeBound
	}
	return pv
}

// aliceVolumes are the volumes bound in oil's namespaces; oil's label on a gas volume does not count.
var aliceVolumes = []string{"pv-oil-1", "pv-oil-2"}

func newFixture(t *testing.T, start bool) *fixture {
	t.Helper()
	client := fake.NewClientset(
		storageClass("gold", nil), storageClass("silver-1", nil), storageClass("silver-2", map[string]string{"speed": "fast"}),
		storageClass("labeled", map[string]string{"tier": "oil"}), storageClass("bronze", map[string]string{"tier": "gas"}),
		node("oil-node-1", "oil"), node("oil-node-2", "oil"), node("gas-node", "gas"),
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}},
		tenantNamespace("oil-dev", "oil"), tenantNamespace("oil-prod", "oil"), tenantNamespace("gas-dev", "gas"),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Labels: map[string]string{"capsule.clastix.io/tenant": "oil"}}},
		volume("pv-oil-1", "oil-dev", nil), volume("pv-oil-2", "oil-prod", nil), volume("pv-gas", "gas-dev", nil),
		volume("pv-gas-labelled", "gas-dev", map[string]string{"capsule.clastix.io/tenant": "oil"}),
		volume("pv-labelled-namespace", "labelled", nil), volume("pv-free", "", map[string]string{"capsule.clastix.io/tenant": "oil"}),
	)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		tenants.TenantsResource:               "TenantList",
		tenants.CapsuleConfigurationsResource: "CapsuleConfigurationList",
	},
		oilTenant(), gasTenant(),
		&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "capsule.clastix.io/v1beta2", "kind": "CapsuleConfiguration",
			"metadata": map[string]any{"name": "default"},
			"spec":     map[string]any{"users": []any{map[string]any{"kind": "Group", "name": "projectcapsule.dev"}}},
		}},
	)
	f := &fixture{client: client, dynamic: dyn, module: New(tenants.New(client, dyn, tenants.Options{}), client, AllResources...)}
	if start {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := f.module.Start(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the caches to sync", func() bool { return f.module.Ready(ctx) == nil })
	}
	f.server = httptest.NewServer(proxyLike(f.module))
	t.Cleanup(f.server.Close)
	return f
}

const forwardedStatus = moduletest.ForwardedStatus

func proxyLike(m modules.Module) http.Handler { return moduletest.ProxyLike(m, callers) }

// clientFor is a real client-go clientset for caller, in JSON or protobuf.
func (f *fixture) clientFor(t *testing.T, caller string, protobuf bool) kubernetes.Interface {
	t.Helper()
	return moduletest.Client(t, f.server.URL, caller, protobuf)
}

func (f *fixture) do(t *testing.T, method, caller, path, accept string) (int, string, []byte) {
	t.Helper()
	return moduletest.Do(t, f.server.URL, method, caller, path, accept)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	moduletest.Eventually(t, what, cond)
}
