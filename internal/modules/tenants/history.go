package tenants

import (
	corev1 "k8s.io/api/core/v1"
)

// history remembers the most recent changes so that a watch can start at the resource version of an
// earlier list: for each namespace changed since then it knows the state the list showed. A membership
// change (owners, tenant status, Capsule users) cannot be undone that way; it is kept as a marker, and a
// watch from before a marker must relist (410 Gone), as after etcd compaction.
type history struct {
	entries []change // ring buffer
	next    int      // where the next change goes
	full    bool
	// floor is the resource version up to which changes may be missing: evicted, or before the caches
	// synced. Watches from older resource versions are refused.
	floor uint64
}

// change is one namespace change (name set) or a membership marker (name empty).
type change struct {
	rv      uint64
	name    string
	before  *corev1.Namespace // nil when the namespace was created
	deleted *corev1.Namespace // the final state when it was deleted
}

func newHistory(capacity int) *history {
	return &history{entries: make([]change, max(capacity, 1))}
}

func (h *history) add(c change) {
	if h.full {
		h.floor = max(h.floor, h.entries[h.next].rv)
	}
	h.entries[h.next] = c
	h.next = (h.next + 1) % len(h.entries)
	if h.next == 0 {
		h.full = true
	}
}

// since returns, for every namespace changed after rv, its state at rv (nil if it did not exist) and its
// final state if it has since been deleted. ok is false when rv is too old to answer, or a membership
// changed after it.
func (h *history) since(rv uint64) (before, deleted map[string]*corev1.Namespace, ok bool) {
	if rv < h.floor {
		return nil, nil, false
	}
	before, deleted = map[string]*corev1.Namespace{}, map[string]*corev1.Namespace{}
	n := h.next
	if h.full {
		n = len(h.entries)
	}
	start := 0
	if h.full {
		start = h.next
	}
	// Changes of one namespace arrive in resource-version order, so the first one after rv in ring order
	// holds the namespace's state at rv.
	for i := range n {
		c := h.entries[(start+i)%len(h.entries)]
		if c.rv <= rv {
			continue
		}
		if c.name == "" {
			return nil, nil, false
		}
		if _, seen := before[c.name]; !seen {
			before[c.name] = c.before
		}
		if c.deleted != nil {
			deleted[c.name] = c.deleted
		} else {
			delete(deleted, c.name) // re-created since
		}
	}
	return before, deleted, true
}
