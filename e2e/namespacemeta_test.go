package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const namespaceMetaTenant = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-nsmeta
spec:
  owners:
  - kind: User
    name: nsmeta-owner
`

// TestNamespaceWithoutManagedFields: the tenant index keeps namespaces without metadata.managedFields (most
// of their memory), so an owner's namespace through the proxy is the API server's object without them, even
// with kubectl --show-managed-fields; everything else is the same.
func TestNamespaceWithoutManagedFields(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.ApplyYAML(ctx, []byte(namespaceMetaTenant)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Resource(nsTestTenants).Delete(context.Background(), "e2e-nsmeta", metav1.DeleteOptions{})
	})
	const name = "e2e-nsmeta-one"
	owner := newNamespaceOwner(t, ctx, "nsmeta-owner", "e2e-nsmeta", []string{name}, testbed.CapsuleUsersGroup)
	createNamespaceThroughProxy(t, ctx, owner, name)
	syncProxyCaches(t, ctx, owner, waitTenantStatusLists(t, ctx, admin, "e2e-nsmeta", name))

	for _, args := range [][]string{
		{"get", "namespace", name, "-o", "json", "--show-managed-fields"},
		{"get", "namespaces", "-o", "json", "--show-managed-fields"},
	} {
		t.Run(args[1], func(t *testing.T) {
			direct, err := env.cluster.AdminClient.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(direct.ManagedFields) == 0 {
				t.Fatal("the API server's namespace has no managedFields: nothing to compare")
			}
			out, err := owner.kubectl(t, ctx, args...)
			if err != nil {
				t.Fatalf("kubectl %v: %v: %s", args, err, out)
			}
			var got corev1.Namespace
			if args[1] == "namespace" {
				err = json.Unmarshal([]byte(out), &got)
			} else {
				var list corev1.NamespaceList
				err = json.Unmarshal([]byte(out), &list)
				if err == nil && (len(list.Items) != 1 || list.Items[0].Name != name) {
					t.Fatalf("the owner lists %d namespaces, want only %s", len(list.Items), name)
				}
				if err == nil {
					got = list.Items[0]
				}
			}
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(got.ManagedFields) != 0 {
				t.Errorf("through the proxy, managedFields %v", got.ManagedFields)
			}
			want := direct.DeepCopy()
			want.ManagedFields = nil
			if got.UID != want.UID || got.ResourceVersion != want.ResourceVersion || !got.CreationTimestamp.Equal(&want.CreationTimestamp) ||
				!equalMaps(got.Labels, want.Labels) || !equalMaps(got.Annotations, want.Annotations) ||
				len(got.OwnerReferences) != len(want.OwnerReferences) || (len(want.OwnerReferences) > 0 && got.OwnerReferences[0].UID != want.OwnerReferences[0].UID) ||
				!slices.Equal(got.Spec.Finalizers, want.Spec.Finalizers) || got.Status.Phase != want.Status.Phase {
				t.Errorf("through the proxy:\n%+v\ndirectly, without managedFields:\n%+v", got.ObjectMeta, want.ObjectMeta)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
