package tenants

import (
	"slices"
	"testing"

	capsulev1beta2 "github.com/projectcapsule/capsule/api/v1beta2"
	"github.com/projectcapsule/capsule/pkg/api/rbac"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// The index decodes its own small views of Capsule's objects; these tests write them with Capsule's real
// v1beta2 types (linked only into the test) so that a renamed field would fail here.

func toUnstructured(t *testing.T, obj any) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// storedTestTenant is obj as the tenant informer keeps it.
func storedTestTenant(t *testing.T, obj any) *StoredTenant {
	t.Helper()
	stored, err := newStoredTenant(toUnstructured(t, obj))
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func TestDecodeTenantReadsCapsuleV1beta2(t *testing.T) {
	owner := func(kind rbac.OwnerKind, name string) rbac.OwnerSpec {
		return rbac.OwnerSpec{CoreOwnerSpec: rbac.CoreOwnerSpec{UserSpec: rbac.UserSpec{Kind: kind, Name: name}}}
	}
	tnt := &capsulev1beta2.Tenant{
		TypeMeta:   metav1.TypeMeta{APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant"},
		ObjectMeta: metav1.ObjectMeta{Name: "oil", UID: types.UID("uid-oil"), ResourceVersion: "42"},
		Spec: capsulev1beta2.TenantSpec{
			Owners:       rbac.OwnerListSpec{owner(rbac.UserOwner, "alice"), owner(rbac.GroupOwner, "oil-devs")},
			NodeSelector: map[string]string{"pool": "oil"}, // unrelated fields are ignored
		},
		Status: capsulev1beta2.TenantStatus{
			Owners: rbac.OwnerStatusListSpec{
				{UserSpec: rbac.UserSpec{Kind: rbac.UserOwner, Name: "alice"}}, // also in spec: kept once
				{UserSpec: rbac.UserSpec{Kind: rbac.ServiceAccountOwner, Name: "system:serviceaccount:ci:robot"}},
			},
			Namespaces: []string{"oil-dev", "oil-prod"},
		},
	}
	got, err := decodeTenant(storedTestTenant(t, tnt))
	if err != nil {
		t.Fatal(err)
	}
	want := []subject{{userKind, "alice"}, {groupKind, "oil-devs"}, {serviceAccountKind, "system:serviceaccount:ci:robot"}}
	if got.name != "oil" || got.uid != "uid-oil" || got.rv != 42 || !slices.Equal(got.owners, want) {
		t.Errorf("decoded %+v, want owners %v", got, want)
	}
	if len(got.namespaces) != 2 {
		t.Errorf("namespaces %v, want oil-dev and oil-prod", got.namespaces)
	}
}

func TestDecodeConfigurationReadsCapsuleV1beta2(t *testing.T) {
	cfg := &capsulev1beta2.CapsuleConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "capsule.clastix.io/v1beta2", Kind: "CapsuleConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: capsulev1beta2.CapsuleConfigurationSpec{
			Users:                rbac.UserListSpec{{Kind: rbac.GroupOwner, Name: "projectcapsule.dev"}, {Kind: rbac.UserOwner, Name: "bob"}},
			UserNames:            []string{"carol", "system:serviceaccount:legacy:sa"},
			UserGroups:           []string{"legacy-group"},
			IgnoreUserWithGroups: []string{"cluster-admins"},
		},
		Status: capsulev1beta2.CapsuleConfigurationStatus{
			Users: rbac.UserListSpec{{Kind: rbac.ServiceAccountOwner, Name: "system:serviceaccount:ci:robot"}},
		},
	}
	users, err := decodeConfiguration(toUnstructured(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		set  map[string]struct{}
		want []string
	}{
		{users.groups, []string{"legacy-group", "projectcapsule.dev"}},
		{users.users, []string{"bob", "carol"}},
		{users.serviceAccounts, []string{"system:serviceaccount:ci:robot", "system:serviceaccount:legacy:sa"}},
		{users.ignoredGroups, []string{"cluster-admins"}},
	} {
		got := slices.Sorted(func(yield func(string) bool) {
			for k := range c.set {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, c.want) {
			t.Errorf("got %v, want %v", got, c.want)
		}
	}
}

func TestTenantReferencesTrustOnlyCapsuleTenantOwnerReferences(t *testing.T) {
	refs := []metav1.OwnerReference{
		{APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant", Name: "oil", UID: "a"},
		{APIVersion: "capsule.clastix.io/v1beta1", Kind: "Tenant", Name: "oil", UID: "b"},
		{APIVersion: "evil.example.com/v1", Kind: "Tenant", Name: "oil", UID: "c"},
		{APIVersion: "capsule.clastix.io/v1beta2", Kind: "TenantOwner", Name: "oil", UID: "d"},
		{APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant", Name: "oil"}, // no UID
	}
	got := tenantReferences(&metav1.ObjectMeta{OwnerReferences: refs})
	if !slices.Equal(got, []types.UID{"a", "b"}) {
		t.Errorf("tenantReferences = %v, want [a b]", got)
	}
}

// TestDecodeTenantIsCaseSensitive: the stored JSON is read as the API server reads it, so a field that only
// differs in case from a real one (which a structural schema would have pruned anyway) grants nothing.
func TestDecodeTenantIsCaseSensitive(t *testing.T) {
	tests := []struct {
		name, spec string
		wantOwners int
	}{
		{"owners", `{"owners":[{"kind":"User","name":"alice"}]}`, 1},
		{"Owners", `{"Owners":[{"kind":"User","name":"alice"}]}`, 0},
		{"Kind and Name", `{"owners":[{"Kind":"User","Name":"alice"}]}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			doc := `{"apiVersion":"capsule.clastix.io/v1beta2","kind":"Tenant","metadata":{"name":"oil","uid":"u1","resourceVersion":"7"},"spec":` + tt.spec + `}`
			if err := u.UnmarshalJSON([]byte(doc)); err != nil {
				t.Fatal(err)
			}
			stored, err := newStoredTenant(u)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeTenant(stored)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.owners) != tt.wantOwners {
				t.Fatalf("owners = %v, want %d", got.owners, tt.wantOwners)
			}
		})
	}
}
