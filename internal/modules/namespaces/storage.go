package namespaces

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// resourceVersionWait bounds how long a request for a resource version the index has not reached yet
// waits, as kube-apiserver's watch cache does, before answering "too large resource version".
const resourceVersionWait = 3 * time.Second

// callerView is the namespaces storage as one caller sees it: only the namespaces of the tenants it owns.
// The tenant filter is applied here, once, and the client's selectors can only narrow it.
type callerView struct {
	index *tenants.Index
	user  user.Info
}

var (
	_ rest.Lister  = (*callerView)(nil)
	_ rest.Getter  = (*callerView)(nil)
	_ rest.Watcher = (*callerView)(nil)
)

func (v *callerView) NewList() runtime.Object { return &corev1.NamespaceList{} }

func (v *callerView) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return tableConvertor{}.ConvertToTable(ctx, obj, opts)
}

// Get answers a namespace the caller may not see exactly like one that does not exist.
func (v *callerView) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	if err := v.awaitResourceVersion(ctx, opts.ResourceVersion, ""); err != nil {
		return nil, err
	}
	ns, ok := v.index.Namespace(v.user, name)
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	return shallowCopy(ns), nil
}

// List pages through the caller's namespaces in name order, as etcd would list them.
func (v *callerView) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	after, listRV := "", uint64(0)
	if opts.Continue != "" {
		token, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		after, listRV = token.Start, token.ResourceVersion
	} else if err := v.awaitResourceVersion(ctx, opts.ResourceVersion, opts.ResourceVersionMatch); err != nil {
		return nil, err
	}
	items, rv := v.index.Namespaces(v.user)
	if opts.Continue == "" {
		listRV = rv
	}
	match := selects(opts)
	list := &corev1.NamespaceList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(listRV, 10)}}
	i := sort.Search(len(items), func(i int) bool { return items[i].Name > after })
	for ; i < len(items); i++ {
		if !match(items[i]) {
			continue
		}
		if opts.Limit > 0 && int64(len(list.Items)) == opts.Limit {
			list.Continue = encodeContinue(listRV, list.Items[len(list.Items)-1].Name)
			if selectsEverything(opts) {
				remaining := int64(len(items) - i)
				list.RemainingItemCount = &remaining
			}
			break
		}
		list.Items = append(list.Items, *items[i])
	}
	return list, nil
}

// Watch follows the caller's namespaces, including those that join or leave its tenants meanwhile.
func (v *callerView) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	initialEvents := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	var from *uint64
	switch {
	case initialEvents:
		if err := v.awaitResourceVersion(ctx, opts.ResourceVersion, metav1.ResourceVersionMatchNotOlderThan); err != nil {
			return nil, err
		}
	case opts.ResourceVersion == "" || opts.ResourceVersion == "0":
		if opts.SendInitialEvents != nil { // explicitly no initial events: start now
			now := v.index.ResourceVersion()
			from = &now
		}
	default:
		if err := v.awaitResourceVersion(ctx, opts.ResourceVersion, metav1.ResourceVersionMatchNotOlderThan); err != nil {
			return nil, err
		}
		n, _ := strconv.ParseUint(opts.ResourceVersion, 10, 64) // validated by awaitResourceVersion
		from = &n
	}
	follower, known, err := v.index.Follow(v.user, from)
	if errors.Is(err, tenants.ErrResourceVersionTooOld) {
		return nil, apierrors.NewResourceExpired(err.Error())
	} else if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	match := selects(opts)
	for name, ns := range known {
		if !match(ns) {
			delete(known, name)
		}
	}
	// The API server ends initial events with a bookmark only for clients that accept bookmarks; legacy
	// watches (kubectl get -w) are defaulted to initial events too, and get none.
	w := newTenantWatch(follower, known, match, opts.AllowWatchBookmarks, initialEvents)
	go w.run(ctx)
	return w, nil
}

// awaitResourceVersion waits until the index has reached rv; "" and "0" mean any state will do.
func (v *callerView) awaitResourceVersion(ctx context.Context, rv string, match metav1.ResourceVersionMatch) error {
	if rv == "" || rv == "0" {
		return nil
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
	}
	waitCtx, cancel := context.WithTimeout(ctx, resourceVersionWait)
	defer cancel()
	if err := v.index.WaitForResourceVersion(waitCtx, n); err != nil {
		if ctx.Err() != nil {
			return apierrors.NewTimeoutError("request ended while waiting for the resource version", 1)
		}
		return storage.NewTooLargeResourceVersionError(n, v.index.ResourceVersion(), 1)
	}
	// The index keeps only the current state: an exact older version has been compacted away, as far as
	// this server is concerned.
	if current := v.index.ResourceVersion(); match == metav1.ResourceVersionMatchExact && current != n {
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", n, current))
	}
	return nil
}

// selects is the client's label and field selection. It runs on namespaces the tenant filter already
// admitted, so it can only narrow the result.
func selects(opts *metainternalversion.ListOptions) func(*corev1.Namespace) bool {
	lbl, fld := labels.Everything(), fields.Everything()
	if opts.LabelSelector != nil {
		lbl = opts.LabelSelector
	}
	if opts.FieldSelector != nil {
		fld = opts.FieldSelector
	}
	return func(ns *corev1.Namespace) bool {
		return lbl.Matches(labels.Set(ns.Labels)) &&
			fld.Matches(fields.Set{"metadata.name": ns.Name, "status.phase": string(ns.Status.Phase)})
	}
}

func selectsEverything(opts *metainternalversion.ListOptions) bool {
	return (opts.LabelSelector == nil || opts.LabelSelector.Empty()) && (opts.FieldSelector == nil || opts.FieldSelector.Empty())
}

// shallowCopy gives the encoders an object of their own: they set its kind while encoding, and the cached
// object is shared by every request.
func shallowCopy(ns *corev1.Namespace) *corev1.Namespace {
	c := *ns
	return &c
}
