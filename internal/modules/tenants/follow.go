package tenants

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Follower tells a watch which namespaces may have changed for its caller: the object itself, or whether
// the caller may still see it. Notifications coalesce and never block the informers; the watch asks the
// index for the current state when it gets to them.
type Follower struct {
	index *Index
	user  user.Info

	mu      sync.Mutex
	pending map[string]*corev1.Namespace // name -> final state if deleted
	all     bool                         // everything may have changed (ownership, Capsule users)
	signal  chan struct{}                // has a value while something is pending
}

// Follow starts following the namespaces u may see.
//
// Without from, the follower starts with everything pending and nothing known: the watch sends every
// visible namespace as ADDED. With from, it returns the namespaces u could see at that resource version
// (as a list then showed them) and has pending what changed since; it fails with ErrResourceVersionTooOld
// when that is no longer known. from must not be ahead of the index (see WaitForResourceVersion).
func (ix *Index) Follow(u user.Info, from *uint64) (*Follower, map[string]*corev1.Namespace, error) {
	f := &Follower{index: ix, user: u, pending: map[string]*corev1.Namespace{}, signal: make(chan struct{}, 1)}
	known := map[string]*corev1.Namespace{}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	if from == nil {
		f.notifyAll()
	} else {
		if *from > ix.rv {
			return nil, nil, fmt.Errorf("resource version %d is ahead of the index (%d)", *from, ix.rv)
		}
		before, deleted, ok := ix.history.since(*from)
		if !ok {
			return nil, nil, fmt.Errorf("%w: %d", ErrResourceVersionTooOld, *from)
		}
		owned := ix.ownedLocked(u)
		for _, ns := range ix.visibleLocked(owned) {
			if _, changed := before[ns.Name]; !changed {
				known[ns.Name] = ns
			}
		}
		// Membership has not changed since from (else history refuses), so today's tenants decide what
		// the earlier states showed.
		for name, ns := range before {
			if ix.memberLocked(owned, name, ns) {
				known[name] = ns
			}
			f.pending[name] = deleted[name]
		}
		if len(f.pending) > 0 {
			f.signal <- struct{}{}
		}
	}
	ix.followers[f] = struct{}{}
	return f, known, nil
}

// Changed has a value when Take has something.
func (f *Follower) Changed() <-chan struct{} { return f.signal }

// Take returns and clears what is pending: the names that may have changed (with the final state of
// deleted ones), or all=true when anything may have. rv is the index's resource version at that moment.
func (f *Follower) Take() (names map[string]*corev1.Namespace, all bool, rv uint64) {
	rv = f.index.ResourceVersion()
	f.mu.Lock()
	defer f.mu.Unlock()
	names, all = f.pending, f.all
	f.pending, f.all = map[string]*corev1.Namespace{}, false
	return names, all, rv
}

// Lookup returns the namespace called name if the follower's caller may see it now.
func (f *Follower) Lookup(name string) (*corev1.Namespace, bool) {
	return f.index.Namespace(f.user, name)
}

// Visible returns every namespace the caller may see now, sorted by name.
func (f *Follower) Visible() []*corev1.Namespace {
	items, _ := f.index.Namespaces(f.user)
	return items
}

// CapsuleUser reports whether the caller is still a Capsule user; when it no longer is, its requests are
// no longer the proxy's to answer.
func (f *Follower) CapsuleUser() bool { return f.index.CapsuleUser(f.user) }

// Stop ends notifications.
func (f *Follower) Stop() {
	f.index.mu.Lock()
	defer f.index.mu.Unlock()
	delete(f.index.followers, f)
}

func (f *Follower) notify(names map[string]*corev1.Namespace) {
	f.mu.Lock()
	for name, final := range names {
		f.pending[name] = final
	}
	f.mu.Unlock()
	f.wake()
}

func (f *Follower) notifyAll() {
	f.mu.Lock()
	f.all = true
	f.mu.Unlock()
	f.wake()
}

func (f *Follower) wake() {
	select {
	case f.signal <- struct{}{}:
	default: // already signalled
	}
}
