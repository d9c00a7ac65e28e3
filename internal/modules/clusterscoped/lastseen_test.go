package clusterscoped

import (
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLastSeenNeverShowsTheNewState: when an object leaves the caller's view, the DELETED event carries the
// state the caller last saw (its tenant's labels and parameters), at the new resource version.
func TestLastSeenNeverShowsTheNewState(t *testing.T) {
	before := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast", ResourceVersion: "10", Labels: map[string]string{"tier": "oil"}},
		Parameters: map[string]string{"key": "oil-value"}}
	after := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast", ResourceVersion: "11", Labels: map[string]string{"tier": "gas"}},
		Parameters: map[string]string{"key": "gas-secret-value"}}
	obj, err := lastSeen(before, after, StorageClasses.served)
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*storagev1.StorageClass)
	if got.Labels["tier"] != "oil" || got.Parameters["key"] != "oil-value" || got.ResourceVersion != "11" {
		t.Fatalf("DELETED object = %+v, want the old state at resource version 11", got)
	}
	if before.ResourceVersion != "10" {
		t.Fatal("lastSeen modified the cached object")
	}
}
