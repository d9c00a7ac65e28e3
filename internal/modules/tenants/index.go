// Package tenants keeps an in-memory index of Capsule tenancy, fed by informers: which tenants a caller
// owns, whether the caller is a Capsule user at all, and which namespaces the caller may therefore see.
// Membership comes only from what the Capsule controller writes (Tenant status and namespace
// ownerReferences), never from labels a tenant can set.
package tenants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
)

// ErrResourceVersionTooOld means a watch cannot start at the requested resource version: the changes
// since then are no longer known. Clients relist, as after etcd compaction.
var ErrResourceVersionTooOld = errors.New("too old resource version")

// defaultHistorySize is how many namespace changes the index remembers for watches that start at the
// resource version of an earlier list; a list followed by a watch needs only the few in between.
const defaultHistorySize = 4096

type uidSet = map[types.UID]struct{}

// Index answers tenancy questions in microseconds under a read lock. Namespace objects are the informer's
// own and are shared: callers must not modify them.
type Index struct {
	configurationName string
	sources           *sources // nil when a test feeds the index directly

	mu         sync.RWMutex
	users      *capsuleUsers // nil until the CapsuleConfiguration is seen
	tenants    map[types.UID]*tenant
	byUserName map[string]uidSet // owners of kind User and ServiceAccount
	byGroup    map[string]uidSet
	namespaces map[string]*corev1.Namespace
	referrers  map[types.UID]map[string]struct{} // tenant UID -> namespaces whose ownerReferences name it
	rv         uint64                            // highest resource version applied
	rvChanged  chan struct{}                     // closed and replaced whenever rv grows
	history    *history
	followers  map[*Follower]struct{}

	synced    atomic.Bool
	startOnce sync.Once
	startErr  error
}

func newIndex(configurationName string, historySize int) *Index {
	if configurationName == "" {
		configurationName = DefaultConfigurationName
	}
	if historySize <= 0 {
		historySize = defaultHistorySize
	}
	return &Index{
		configurationName: configurationName,
		tenants:           map[types.UID]*tenant{},
		byUserName:        map[string]uidSet{},
		byGroup:           map[string]uidSet{},
		namespaces:        map[string]*corev1.Namespace{},
		referrers:         map[types.UID]map[string]struct{}{},
		rvChanged:         make(chan struct{}),
		history:           newHistory(historySize),
		followers:         map[*Follower]struct{}{},
	}
}

// Synced reports whether every informer has delivered its initial list. Until then no answer is complete
// and callers must fail closed.
func (ix *Index) Synced() bool { return ix.synced.Load() }

// Ready implements modules.ReadinessChecker.
func (ix *Index) Ready(context.Context) error {
	if !ix.Synced() {
		return errors.New("tenant caches are not synced yet")
	}
	return nil
}

// CapsuleUser reports whether the CapsuleConfiguration makes u a Capsule user.
func (ix *Index) CapsuleUser(u user.Info) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.users.includes(u)
}

// Tenants returns the names of the tenants u owns, sorted.
func (ix *Index) Tenants(u user.Info) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var names []string
	for uid := range ix.ownedLocked(u) {
		names = append(names, ix.tenants[uid].name)
	}
	slices.Sort(names)
	return names
}

// Namespaces returns the namespaces u may see, sorted by name, and the resource version of that state.
func (ix *Index) Namespaces(u user.Info) ([]*corev1.Namespace, uint64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.visibleLocked(ix.ownedLocked(u)), ix.rv
}

// Namespace returns the namespace called name if u may see it.
func (ix *Index) Namespace(u user.Info, name string) (*corev1.Namespace, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ns := ix.namespaces[name]
	if !ix.memberLocked(ix.ownedLocked(u), name, ns) {
		return nil, false
	}
	return ns, true
}

// ResourceVersion is the resource version of the index's current state.
func (ix *Index) ResourceVersion() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.rv
}

// WaitForResourceVersion returns once the index has applied rv, or ctx's error.
func (ix *Index) WaitForResourceVersion(ctx context.Context, rv uint64) error {
	for {
		ix.mu.RLock()
		current, changed := ix.rv, ix.rvChanged
		ix.mu.RUnlock()
		if current >= rv {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for resource version %d (at %d): %w", rv, current, ctx.Err())
		}
	}
}

func (ix *Index) ownedLocked(u user.Info) uidSet {
	owned := uidSet{}
	for uid := range ix.byUserName[u.GetName()] {
		owned[uid] = struct{}{}
	}
	for _, g := range u.GetGroups() {
		for uid := range ix.byGroup[g] {
			owned[uid] = struct{}{}
		}
	}
	return owned
}

// memberLocked reports whether the namespace name, in state ns, belongs to one of the owned tenants.
func (ix *Index) memberLocked(owned uidSet, name string, ns *corev1.Namespace) bool {
	if ns == nil || len(owned) == 0 {
		return false
	}
	for _, uid := range tenantReferences(ns) {
		if _, ok := owned[uid]; ok {
			return true
		}
	}
	for uid := range owned {
		if _, ok := ix.tenants[uid].namespaces[name]; ok {
			return true
		}
	}
	return false
}

