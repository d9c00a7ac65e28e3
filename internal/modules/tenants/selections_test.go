package tenants

import (
	"testing"

	capsulev1beta2 "github.com/projectcapsule/capsule/api/v1beta2"
	"github.com/projectcapsule/capsule/pkg/api"
	"github.com/projectcapsule/capsule/pkg/api/rbac"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
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
				owner(rbac.GroupOwner, "oil-devs", list(rbac.PriorityClassesProxy), list(rbac.PersistentVolumesProxy), list(rbac.TenantProxy)),
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
	got, err := decodeTenant(storedTestTenant(t, tnt))
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
		if s.Selects(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}) {
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
		{"Capsule's PersistentVolumes kind", nil, oilDev, PersistentVolumes, List, true},
		{"Capsule's Tenant kind", nil, oilDev, Tenants, List, true},
		{"the Tenant kind is granted to its owner only", nil, alice, Tenants, List, false},
		{"tenant listing annotation grants every owner", map[string]string{"capsule.clastix.io/enable-tenant-listing": "true"}, carol, Tenants, List, true},
		{"no annotation grants Tenant updates", map[string]string{"capsule.clastix.io/enable-tenant-update": "true"}, carol, Tenants, Update, false},
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
		if l.Selects(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"tier": "oil"}}}) {
			t.Errorf("invalid allowed list selected %q", name)
		}
	}
	if newAllowedList(nil) != nil {
		t.Error("an absent allowed list must give no selection")
	}
}

// grantingFixture is fixture with alice granted List of PersistentVolumes and Tenants on oil, and
// gas-devs on gas.
func grantingFixture(t *testing.T) *Index {
	t.Helper()
	ix := fixture(t)
	g := grants{}
	g.add(PersistentVolumes, List)
	g.add(Tenants, List)
	ix.tenants["oil"].ownerGrants = map[subject]grants{{userKind, "alice"}: g}
	ix.tenants["gas"].ownerGrants = map[subject]grants{{groupKind, "gas-devs"}: g}
	return ix
}

func volume(name, claimNamespace string, labels map[string]string) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if claimNamespace != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: claimNamespace, Name: "data"}
	}
	return pv
}

func withPhase(pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) *corev1.PersistentVolume {
	pv.Status.Phase = phase
	return pv
}

func TestVolumeSelectionsUseAuthoritativeMembership(t *testing.T) {
	ix := grantingFixture(t)
	for _, c := range []struct {
		name   string
		caller user.Info
		object runtime.Object
		want   bool
	}{
		{"claimed in a namespace the tenant owns by reference", alice, volume("pv-1", "oil-dev", nil), true},
		{"claimed in a namespace in the tenant's status only", alice, volume("pv-2", "oil-status-only", nil), true},
		{"claimed in a namespace of two tenants", alice, volume("pv-3", "both", nil), true},
		{"claimed in another tenant's namespace", alice, volume("pv-4", "gas-dev", nil), false},
		{"the tenant label is not honoured", alice, volume("pv-5", "gas-dev", map[string]string{"capsule.clastix.io/tenant": "oil"}), false},
		{"a label alone selects nothing", alice, volume("pv-6", "", map[string]string{"capsule.clastix.io/tenant": "oil"}), false},
		{"an unbound volume belongs to no tenant", alice, volume("pv-7", "", nil), false},
		{"a namespace labelled into the tenant is not the tenant's", alice, volume("pv-8", "labelled", nil), false},
		{"a namespace with a forged owner reference is not the tenant's", alice, volume("pv-9", "forged", nil), false},
		{"a namespace that no longer exists", alice, volume("pv-10", "oil-deleted", nil), false},
		{"kube-system", alice, volume("pv-11", "kube-system", nil), false},
		{"the group owner of gas", bob, volume("pv-12", "gas-dev", nil), true},
		{"the group owner of gas, on oil's volume", bob, volume("pv-13", "oil-dev", nil), false},
		{"a stranger", mallory, volume("pv-14", "oil-dev", nil), false},
		{"a released volume keeps its claimRef but belongs to no tenant", alice, withPhase(volume("pv-15", "oil-dev", nil), corev1.VolumeReleased), false},
		{"a failed volume belongs to no tenant", alice, withPhase(volume("pv-16", "oil-dev", nil), corev1.VolumeFailed), false},
		{"a bound volume", alice, withPhase(volume("pv-17", "oil-dev", nil), corev1.VolumeBound), true},
		{"not a volume", alice, testNamespace("oil-dev", 1, "oil"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := selectsObject(ix.Selections(c.caller, PersistentVolumes, List), c.object); got != c.want {
				t.Errorf("selected %v, want %v", got, c.want)
			}
		})
	}
}

