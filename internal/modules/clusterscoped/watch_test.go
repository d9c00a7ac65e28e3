package clusterscoped

import (
	"context"
	"fmt"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// next returns the next event's type and object name, failing after a few seconds.
func next(t *testing.T, w watch.Interface) string {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch ended")
		}
		if ev.Type == watch.Bookmark {
			m := ev.Object.(metav1.Object)
			return fmt.Sprintf("BOOKMARK %s", m.GetAnnotations()[metav1.InitialEventsAnnotationKey])
		}
		if sc, ok := ev.Object.(*storagev1.StorageClass); ok {
			return fmt.Sprintf("%s %s", ev.Type, sc.Name)
		}
		return fmt.Sprintf("%s %T", ev.Type, ev.Object)
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return ""
}

func expectEvents(t *testing.T, w watch.Interface, want ...string) {
	t.Helper()
	for _, e := range want {
		if got := next(t, w); got != e {
			t.Fatalf("event %q, want %q", got, e)
		}
	}
}

func TestWatchFollowsTheAllowedSet(t *testing.T) {
	for _, protobuf := range []bool{false, true} {
		t.Run(fmt.Sprintf("protobuf=%v", protobuf), func(t *testing.T) {
			f := newFixture(t, true)
			ctx := context.Background()
			w, err := f.clientFor(t, "alice", protobuf).StorageV1().StorageClasses().Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			initial := map[string]bool{}
			for range aliceClasses {
				initial[next(t, w)] = true
			}
			for _, name := range aliceClasses {
				if !initial["ADDED "+name] {
					t.Fatalf("initial events %v lack %s", initial, name)
				}
			}
			classes := f.client.StorageV1().StorageClasses()
			mustDo := func(_ any, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			mustDo(classes.Create(ctx, storageClass("copper", nil), metav1.CreateOptions{})) // never visible
			mustDo(classes.Create(ctx, storageClass("silver-3", nil), metav1.CreateOptions{}))
			expectEvents(t, w, "ADDED silver-3")
			mustDo(classes.Update(ctx, storageClass("bronze", map[string]string{"tier": "oil"}), metav1.UpdateOptions{}))
			expectEvents(t, w, "ADDED bronze")
			mustDo(classes.Update(ctx, storageClass("labeled", map[string]string{"tier": "gas"}), metav1.UpdateOptions{}))
			expectEvents(t, w, "DELETED labeled")
			mustDo(classes.Update(ctx, storageClass("copper", map[string]string{"tier": "gas"}), metav1.UpdateOptions{}))
			mustDo(nil, classes.Delete(ctx, "gold", metav1.DeleteOptions{}))
			expectEvents(t, w, "DELETED gold")
		})
	}
}

func TestWatchSelectorsOnlyNarrow(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	w, err := f.clientFor(t, "alice", false).StorageV1().StorageClasses().Watch(ctx, metav1.ListOptions{LabelSelector: "tier notin (oil)"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	initial := map[string]bool{}
	for range 3 {
		initial[next(t, w)] = true
	}
	if len(initial) != 3 || !initial["ADDED gold"] || !initial["ADDED silver-1"] || !initial["ADDED silver-2"] {
		t.Fatalf("initial events %v", initial)
	}
	if _, err := f.client.StorageV1().StorageClasses().Create(ctx, storageClass("iron", map[string]string{"tier": "gas"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.StorageV1().StorageClasses().Create(ctx, storageClass("silver-9", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, w, "ADDED silver-9")
}

func TestWatchListEndsInitialEventsWithABookmark(t *testing.T) {
	f := newFixture(t, true)
	w, err := f.clientFor(t, "alice", false).StorageV1().StorageClasses().Watch(context.Background(), metav1.ListOptions{
		SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		FieldSelector: "metadata.name=gold",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvents(t, w, "ADDED gold", "BOOKMARK true")
}

func TestWatchFromAResourceVersionSkipsOlderObjects(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	// The fixture's classes carry resource version 10; a watch from 10 has nothing to replay.
	w, err := f.clientFor(t, "alice", false).StorageV1().StorageClasses().Watch(ctx, metav1.ListOptions{ResourceVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	sc := storageClass("silver-4", nil)
	sc.ResourceVersion = "12"
	if _, err := f.client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, w, "ADDED silver-4")
}

// TestWatchEndsWhenTheGrantChanges: an open watch keeps its grant only while the caller's tenants still
// give it as it was: when the Tenant's proxySettings no longer do, or its selectors change (a new spec
// generation), the watch ends instead of delivering more under the old grant.
func TestWatchEndsWhenTheGrantChanges(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(tenant *unstructured.Unstructured)
	}{
		{"proxySettings revoked", func(tenant *unstructured.Unstructured) {
			owners, _, _ := unstructured.NestedSlice(tenant.Object, "spec", "owners")
			delete(owners[0].(map[string]any), "proxySettings")
			_ = unstructured.SetNestedSlice(tenant.Object, owners, "spec", "owners")
		}},
		{"selector changed", func(tenant *unstructured.Unstructured) {
			_ = unstructured.SetNestedStringSlice(tenant.Object, []string{"bronze"}, "spec", "storageClasses", "allowed")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, true)
			ctx := context.Background()
			w, err := f.clientFor(t, "alice", false).StorageV1().StorageClasses().Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			for range aliceClasses {
				next(t, w)
			}
			changed := oilTenant()
			changed.SetResourceVersion("50")
			changed.SetGeneration(2) // the API server's answer to a spec change
			c.change(changed)
			if _, err := f.dynamic.Resource(tenants.TenantsResource).Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(3 * regrantInterval)
			for {
				select {
				case ev, open := <-w.ResultChan():
					if !open {
						return
					}
					t.Logf("event after the change: %s", ev.Type)
				case <-deadline:
					t.Fatal("the watch still runs after its grant changed")
				}
			}
		})
	}
}