func (ix *Index) visibleLocked(owned uidSet) []*corev1.Namespace {
	names := map[string]struct{}{}
	for uid := range owned {
		for name := range ix.tenants[uid].namespaces {
			names[name] = struct{}{}
		}
		for name := range ix.referrers[uid] {
			names[name] = struct{}{}
		}
	}
	items := make([]*corev1.Namespace, 0, len(names))
	for name := range names {
		if ns := ix.namespaces[name]; ns != nil {
			items = append(items, ns)
		}
	}
	slices.SortFunc(items, func(a, b *corev1.Namespace) int { return compareStrings(a.Name, b.Name) })
	return items
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseResourceVersion reads an etcd revision; resource versions are opaque to clients, but the index
// serves its own lists and watches and needs to order what it has seen. Anything else counts as 0.
func parseResourceVersion(rv string) uint64 {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// The methods below apply informer events. live is false for the initial list, which needs no history.

func (ix *Index) bumpLocked(rv uint64) {
	if rv > ix.rv {
		ix.rv = rv
		close(ix.rvChanged)
		ix.rvChanged = make(chan struct{})
	}
}

// membershipChangedLocked records a change that namespace history cannot replay and tells every follower
// to recompute everything it shows.
func (ix *Index) membershipChangedLocked(rv uint64, live bool) {
	if !live {
		return
	}
	ix.history.add(change{rv: max(rv, ix.rv)})
	for f := range ix.followers {
		f.notifyAll()
	}
}

func (ix *Index) setTenant(t *tenant, live bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.tenants[t.uid]
	if old != nil {
		ix.unindexOwnersLocked(old)
	}
	ix.tenants[t.uid] = t
	ix.indexOwnersLocked(t)
	ix.bumpLocked(t.rv)
	if old == nil || !slices.Equal(sortedSubjects(old.owners), sortedSubjects(t.owners)) {
		ix.membershipChangedLocked(t.rv, live)
		return
	}
	// Only status.namespaces changed. It matters only for namespaces that exist and are not already the
	// tenant's through their ownerReferences, which history covers.
	changed := map[string]*corev1.Namespace{}
	marker := false
	for _, diff := range [][2]map[string]struct{}{{old.namespaces, t.namespaces}, {t.namespaces, old.namespaces}} {
		for name := range diff[0] {
			if _, both := diff[1][name]; both {
				continue
			}
			changed[name] = nil
			if ns := ix.namespaces[name]; ns != nil && !slices.Contains(tenantReferences(ns), t.uid) {
				marker = true
			}
		}
	}
	if marker {
		ix.membershipChangedLocked(t.rv, live)
	} else if live {
		ix.notifyLocked(changed)
	}
}

func (ix *Index) removeTenant(uid types.UID, rv uint64, live bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.tenants[uid]
	if old == nil {
		return
	}
	ix.unindexOwnersLocked(old)
	delete(ix.tenants, uid)
	ix.bumpLocked(rv)
	ix.membershipChangedLocked(rv, live)
}

func (ix *Index) indexOwnersLocked(t *tenant) {
	for _, o := range t.owners {
		byName := ix.byUserName
		if o.Kind == groupKind {
			byName = ix.byGroup
		} else if o.Kind != userKind && o.Kind != serviceAccountKind {
			continue
		}
		if byName[o.Name] == nil {
			byName[o.Name] = uidSet{}
		}
		byName[o.Name][t.uid] = struct{}{}
	}
}

func (ix *Index) unindexOwnersLocked(t *tenant) {
	for _, byName := range []map[string]uidSet{ix.byUserName, ix.byGroup} {
		for _, o := range t.owners {
			delete(byName[o.Name], t.uid)
			if len(byName[o.Name]) == 0 {
				delete(byName, o.Name)
			}
		}
	}
}

func sortedSubjects(s []subject) []subject {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b subject) int {
		if c := compareStrings(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return compareStrings(a.Name, b.Name)
	})
	return s
}

func (ix *Index) setUsers(users *capsuleUsers, rv uint64, live bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	same := ix.users.equal(users)
	ix.users = users
	ix.bumpLocked(rv)
	if !same {
		ix.membershipChangedLocked(rv, live)
	}
}

func (ix *Index) setNamespace(ns *corev1.Namespace, live bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.namespaces[ns.Name]
	if old != nil && old.ResourceVersion == ns.ResourceVersion {
		return // a resync; nothing changed
	}
	ix.unreferLocked(old)
	ix.namespaces[ns.Name] = ns
	for _, uid := range tenantReferences(ns) {
		if ix.referrers[uid] == nil {
			ix.referrers[uid] = map[string]struct{}{}
		}
		ix.referrers[uid][ns.Name] = struct{}{}
	}
	rv := parseResourceVersion(ns.ResourceVersion)
	ix.bumpLocked(rv)
	if live {
		ix.history.add(change{rv: rv, name: ns.Name, before: old})
		ix.notifyLocked(map[string]*corev1.Namespace{ns.Name: nil})
	}
}

// removeNamespace applies a deletion; final is the last state the informer saw.
func (ix *Index) removeNamespace(final *corev1.Namespace) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.namespaces[final.Name]
	if old == nil {
		return
	}
	ix.unreferLocked(old)
	delete(ix.namespaces, final.Name)
	// A deletion's object carries the deletion's revision; a relist's tombstone only the last one seen.
	rv := max(parseResourceVersion(final.ResourceVersion), ix.rv)
	ix.bumpLocked(rv)
	ix.history.add(change{rv: rv, name: final.Name, before: old, deleted: final})
	ix.notifyLocked(map[string]*corev1.Namespace{final.Name: final})
}

func (ix *Index) unreferLocked(ns *corev1.Namespace) {
	if ns == nil {
		return
	}
	for _, uid := range tenantReferences(ns) {
		delete(ix.referrers[uid], ns.Name)
		if len(ix.referrers[uid]) == 0 {
			delete(ix.referrers, uid)
		}
	}
}

// markSynced opens the index for answers. Changes before this point are not in history.
func (ix *Index) markSynced() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.history.floor = max(ix.history.floor, ix.rv)
	ix.synced.Store(true)
}

func (ix *Index) notifyLocked(names map[string]*corev1.Namespace) {
	for f := range ix.followers {
		f.notify(names)
	}
}