func TestVolumeSelectionsFollowTheNamespace(t *testing.T) {
	ix := grantingFixture(t)
	selections := ix.Selections(alice, PersistentVolumes, List)
	pv := volume("pv", "moving", nil)
	if selectsObject(selections, pv) {
		t.Fatal("selected before the namespace exists")
	}
	ix.setNamespace(testNamespace("moving", 20, "oil"), true)
	if !selectsObject(selections, pv) {
		t.Error("not selected once its namespace joined the tenant")
	}
	ix.setNamespace(testNamespace("moving", 21, "gas"), true)
	if selectsObject(selections, pv) {
		t.Error("still selected after its namespace moved to another tenant")
	}
	ix.setNamespace(testNamespace("moving", 22, "oil"), true)
	ix.removeTenant("oil", 23, true)
	if selectsObject(selections, pv) {
		t.Error("still selected after the tenant was deleted")
	}
}

func TestTenantSelectionsAreTheOwnedTenants(t *testing.T) {
	ix := grantingFixture(t)
	tenantObject := func(name string, uid types.UID) runtime.Object {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid}}
	}
	for _, c := range []struct {
		name   string
		caller user.Info
		object runtime.Object
		want   bool
	}{
		{"the owned tenant", alice, tenantObject("oil", "oil"), true},
		{"another tenant", alice, tenantObject("gas", "gas"), false},
		{"a tenant recreated under the owned name", alice, tenantObject("oil", "oil-2"), false},
		{"the group owner's tenant", bob, tenantObject("gas", "gas"), true},
		{"the owner of no tenant", mallory, tenantObject("oil", "oil"), false},
		{"the owner without the grant", robot, tenantObject("oil", "oil"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := selectsObject(ix.Selections(c.caller, Tenants, List), c.object); got != c.want {
				t.Errorf("selected %v, want %v", got, c.want)
			}
		})
	}
}

func selectsObject(selections []Selection, obj runtime.Object) bool {
	for _, s := range selections {
		if s.Selects(obj) {
			return true
		}
	}
	return false
}

// TestSelectingNamesEveryTenantOfAnObject: which tenants an object belongs to, whatever their owners may do,
// and which tenants grant a caller an operation.
func TestSelectingNamesEveryTenantOfAnObject(t *testing.T) {
	ix := selectionIndex(t, nil)
	gas := selectionTenant(t, nil)
	gas.uid, gas.name = "uid-gas", "gas"
	gas.nodes = nodeSelection{selector: labels.SelectorFromSet(labels.Set{"pool": "gas"})}
	ix.setTenant(gas, false)
	object := func(name string, l map[string]string) runtime.Object {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	for _, c := range []struct {
		name string
		kind Kind
		obj  runtime.Object
		want []types.UID
	}{
		{"a node of pool oil", Nodes, object("n1", map[string]string{"pool": "oil"}), []types.UID{"uid-oil"}},
		{"a node of pool gas", Nodes, object("n2", map[string]string{"pool": "gas"}), []types.UID{"uid-gas"}},
		{"a node of no pool", Nodes, object("n3", nil), nil},
		{"a class both allow by name", StorageClasses, object("gold", nil), []types.UID{"uid-gas", "uid-oil"}},
		{"a class neither allows", StorageClasses, object("bronze", nil), nil},
		{"a Tenant is selected by UID, not name", Tenants, object("oil", nil), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ix.Selecting(c.kind, c.obj)
			if len(got) != len(c.want) {
				t.Fatalf("Selecting = %v, want %v", got, c.want)
			}
			for _, uid := range c.want {
				if _, ok := got[uid]; !ok {
					t.Errorf("Selecting = %v, want %v", got, c.want)
				}
			}
		})
	}
	alice := &user.DefaultInfo{Name: "alice"}
	for _, c := range []struct {
		kind Kind
		op   Operation
		want int
	}{{Nodes, List, 2}, {RuntimeClasses, Update, 2}, {Nodes, Update, 0}, {PriorityClasses, List, 0}} {
		if got := ix.Granting(alice, c.kind, c.op); len(got) != c.want {
			t.Errorf("Granting(alice, %s, %s) = %v, want %d tenants", c.kind, c.op, got, c.want)
		}
	}
}
