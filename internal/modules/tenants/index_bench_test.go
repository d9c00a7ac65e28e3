package tenants

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
)

// scaleIndex is an index of tenants tenants with 10 namespaces each, every tenant owned by its own user.
func scaleIndex(tenants int) *Index {
	ix := newIndex("", 0)
	rv := uint64(1)
	for i := range tenants {
		uid := types.UID(fmt.Sprintf("t%04d", i))
		var names []string
		for k := range 10 {
			names = append(names, fmt.Sprintf("t%04d-ns%02d", i, k))
		}
		ix.setTenant(testTenant(uid, rv, []subject{{userKind, fmt.Sprintf("owner-t%04d", i)}}, names...), false)
		rv++
		for _, name := range names {
			ix.setNamespace(testNamespace(name, rv, uid), false)
			rv++
		}
	}
	users := newCapsuleUsers()
	users.add(subject{groupKind, "projectcapsule.dev"})
	ix.setUsers(users, rv, false)
	ix.markSynced()
	return ix
}

// The request path asks the index who the caller is and what it may see. Each answer must cost the same
// at 1,000 and at 10,000 namespaces when the caller's share is the same: indexes, not scans.
func BenchmarkIndex(b *testing.B) {
	owner := &user.DefaultInfo{Name: "owner-t0007", Groups: []string{"projectcapsule.dev", "system:authenticated"}}
	for _, namespaces := range []int{1000, 10000} {
		ix := scaleIndex(namespaces / 10)
		b.Run(fmt.Sprintf("Namespaces/namespaces=%d", namespaces), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if items, _ := ix.Namespaces(owner); len(items) != 10 {
					b.Fatalf("%d namespaces, want 10", len(items))
				}
			}
		})
		b.Run(fmt.Sprintf("Namespace/namespaces=%d", namespaces), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := ix.Namespace(owner, "t0007-ns03"); !ok {
					b.Fatal("own namespace not visible")
				}
			}
		})
		b.Run(fmt.Sprintf("CapsuleUser+Tenants/namespaces=%d", namespaces), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !ix.CapsuleUser(owner) || len(ix.Tenants(owner)) != 1 {
					b.Fatal("owner not recognised")
				}
			}
		})
	}
}
