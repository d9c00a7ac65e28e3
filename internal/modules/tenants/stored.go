package tenants

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// StoredTenant is a Tenant as the index's informer keeps it: the metadata that selection, paging and the
// index read, and the whole object (less managedFields) as JSON, decoded only when it is served. As an
// unstructured map a Tenant costs several times its JSON (BenchmarkIndexMemory), and every Tenant is
// cached while only an owner's few are ever served.
type StoredTenant struct {
	metav1.TypeMeta
	// ObjectMeta holds name, UID, resource version, generation, labels and timestamps: no annotations,
	// which can be large (kubectl's last-applied-configuration) and are read from the JSON.
	metav1.ObjectMeta
	json []byte // never modified once stored, so copies share it
}

var _ runtime.Object = (*StoredTenant)(nil)

// DeepCopyObject copies the metadata; the JSON is immutable and shared.
func (t *StoredTenant) DeepCopyObject() runtime.Object {
	return &StoredTenant{TypeMeta: t.TypeMeta, ObjectMeta: *t.ObjectMeta.DeepCopy(), json: t.json}
}

// Unstructured decodes the Tenant as the API server sent it: a new object the caller may change.
func (t *StoredTenant) Unstructured() (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(t.json); err != nil {
		return nil, fmt.Errorf("decoding stored tenant %s: %w", t.Name, err)
	}
	return u, nil
}

// ServedTenant is the object served for a cached Tenant: the stored one decoded, at the resource version
// of the stored metadata (a watch's DELETED event carries the last seen object at a newer version).
func ServedTenant(obj runtime.Object) (runtime.Object, error) {
	t, ok := obj.(*StoredTenant)
	if !ok {
		return nil, fmt.Errorf("cached tenant is a %T, not a stored tenant", obj)
	}
	u, err := t.Unstructured()
	if err != nil {
		return nil, err
	}
	u.SetResourceVersion(t.ResourceVersion)
	return u, nil
}

// storeTenant is the tenant informer's transform. It is idempotent, as client-go asks of transforms.
func storeTenant(obj any) (any, error) {
	switch o := obj.(type) {
	case *StoredTenant:
		return o, nil
	case *unstructured.Unstructured:
		return newStoredTenant(o)
	default:
		return obj, nil // a tombstone holds an object already stored
	}
}

func newStoredTenant(u *unstructured.Unstructured) (*StoredTenant, error) {
	u.SetManagedFields(nil)
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding tenant %s for the cache: %w", u.GetName(), err)
	}
	// An exact-size copy: the encoder's buffer has up to twice the room, for every Tenant in the cache.
	t := &StoredTenant{json: append([]byte(nil), data...)}
	t.APIVersion, t.Kind = u.GetAPIVersion(), u.GetKind()
	t.Name = u.GetName()
	t.UID = u.GetUID()
	t.ResourceVersion = u.GetResourceVersion()
	t.Generation = u.GetGeneration()
	t.Labels = u.GetLabels()
	t.CreationTimestamp = u.GetCreationTimestamp()
	t.DeletionTimestamp = u.GetDeletionTimestamp()
	return t, nil
}
