package clusterscoped

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// filteredWatch streams one caller's view of an informer's events: an object that starts being visible
// (created, or relabelled into the tenant's set or the client's selection) arrives as ADDED, one that stops
// as DELETED. The grant is checked when the watch starts, as kube-apiserver authorizes a watch once, and
// then again with every event and every few seconds: a watch whose grant was revoked (proxySettings
// changed, the caller no longer an owner) ends, and the client's next watch is decided afresh. The API
// server keeps a watch open when RBAC changes; the proxy, which decides visibility itself, does not keep
// serving a grant that is gone.
type filteredWatch struct {
	visible func(runtime.Object) bool
	// replay decides which objects already in the cache are sent as ADDED when the watch starts.
	replay func(runtime.Object) bool

	// served builds the object an event carries from a cached one.
	served   func(runtime.Object) (runtime.Object, error)
	events   chan watch.Event // from the informer's handler; never closed, so a late handler cannot panic
	result   chan watch.Event
	done     chan struct{}
	stopOnce sync.Once
}

func (w *filteredWatch) ResultChan() <-chan watch.Event { return w.result }

func (w *filteredWatch) Stop() { w.stopOnce.Do(func() { close(w.done) }) }

// send sends an event with the served form of cached, the informer's object.
func (w *filteredWatch) send(typ watch.EventType, cached runtime.Object) {
	w.sendBuilt(typ, func() (runtime.Object, error) { return w.served(cached) })
}

func (w *filteredWatch) sendBuilt(typ watch.EventType, build func() (runtime.Object, error)) {
	obj, err := build()
	if err != nil {
		// The client re-establishes its watch rather than miss an event.
		klog.ErrorS(err, "Ending a filtered watch")
		w.Stop()
		return
	}
	select {
	case w.events <- watch.Event{Type: typ, Object: obj}:
	case <-w.done:
	}
}

func (w *filteredWatch) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			o, ok := obj.(runtime.Object)
			if ok && w.visible(o) && (!initial || w.replay(o)) {
				w.send(watch.Added, o)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			before, okBefore := oldObj.(runtime.Object)
			after, okAfter := newObj.(runtime.Object)
			if !okBefore || !okAfter {
				return
			}
			switch was, is := w.visible(before), w.visible(after); {
			case was && is:
				w.send(watch.Modified, after)
			case is:
				w.send(watch.Added, after)
			case was:
				// Like kube-apiserver: the state the caller last saw, at the new resource version. The new
				// state is outside the caller's view (another tenant's labels, claim, pool).
				w.sendBuilt(watch.Deleted, func() (runtime.Object, error) { return lastSeen(before, after, w.served) })
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(runtime.Object); ok && w.visible(o) {
				w.send(watch.Deleted, o)
			}
		},
	}
}

// watchOptions are the parts of a watch request that decide where it starts.
type watchOptions struct {
	resourceVersion  string
	initialEvents    *bool
	bookmarks        bool
	newEmptyBookmark func() runtime.Object
	// granted reports whether the caller still holds the grant the watch started with; nil: always.
	granted func() bool
	// served builds an event's object from a cached one.
	served func(runtime.Object) (runtime.Object, error)
}

// regrantInterval is how often an idle watch checks that its grant still holds.
var regrantInterval = 2 * time.Second

// startWatch registers a filtered watch on informer and forwards its events until ctx ends or the client
// stops. The cache keeps no history: a watch from a resource version N replays, as ADDED, the visible
// objects changed after N, and deletions in between are not known.
func startWatch(ctx context.Context, informer cache.SharedIndexInformer, visible func(runtime.Object) bool, opts watchOptions) (watch.Interface, error) {
	replayAll := opts.initialEvents != nil && *opts.initialEvents
	var replay func(runtime.Object) bool
	switch {
	case replayAll:
		replay = func(runtime.Object) bool { return true }
	case opts.resourceVersion == "" || opts.resourceVersion == "0":
		explicitlyNone := opts.initialEvents != nil // sendInitialEvents=false: start now
		replay = func(runtime.Object) bool { return !explicitlyNone }
	default:
		from, err := strconv.ParseUint(opts.resourceVersion, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", opts.resourceVersion))
		}
		replay = func(o runtime.Object) bool {
			m, err := meta.Accessor(o)
			if err != nil {
				return false
			}
			rv, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
			return err == nil && rv > from
		}
	}
	w := &filteredWatch{served: opts.served, visible: visible, replay: replay, events: make(chan watch.Event), result: make(chan watch.Event), done: make(chan struct{})}
	reg, err := informer.AddEventHandler(w.handler())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("watching the cache: %w", err))
	}
	go func() {
		defer close(w.result)
		defer func() { _ = informer.RemoveEventHandler(reg) }()
		defer w.Stop()
		initialEventsEnd := replayAll && opts.bookmarks
		granted := opts.granted
		if granted == nil {
			granted = func() bool { return true }
		}
		regrant := time.NewTicker(regrantInterval)
		defer regrant.Stop()
		synced := make(chan struct{})
		go func() {
			// HasSynced turns true once the handler has returned for every initial object, so each of
			// their events is already in w.events when this closes.
			cache.WaitForCacheSync(w.done, reg.HasSynced)
			close(synced)
		}()
		for {
			var ev watch.Event
			select {
			case <-ctx.Done():
				return
			case <-w.done:
				return
			case <-regrant.C:
				if !granted() {
					return
				}
				continue
			case ev = <-w.events:
				if !granted() {
					return
				}
			case <-synced:
				synced = nil
				if !initialEventsEnd || !reg.HasSynced() {
					continue
				}
				bookmark := opts.newEmptyBookmark()
				m, _ := meta.Accessor(bookmark) // newEmptyBookmark returns a typed object
				m.SetResourceVersion(informer.LastSyncResourceVersion())
				m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
				ev = watch.Event{Type: watch.Bookmark, Object: bookmark}
			}
			select {
			case w.result <- ev:
			case <-ctx.Done():
				return
			case <-w.done:
				return
			}
		}
	}()
	return w, nil
}

// lastSeen is before, as served, carrying after's resource version.
func lastSeen(before, after runtime.Object, served func(runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	obj, err := served(before)
	if err != nil {
		return nil, err
	}
	if m, err := meta.Accessor(obj); err == nil {
		if a, err := meta.Accessor(after); err == nil {
			m.SetResourceVersion(a.GetResourceVersion())
		}
	}
	return obj, nil
}
