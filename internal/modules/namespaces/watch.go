package namespaces

import (
	"context"
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// tenantWatch turns index notifications into watch events for one caller. It remembers what the client
// has been shown, so a namespace that starts being visible (created, moved into one of the caller's
// tenants, or now matching the selectors) arrives as ADDED, and one that stops as DELETED.
type tenantWatch struct {
	follower *tenants.Follower
	match    func(*corev1.Namespace) bool
	shown    map[string]*corev1.Namespace
	// initialEventsEnd asks for the bookmark that ends the initial events of a watch-list request.
	initialEventsEnd bool
	// bookmarks: the client accepts bookmarks. Events about membership carry the namespace's own, older,
	// resource version; a bookmark after them moves the client's resume point to the index's.
	bookmarks bool

	result   chan watch.Event
	stop     chan struct{}
	stopOnce sync.Once
}

func newTenantWatch(f *tenants.Follower, shown map[string]*corev1.Namespace, match func(*corev1.Namespace) bool, bookmarks, initialEventsEnd bool) *tenantWatch {
	return &tenantWatch{
		follower:         f,
		match:            match,
		shown:            shown,
		bookmarks:        bookmarks,
		initialEventsEnd: bookmarks && initialEventsEnd,
		result:           make(chan watch.Event),
		stop:             make(chan struct{}),
	}
}

func (w *tenantWatch) ResultChan() <-chan watch.Event { return w.result }

func (w *tenantWatch) Stop() { w.stopOnce.Do(func() { close(w.stop) }) }

// run sends events until the client goes, the request times out (ctx) or the caller stops being a Capsule
// user; closing the result channel ends the response and the client re-establishes its watch.
func (w *tenantWatch) run(ctx context.Context) {
	defer close(w.result)
	defer w.follower.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-w.follower.Changed():
		}
		rv, sent, ok := w.sync(ctx)
		if !ok {
			return
		}
		if w.initialEventsEnd || (w.bookmarks && sent > 0) {
			bookmark := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{ResourceVersion: strconv.FormatUint(rv, 10)}}
			if w.initialEventsEnd {
				bookmark.Annotations = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
				w.initialEventsEnd = false
			}
			if !w.send(ctx, watch.Event{Type: watch.Bookmark, Object: bookmark}) {
				return
			}
		}
	}
}

// sync compares what the client was shown with what the caller may see now and sends the difference.
func (w *tenantWatch) sync(ctx context.Context) (rv uint64, sent int, ok bool) {
	changed, all, rv := w.follower.Take()
	if all {
		if !w.follower.CapsuleUser() {
			return rv, 0, false
		}
		for _, ns := range w.follower.Visible() {
			if _, ok := changed[ns.Name]; !ok {
				changed[ns.Name] = nil
			}
		}
		for name := range w.shown {
			if _, ok := changed[name]; !ok {
				changed[name] = nil
			}
		}
	}
	names := make([]string, 0, len(changed))
	for name := range changed {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		current, visible := w.follower.Lookup(name)
		selected := visible && w.match(current)
		before, shown := w.shown[name]
		var event watch.Event
		switch {
		case selected && !shown:
			event = watch.Event{Type: watch.Added, Object: shallowCopy(current)}
		case selected && current.ResourceVersion != before.ResourceVersion:
			event = watch.Event{Type: watch.Modified, Object: shallowCopy(current)}
		case !selected && shown:
			event = watch.Event{Type: watch.Deleted, Object: gone(before, current, changed[name])}
		default:
			continue
		}
		if selected {
			w.shown[name] = current
		} else {
			delete(w.shown, name)
		}
		if !w.send(ctx, event) {
			return rv, sent, false
		}
		sent++
	}
	return rv, sent, true
}

// gone is the object of a DELETED event: as kube-apiserver does when an object stops matching a watch,
// the state the client last saw, at the resource version of the change. Never the final state: a
// namespace that moved to another tenant before it was deleted would show that tenant's object.
func gone(before, current, final *corev1.Namespace) *corev1.Namespace {
	obj := shallowCopy(before)
	switch {
	case current != nil:
		obj.ResourceVersion = current.ResourceVersion
	case final != nil:
		obj.ResourceVersion = final.ResourceVersion
	}
	return obj
}

func (w *tenantWatch) send(ctx context.Context, event watch.Event) bool {
	select {
	case w.result <- event:
		return true
	case <-w.stop:
		return false
	case <-ctx.Done():
		return false
	}
}
