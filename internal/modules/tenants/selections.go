package tenants

import (
	"regexp"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
)

// Operation is an operation in owners[].proxySettings.
type Operation string

const (
	List   Operation = "List"
	Update Operation = "Update"
	Delete Operation = "Delete"
)

// Selection decides which objects of one kind one tenant allows its owners to see.
type Selection interface {
	Selects(name string, objectLabels map[string]string) bool
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
func (l *allowedList) Selects(name string, objectLabels map[string]string) bool {
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

func (n nodeSelection) Selects(_ string, objectLabels map[string]string) bool {
	return n.selector != nil && n.selector.Matches(labels.Set(objectLabels))
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
		if s := t.selection(kind); s != nil {
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

func (t *tenant) selection(kind Kind) Selection {
	switch kind {
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
