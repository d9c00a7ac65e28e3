package tenants

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

// retainedBytes is how much heap the objects build returns stay holding, per object.
func retainedBytes(b *testing.B, n int, build func(i int) any) float64 {
	b.Helper()
	keep := make([]any, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i] = build(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// What the tenant index holds per namespace and per tenant, decoded from objects as the API server sends
// them (testdata: taken from a bench cluster, a namespace with the managedFields of kubectl create and
// Capsule's labelling), with and without the informer transform that drops managedFields. The index and
// the informer's store share the objects.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 2000
	nsJSON, err := os.ReadFile("testdata/namespace.json")
	if err != nil {
		b.Fatal(err)
	}
	tenantJSON, err := os.ReadFile("testdata/tenant.json")
	if err != nil {
		b.Fatal(err)
	}
	decoder := scheme.Codecs.UniversalDeserializer()
	for _, drop := range []bool{false, true} {
		b.Run(fmt.Sprintf("namespace/dropManagedFields=%t", drop), func(b *testing.B) {
			var perObject float64
			for b.Loop() {
				ix := newIndex("", 0)
				perObject = retainedBytes(b, n, func(i int) any {
					obj, _, err := decoder.Decode(nsJSON, nil, nil)
					if err != nil {
						b.Fatal(err)
					}
					ns := obj.(*corev1.Namespace)
					ns.Name = fmt.Sprintf("t%04d-ns%02d", i/10, i%10) // distinct, as in a cluster
					if drop {
						if _, err := dropManagedFields(ns); err != nil {
							b.Fatal(err)
						}
					}
					ix.setNamespace(ns, false)
					return ns
				})
				runtime.KeepAlive(ix)
			}
			b.ReportMetric(perObject, "B/namespace")
		})
		b.Run(fmt.Sprintf("tenant/unstructured/dropManagedFields=%t", drop), func(b *testing.B) {
			var perObject float64
			for b.Loop() {
				ix := newIndex("", 0)
				perObject = retainedBytes(b, n/10, func(i int) any {
					u := decodeTestTenant(b, tenantJSON, i)
					if drop {
						if _, err := dropManagedFields(u); err != nil {
							b.Fatal(err)
						}
					}
					stored, err := newStoredTenant(u.DeepCopy())
					if err != nil {
						b.Fatal(err)
					}
					indexStoredTenant(b, ix, stored)
					return u
				})
				runtime.KeepAlive(ix)
			}
			b.ReportMetric(perObject, "B/tenant")
		})
	}
	// What the informer keeps since storeTenant: JSON without managedFields and a little metadata.
	b.Run("tenant/stored", func(b *testing.B) {
		var perObject float64
		for b.Loop() {
			ix := newIndex("", 0)
			perObject = retainedBytes(b, n/10, func(i int) any {
				stored, err := storeTenant(decodeTestTenant(b, tenantJSON, i))
				if err != nil {
					b.Fatal(err)
				}
				indexStoredTenant(b, ix, stored.(*StoredTenant))
				return stored
			})
			runtime.KeepAlive(ix)
		}
		b.ReportMetric(perObject, "B/tenant")
	})
}

// indexStoredTenant adds stored to ix as the tenant informer's handler does.
func indexStoredTenant(b *testing.B, ix *Index, stored *StoredTenant) {
	t, err := decodeTenant(stored)
	if err != nil {
		b.Fatal(err)
	}
	ix.setTenant(t, false)
}

func decodeTestTenant(b *testing.B, tenantJSON []byte, i int) *unstructured.Unstructured {
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(tenantJSON, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	u := obj.(*unstructured.Unstructured)
	u.SetName(fmt.Sprintf("t%04d", i))
	u.SetUID(types.UID(u.GetName()))
	return u
}
