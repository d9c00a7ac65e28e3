package tenants

import (
	"regexp"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Kind is a kind of cluster-scoped resource in owners[].proxySettings.
type Kind string

const (
	Nodes             Kind = "Nodes"
	StorageClasses    Kind = "StorageClasses"
	IngressClasses    Kind = "IngressClasses"
	PriorityClasses   Kind = "PriorityClasses"
	RuntimeClasses    Kind = "RuntimeClasses"
	PersistentVolumes Kind = "PersistentVolumes"
	Tenants           Kind = "Tenant"
)

// Operation is an operation in owners[].proxySettings.
type Operation string

const (
	List   Operation = "List"
	Update Operation = "Update"
	Delete Operation = "Delete"
)

// Selection decides which objects of one kind one tenant allows its owners to see. obj is an object of
// that kind, as its informer caches it; anything else is not selected.
type Selection interface {
	Selects(obj runtime.Object) bool
}

// nameAndLabels reads what the class and node selections match on.
func nameAndLabels(obj runtime.Object) (string, map[string]string, bool) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", nil, false
	}
	return m.GetName(), m.GetLabels(), true
}

// legacyAnnotations are the Tenant annotations that grant an operation to every owner of the tenant, as
// proxySettings do for one owner: capsule.clastix.io/enable-<kind>-<operation>.
var legacyAnnotations = map[string]grant{}

type grant struct {
	kind Kind
	op   Operation
}

func init() {
	kinds := map[string]Kind{"node": Nodes, "storageclass": StorageClasses, "ingressclass": IngressClasses}
	ops := map[string]Operation{"listing": List, "update": Update, "deletion": Delete}
	for k, kind := range kinds {
		for o, op := range ops {
			legacyAnnotations["capsule.clastix.io/enable-"+k+"-"+o] = grant{kind, op}
		}
	}
	// Capsule's Go API defines proxySettings kind Tenant, but the v1beta2 Tenant CRD of Capsule v0.13 rejects
	// it, so an administrator could not grant an owner the listing of their own Tenants at all. The annotation,
	// which only whoever may edit the Tenant can set, is the grant that such a Capsule can store. Listing only:
	// owners never write their Tenant through the proxy.
	legacyAnnotations["capsule.clastix.io/enable-tenant-listing"] = grant{Tenants, List}
}

// grants is what a tenant lets one owner (or, from annotations, every owner) do.
type grants map[Kind]map[Operation]struct{}

func (g grants) add(kind Kind, op Operation) {
	if g[kind] == nil {
		g[kind] = map[Operation]struct{}{}
	}
	g[kind][op] = struct{}{}
}

func (g grants) allow(kind Kind, op Operation) bool {
	_, ok := g[kind][op]
	return ok
}

// annotationGrants reads the legacy annotations; only a value of true grants.
func annotationGrants(annotations map[string]string) grants {
	g := grants{}
	for key, value := range annotations {
		a, known := legacyAnnotations[key]
		if on, err := strconv.ParseBool(value); known && err == nil && on {
			g.add(a.kind, a.op)
		}
	}
	return g
}

// allowedList is Capsule's allowed list of class names (api.DefaultAllowedListSpec), compiled once.
type allowedList struct {
	exact    map[string]struct{}
	regex    *regexp.Regexp  // nil when absent or invalid
	selector labels.Selector // nil when absent or invalid
}

func newAllowedList(spec *allowedListFields) *allowedList {
	if spec == nil {
		return nil
	}
	l := &allowedList{exact: map[string]struct{}{}}
	for _, name := range spec.Allowed {
		l.exact[name] = struct{}{}
	}
	// The tenant's default class is one its workloads use, so its owners may see it.
	if spec.Default != "" {
		l.exact[spec.Default] = struct{}{}
	}
	if spec.AllowedRegex != "" {
		// Unanchored, as Capsule's admission matches it. An invalid expression allows nothing more.
		l.regex, _ = regexp.Compile(spec.AllowedRegex)
	}
	// An empty label selector would select everything; in an allowed list it means "no selector".
	if len(spec.MatchLabels) > 0 || len(spec.MatchExpressions) > 0 {
		sel, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: spec.MatchLabels, MatchExpressions: spec.MatchExpressions})
		if err == nil {
			l.selector = sel
		}
	}
	return l
}

// Selects matches by name or by labels. No label is required: a name in allowed or allowedRegex is enough.
func (l *allowedList) Selects(obj runtime.Object) bool {
	name, objectLabels, ok := nameAndLabels(obj)
	return ok && l.matches(name, objectLabels)
}

func (l *allowedList) matches(name string, objectLabels map[string]string) bool {
	if _, ok := l.exact[name]; ok {
		return true
	}
	if l.regex != nil && l.regex.MatchString(name) {
		return true
	}
	return l.selector != nil && l.selector.Matches(labels.Set(objectLabels))
}

// nodeSelection selects the nodes matching a tenant's spec.nodeSelector. A tenant without one selects
// no node: it has no pool of its own.
type nodeSelection struct{ selector labels.Selector }

