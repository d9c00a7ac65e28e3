package tenants

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/authentication/user"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func unstructuredTenant(name string, owners []any, namespaces ...string) *unstructured.Unstructured {
	nsList := []any{}
	for _, ns := range namespaces {
		nsList = append(nsList, ns)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant",
		"metadata": map[string]any{"name": name, "uid": name},
		"spec":     map[string]any{"owners": owners},
		"status":   map[string]any{"namespaces": nsList},
	}}
}

func unstructuredConfiguration(name string, groups ...string) *unstructured.Unstructured {
	users := []any{}
	for _, g := range groups {
		users = append(users, map[string]any{"kind": "Group", "name": g})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "CapsuleConfiguration",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"users": users},
	}}
}

func fakeDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		TenantsResource:               "TenantList",
		CapsuleConfigurationsResource: "CapsuleConfigurationList",
	}, objs...)
}

func startIndex(t *testing.T, ix *Index) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(ctx); err != nil { // a second module starting the shared index is harmless
		t.Fatal(err)
	}
	eventually(t, "the index to sync", func() bool { return ix.Ready(ctx) == nil })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInformersFeedTheIndex(t *testing.T) {
	client := fake.NewClientset(testNamespace("oil-dev", 1, "oil"), testNamespace("gas-dev", 2, "gas"))
	dyn := fakeDynamic(
		unstructuredTenant("oil", []any{map[string]any{"kind": "User", "name": "alice"}}),
		unstructuredTenant("gas", []any{map[string]any{"kind": "Group", "name": "gas-devs"}}),
		unstructuredConfiguration("default", "projectcapsule.dev"),
		unstructuredConfiguration("other", "everyone"), // not the configured one
	)
	ix := New(client, dyn, Options{})
	if ix.Ready(context.Background()) == nil {
		t.Fatal("ready before start")
	}
	startIndex(t, ix)

	if !ix.CapsuleUser(alice) || ix.CapsuleUser(&user.DefaultInfo{Name: "x", Groups: []string{"everyone"}}) {
		t.Error("only the configuration named default counts")
	}
	if got, _ := ix.Namespaces(alice); !slices.Equal(names(got), []string{"oil-dev"}) {
		t.Errorf("alice sees %v, want [oil-dev]", names(got))
	}

	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, testNamespace("oil-new", 3, "oil"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a created namespace to be visible", func() bool { _, ok := ix.Namespace(alice, "oil-new"); return ok })

	moved := unstructuredTenant("gas", []any{map[string]any{"kind": "Group", "name": "gas-devs"}, map[string]any{"kind": "User", "name": "alice"}})
	if _, err := dyn.Resource(TenantsResource).Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new owner to see the tenant's namespaces", func() bool { _, ok := ix.Namespace(alice, "gas-dev"); return ok })

	if err := dyn.Resource(TenantsResource).Delete(ctx, "oil", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted tenant's namespaces to disappear", func() bool { _, ok := ix.Namespace(alice, "oil-dev"); return !ok })

	if err := dyn.Resource(CapsuleConfigurationsResource).Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Capsule users to go with the configuration", func() bool { return !ix.CapsuleUser(alice) })
}

func TestIndexWithoutCapsuleIsSyncedAndEmpty(t *testing.T) {
	dyn := fakeDynamic()
	dyn.PrependReactor("list", "*", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "capsule.clastix.io", Resource: "tenants"}, "")
	})
	dyn.PrependWatchReactor("*", func(clienttesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "capsule.clastix.io", Resource: "tenants"}, "")
	})
	ix := New(fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}), dyn, Options{})
	startIndex(t, ix)
	if ix.CapsuleUser(alice) {
		t.Error("without Capsule nobody is a Capsule user")
	}
}

func TestIndexStaysUnsyncedWhenCapsuleCannotBeRead(t *testing.T) {
	dyn := fakeDynamic()
	dyn.PrependReactor("list", "tenants", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "capsule.clastix.io", Resource: "tenants"}, "", nil)
	})
	ix := New(fake.NewClientset(), dyn, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ix.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The informer retries with back-off; half a second covers several attempts.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if ix.Synced() {
			t.Fatal("index synced although tenants cannot be listed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
