package permissions

import (
	"fmt"
	"slices"

	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The verbs Helm 4 (helm.sh/helm/v4/pkg/action and pkg/kube, server-side apply) sends for each part of an
// action. They are what the API server will authorise, so they are what is checked.
var (
	// Applied objects: install and upgrade GET every object first (conflict and ownership checks), then
	// server-side apply it: a PATCH, which the API server also authorises as create when the object is new.
	applyVerbs = []string{"create", "get", "patch"}
	// Objects an upgrade or rollback drops: GET (resource policy), then DELETE.
	pruneVerbs = []string{"delete", "get"}
	// Objects an uninstall removes: GET (ownership), then DELETE.
	removeVerbs = []string{"delete", "get"}
	// Hooks: deleted first (before-hook-creation is the default policy, other policies delete afterwards),
	// applied, then watched until ready (list and watch in the hook's namespace).
	hookVerbs = []string{"create", "delete", "list", "patch", "watch"}
	// CRDs of the chart's crds/ directory, on install only: applied, then watched until established.
	crdVerbs = []string{"create", "list", "patch", "watch"}
)

// Helm's release records (the Secret storage driver, in the release namespace) per action.
var (
	// History is listed (name in use?), revision 1 created and updated with the outcome; a failed install
	// is uninstalled again, which deletes the record.
	installStorageVerbs = []string{"create", "delete", "list", "update"}
	// The last and deployed revisions are listed, the new one created and the previous one updated.
	upgradeStorageVerbs = []string{"create", "list", "update"}
	// As upgrade, plus a GET of the target revision.
	rollbackStorageVerbs = []string{"create", "get", "list", "update"}
	// History listed, the record updated (uninstalling) and, unless history is kept, every revision deleted.
	uninstallStorageVerbs     = []string{"delete", "list", "update"}
	uninstallKeepStorageVerbs = []string{"list", "update"}
)

var secretKind = schema.GroupVersionKind{Version: "v1", Kind: "Secret"}

// Step is a set of objects that need the same verbs.
type Step struct {
	Objects []Object
	Verbs   []string
}

// Rendered is what a release revision applies: its manifest and hooks, as Helm renders and stores them.
type Rendered struct {
	Manifest string
	Hooks    []*release.Hook
}

// Install is what installing next into namespace needs; crds are the chart's crds/ objects.
func Install(namespace string, next Rendered, crds []Object) ([]Step, error) {
	objects, err := Parse(next.Manifest)
	if err != nil {
		return nil, err
	}
	hooks, err := hooksFor(next.Hooks, release.HookPreInstall, release.HookPostInstall)
	if err != nil {
		return nil, err
	}
	return []Step{
		{Objects: crds, Verbs: crdVerbs},
		{Objects: objects, Verbs: applyVerbs},
		{Objects: hooks, Verbs: hookVerbs},
		storage(namespace, installStorageVerbs),
	}, nil
}

// Upgrade is what replacing current by next needs: next applied, what it drops deleted.
func Upgrade(namespace string, current, next Rendered) ([]Step, error) {
	return replace(namespace, current, next, upgradeStorageVerbs, release.HookPreUpgrade, release.HookPostUpgrade)
}

// Rollback is what going back from current to the stored target revision needs.
func Rollback(namespace string, current, target Rendered) ([]Step, error) {
	return replace(namespace, current, target, rollbackStorageVerbs, release.HookPreRollback, release.HookPostRollback)
}

func replace(namespace string, current, next Rendered, storageVerbs []string, events ...release.HookEvent) ([]Step, error) {
	before, err := Parse(current.Manifest)
	if err != nil {
		return nil, fmt.Errorf("current revision: %w", err)
	}
	after, err := Parse(next.Manifest)
	if err != nil {
		return nil, err
	}
	hooks, err := hooksFor(next.Hooks, events...)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, o := range after {
		kept[o.key(namespace)] = true
	}
	var dropped []Object
	for _, o := range before {
		if !kept[o.key(namespace)] && !o.Keep {
			dropped = append(dropped, o)
		}
	}
	return []Step{
		{Objects: after, Verbs: applyVerbs},
		{Objects: dropped, Verbs: pruneVerbs},
		{Objects: hooks, Verbs: hookVerbs},
		storage(namespace, storageVerbs),
	}, nil
}

// Uninstall is what removing current needs; keepHistory leaves the release records in place.
func Uninstall(namespace string, current Rendered, keepHistory bool) ([]Step, error) {
	objects, err := Parse(current.Manifest)
	if err != nil {
		return nil, fmt.Errorf("current revision: %w", err)
	}
	objects = slices.DeleteFunc(objects, func(o Object) bool { return o.Keep })
	hooks, err := hooksFor(current.Hooks, release.HookPreDelete, release.HookPostDelete)
	if err != nil {
		return nil, err
	}
	storageVerbs := uninstallStorageVerbs
	if keepHistory {
		storageVerbs = uninstallKeepStorageVerbs
	}
	return []Step{
		{Objects: objects, Verbs: removeVerbs},
		{Objects: hooks, Verbs: hookVerbs},
		storage(namespace, storageVerbs),
	}, nil
}

// Storage is only the release records' part of an action: what can be checked before the release itself is
// read. action is install, upgrade, rollback, uninstall or uninstall-keep-history.
func Storage(namespace, action string) (Step, error) {
	verbs, ok := map[string][]string{
		"install": installStorageVerbs, "upgrade": upgradeStorageVerbs, "rollback": rollbackStorageVerbs,
		"uninstall": uninstallStorageVerbs, "uninstall-keep-history": uninstallKeepStorageVerbs,
	}[action]
	if !ok {
		return Step{}, fmt.Errorf("unknown action %q", action)
	}
	return storage(namespace, verbs), nil
}

func storage(namespace string, verbs []string) Step {
	return Step{Objects: []Object{{GVK: secretKind, Namespace: namespace}}, Verbs: verbs}
}

// hooksFor parses the hooks that run on any of events.
func hooksFor(hooks []*release.Hook, events ...release.HookEvent) ([]Object, error) {
	var objects []Object
	for _, h := range hooks {
		if !slices.ContainsFunc(h.Events, func(e release.HookEvent) bool { return slices.Contains(events, e) }) {
			continue
		}
		parsed, err := Parse(h.Manifest)
		if err != nil {
			return nil, fmt.Errorf("hook %s: %w", h.Path, err)
		}
		objects = append(objects, parsed...)
	}
	return objects, nil
}

// Check is one verb on one resource, in one namespace or (Namespace empty) cluster-wide.
type Check struct {
	APIGroup  string
	Resource  string
	Namespace string
	Verb      string
}

// Plan maps every object of steps to its resource and scope and returns the checks, without duplicates,
// sorted. Kinds come from mapper (the caller's discovery) or, for kinds the cluster does not know yet, from
// a CustomResourceDefinition among the steps' objects or in definitions. Namespaced objects without a
// namespace are checked in releaseNamespace; objects naming another namespace in that namespace;
// cluster-scoped objects cluster-wide. A kind that neither knows is an error: it cannot be checked.
func Plan(mapper meta.RESTMapper, releaseNamespace string, definitions []Object, steps ...Step) ([]Check, error) {
	defined := map[schema.GroupKind]*Definition{}
	for _, o := range definitions {
		if o.Defines != nil {
			defined[o.Defines.GroupKind] = o.Defines
		}
	}
	for _, s := range steps {
		for _, o := range s.Objects {
			if o.Defines != nil {
				defined[o.Defines.GroupKind] = o.Defines
			}
		}
	}
	seen := map[Check]bool{}
	for _, s := range steps {
		for _, o := range s.Objects {
			group, resource, namespaced, err := resolve(mapper, defined, o.GVK)
			if err != nil {
				return nil, err
			}
			ns := ""
			if namespaced {
				ns = o.Namespace
				if ns == "" {
					ns = releaseNamespace
				}
			}
			for _, verb := range s.Verbs {
				seen[Check{APIGroup: group, Resource: resource, Namespace: ns, Verb: verb}] = true
			}
		}
	}
	checks := make([]Check, 0, len(seen))
	for c := range seen {
		checks = append(checks, c)
	}
	slices.SortFunc(checks, compareChecks)
	return checks, nil
}

func resolve(mapper meta.RESTMapper, defined map[schema.GroupKind]*Definition, gvk schema.GroupVersionKind) (group, resource string, namespaced bool, err error) {
	mapping, mapErr := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if mapErr == nil {
		return mapping.Resource.Group, mapping.Resource.Resource, mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
	}
	if def, ok := defined[gvk.GroupKind()]; ok {
		return def.GroupKind.Group, def.Resource, def.Namespaced, nil
	}
	if meta.IsNoMatchError(mapErr) {
		return "", "", false, &UnknownKindError{GVK: gvk}
	}
	return "", "", false, fmt.Errorf("resolving %s: %w", gvk, mapErr)
}

// UnknownKindError is a kind neither the cluster nor the chart defines.
type UnknownKindError struct{ GVK schema.GroupVersionKind }

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("the cluster does not serve kind %q in version %q and the chart does not define it",
		e.GVK.Kind, e.GVK.GroupVersion().String())
}

func compareChecks(a, b Check) int {
	for _, pair := range [][2]string{{a.APIGroup, b.APIGroup}, {a.Resource, b.Resource}, {a.Namespace, b.Namespace}, {a.Verb, b.Verb}} {
		if pair[0] != pair[1] {
			if pair[0] < pair[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}