func (n nodeSelection) Selects(obj runtime.Object) bool {
	_, objectLabels, ok := nameAndLabels(obj)
	return ok && n.selector != nil && n.selector.Matches(labels.Set(objectLabels))
}

// volumeSelection selects the PersistentVolumes of one tenant: those whose spec.claimRef.namespace is one
// of the tenant's namespaces. Membership is the index's, from what the Capsule controller writes (Tenant
// status.namespaces and namespace ownerReferences); a PV's labels, such as capsule.clastix.io/tenant, are
// never consulted, because whoever creates or edits a PV (or a provisioner copying claim labels) could set
// them, and Capsule's own PV controller only adds its label to volumes that lack it, so a wrong value stays.
// A claimRef is written by the PV controller when it binds a claim (or by an administrator who
// pre-binds a volume), and a tenant can only bind claims in its own namespaces, so a tenant cannot claim
// another tenant's volume this way. The namespace is looked up when each PV is checked, so a volume
// follows its namespace into or out of the tenant; a volume whose namespace no longer exists, or that is
// bound to no claim, belongs to no tenant. Released and Failed volumes belong to none either: they keep the
// claimRef of a claim that is gone, perhaps with its namespace, and another tenant could create a namespace
// of that name to see them. (A volume pre-bound by an administrator to a namespace name is reserved for
// that namespace's claims, and shows there.)
type volumeSelection struct {
	ix  *Index
	uid types.UID
}

func (v volumeSelection) Selects(obj runtime.Object) bool {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace == "" ||
		pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed {
		return false
	}
	ns := pv.Spec.ClaimRef.Namespace
	v.ix.mu.RLock()
	defer v.ix.mu.RUnlock()
	if v.ix.tenants[v.uid] == nil {
		return false // the tenant is gone
	}
	return v.ix.memberLocked(uidSet{v.uid: {}}, ns, v.ix.namespaces[ns])
}

// tenantSelection selects one Tenant object, by UID: a Tenant deleted and created again under the same
// name is another tenant, with owners of its own.
type tenantSelection struct{ uid types.UID }

func (s tenantSelection) Selects(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	return err == nil && s.uid != "" && m.GetUID() == s.uid
}

// Selections returns, for each tenant u owns that grants u the operation op on kind, which objects of
// kind that tenant allows. None means no tenant grants it, and u keeps plain RBAC.
func (ix *Index) Selections(u user.Info, kind Kind, op Operation) []Selection {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []Selection
	for uid := range ix.ownedLocked(u) {
		t := ix.tenants[uid]
		if !t.grants(u, kind, op) {
			continue
		}
		if s := ix.selectionLocked(t, kind); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (t *tenant) grants(u user.Info, kind Kind, op Operation) bool {
	if t.annotationGrants.allow(kind, op) {
		return true
	}
	for o, g := range t.ownerGrants {
		if o.matches(u) && g.allow(kind, op) {
			return true
		}
	}
	return false
}

func (ix *Index) selectionLocked(t *tenant, kind Kind) Selection {
	switch kind {
	case PersistentVolumes:
		return volumeSelection{ix: ix, uid: t.uid}
	case Tenants:
		return tenantSelection{uid: t.uid}
	case Nodes:
		return t.nodes
	case StorageClasses, IngressClasses, PriorityClasses, RuntimeClasses:
		if l := t.classes[kind]; l != nil {
			return l
		}
	}
	return nil
}

// matches reports whether s names u, as the owner index does.
func (s subject) matches(u user.Info) bool {
	switch s.Kind {
	case userKind, serviceAccountKind:
		return s.Name == u.GetName()
	case groupKind:
		for _, g := range u.GetGroups() {
			if g == s.Name {
				return true
			}
		}
	}
	return false
}

// Selecting returns the UIDs of every tenant whose allowed set of kind includes obj, whoever owns them and
// whatever they grant: which tenants an object belongs to. A write the proxy performs for a tenant owner
// must leave it unchanged, so that no owner can move an object into (or out of) another tenant's set.
func (ix *Index) Selecting(kind Kind, obj runtime.Object) map[types.UID]struct{} {
	selections := map[types.UID]Selection{}
	ix.mu.RLock()
	for uid, t := range ix.tenants {
		if s := ix.selectionLocked(t, kind); s != nil {
			selections[uid] = s
		}
	}
	ix.mu.RUnlock() // a volume selection takes the lock itself
	out := map[types.UID]struct{}{}
	for uid, s := range selections {
		if s.Selects(obj) {
			out[uid] = struct{}{}
		}
	}
	return out
}

// Granting returns the tenants u owns that grant u the operation op on kind (the tenants behind
// Selections), each with the generation of its spec, where its selectors are. A watch compares them over
// time, to end when a grant is revoked or a selector changes.
func (ix *Index) Granting(u user.Info, kind Kind, op Operation) map[types.UID]int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := map[types.UID]int64{}
	for uid := range ix.ownedLocked(u) {
		if t := ix.tenants[uid]; t.grants(u, kind, op) {
			out[uid] = t.generation
		}
	}
	return out
}
