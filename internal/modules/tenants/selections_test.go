package tenants

import (
	"testing"

	capsulev1beta2 "github.com/projectcapsule/capsule/api/v1beta2"
	"github.com/projectcapsule/capsule/pkg/api"
	"github.com/projectcapsule/capsule/pkg/api/rbac"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// selectionTenant is written with Capsule's own v1beta2 types, so a renamed field fails here. alice (a
// user) may list storage and ingress classes and nodes and update runtime classes; the group oil-devs may
// list priority classes; carol owns the tenant without proxy settings.
func selectionTenant(t *testing.T, annotations map[string]string) *tenant {
	t.Helper()
	owner := func(kind rbac.OwnerKind, name string, settings ...rbac.ProxySettings) rbac.OwnerSpec {
		return rbac.OwnerSpec{CoreOwnerSpec: rbac.CoreOwnerSpec{UserSpec: rbac.UserSpec{Kind: kind, Name: name}}, ProxyOperations: settings}
	}
	list := func(kind rbac.ProxyServiceKind) rbac.ProxySettings {
		return rbac.ProxySettings{Kind: kind, Operations: []rbac.ProxyOperation{rbac.ListOperation}}
	}
	allowed := func(names []string, regex string, matchLabels map[string]string, expressions ...metav1.LabelSelectorRequirement) *api.DefaultAllowedListSpec {
		return &api.DefaultAllowedListSpec{SelectorAllowedListSpec: api.SelectorAllowedListSpec{
			AllowedListSpec: api.AllowedListSpec{Exact: names, Regex: regex},
			LabelSelector:   metav1.LabelSelector{MatchLabels: matchLabels, MatchExpressions: expressions},
		}}
	}
	tnt := &capsulev1beta2.Tenant{
		TypeMeta:   metav1.TypeMeta{APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant"},
		ObjectMeta: metav1.ObjectMeta{Name: "oil", UID: "uid-oil", ResourceVersion: "7", Annotations: annotations},
		Spec: capsulev1beta2.TenantSpec{
			Owners: rbac.OwnerListSpec{
				owner(rbac.UserOwner, "alice", list(rbac.StorageClassesProxy), list(rbac.NodesProxy), list(rbac.IngressClassesProxy),
					rbac.ProxySettings{Kind: rbac.RuntimeClassesProxy, Operations: []rbac.ProxyOperation{rbac.UpdateOperation}}),
				owner(rbac.GroupOwner, "oil-devs", list(rbac.PriorityClassesProxy)),
				owner(rbac.UserOwner, "carol"),
			},
			NodeSelector:   map[string]string{"pool": "oil"},
			StorageClasses: allowed([]string{"gold"}, "^silver-", map[string]string{"tier": "oil"}),
			IngressOptions: capsulev1beta2.IngressOptions{AllowedClasses: &api.DefaultAllowedListSpec{
				SelectorAllowedListSpec: api.SelectorAllowedListSpec{AllowedListSpec: api.AllowedListSpec{Exact: []string{"nginx"}}},
				Default:                 "haproxy",
			}},
			PriorityClasses: allowed(nil, "", nil, metav1.LabelSelectorRequirement{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"oil", "shared"}}),
			RuntimeClasses:  allowed([]string{"gvisor"}, "", nil),
		},
	}
	got, err := decodeTenant(toUnstructured(t, tnt))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func selectionIndex(t *testing.T, annotations map[string]string) *Index {
	t.Helper()
	ix := newIndex("", 0)
	ix.setTenant(selectionTenant(t, annotations), false)
	return ix
}

// selects reports whether any selection admits the object.
func selects(selections []Selection, name string, labels map[string]string) bool {
	for _, s := range selections {
		if s.Selects(name, labels) {
			return true
		}
	}
	return false
}

func TestSelectionsMatchTheAllowedLists(t *testing.T) {
	ix := selectionIndex(t, nil)
	oilDev := &user.DefaultInfo{Name: "erin", Groups: []string{"oil-devs"}}
	for _, c := range []struct {
		name   string
		caller user.Info
		kind   Kind
		object string
		labels map[string]string
		want   bool
	}{
		{"exact name, no labels at all", alice, StorageClasses, "gold", nil, true},
		{"exact name is exact", alice, StorageClasses, "gold-2", nil, false},
		{"regex", alice, StorageClasses, "silver-fast", nil, true},
		{"regex does not match", alice, StorageClasses, "bronze-silver-", nil, false},
		{"matchLabels", alice, StorageClasses, "anything", map[string]string{"tier": "oil"}, true},
		{"matchLabels with another value", alice, StorageClasses, "anything", map[string]string{"tier": "gas"}, false},
		{"a name label is not needed, nor honoured", alice, StorageClasses, "bronze", map[string]string{"name": "gold"}, false},
		{"ingress class by name", alice, IngressClasses, "nginx", nil, true},
		{"ingress class default", alice, IngressClasses, "haproxy", nil, true},
		{"ingress class outside", alice, IngressClasses, "traefik", nil, false},
		{"node in the pool", alice, Nodes, "node-1", map[string]string{"pool": "oil", "zone": "a"}, true},
		{"node outside the pool", alice, Nodes, "node-2", map[string]string{"pool": "gas"}, false},
		{"node named like the pool", alice, Nodes, "oil", nil, false},
		{"matchExpressions, for a group owner", oilDev, PriorityClasses, "high", map[string]string{"tier": "shared"}, true},
		{"matchExpressions outside", oilDev, PriorityClasses, "high", map[string]string{"tier": "gas"}, false},
		{"an empty selector selects nothing", alice, RuntimeClasses, "runc", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			selections := ix.Selections(c.caller, c.kind, List)
			if c.kind == RuntimeClasses {
				selections = ix.Selections(c.caller, c.kind, Update) // alice may only update runtime classes
			}
			if got := selects(selections, c.object, c.labels); got != c.want {
				t.Errorf("%s %q with labels %v: selected %v, want %v", c.kind, c.object, c.labels, got, c.want)
			}
		})
	}
}

func TestSelectionsNeedAGrant(t *testing.T) {
	oilDev := &user.DefaultInfo{Name: "erin", Groups: []string{"oil-devs"}}
	carol := &user.DefaultInfo{Name: "carol"}
	for _, c := range []struct {
		name        string
		annotations map[string]string
		caller      user.Info
		kind        Kind
		op          Operation
		want        bool
	}{
		{"owner granted List", nil, alice, StorageClasses, List, true},
		{"owner granted another operation only", nil, alice, RuntimeClasses, List, false},
		{"owner granted List of another kind", nil, alice, PriorityClasses, List, false},
		{"List does not grant Update", nil, alice, StorageClasses, Update, false},
		{"group owner granted List", nil, oilDev, PriorityClasses, List, true},
		{"the group's grant is not the user's", nil, oilDev, StorageClasses, List, false},
		{"owner without proxy settings", nil, carol, StorageClasses, List, false},
		{"not an owner", nil, mallory, StorageClasses, List, false},
		{"legacy annotation grants every owner", map[string]string{"capsule.clastix.io/enable-storageclass-listing": "true"}, carol, StorageClasses, List, true},
		{"legacy node annotation", map[string]string{"capsule.clastix.io/enable-node-listing": "true"}, carol, Nodes, List, true},
		{"legacy annotation set to false", map[string]string{"capsule.clastix.io/enable-storageclass-listing": "false"}, carol, StorageClasses, List, false},
		{"legacy annotation for another operation", map[string]string{"capsule.clastix.io/enable-storageclass-deletion": "true"}, carol, StorageClasses, List, false},
		{"legacy annotation grants no stranger", map[string]string{"capsule.clastix.io/enable-storageclass-listing": "true"}, mallory, StorageClasses, List, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := len(selectionIndex(t, c.annotations).Selections(c.caller, c.kind, c.op)) > 0
			if got != c.want {
				t.Errorf("granted %v, want %v", got, c.want)
			}
		})
	}
}

func TestInvalidAllowedListsAllowNoMore(t *testing.T) {
	l := newAllowedList(&allowedListFields{AllowedRegex: "(", MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Bogus"}}})
	for _, name := range []string{"", "(", "gold"} {
		if l.Selects(name, map[string]string{"tier": "oil"}) {
			t.Errorf("invalid allowed list selected %q", name)
		}
	}
	if newAllowedList(nil) != nil {
		t.Error("an absent allowed list must give no selection")
	}
}
