package clusterscoped

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// callerView is a resource's informer cache as one caller sees it: only the objects one of the caller's
// tenants allows. The tenant filter is applied here, once; the client's selectors can only narrow it.
type callerView struct {
	resource   Resource
	informer   cache.SharedIndexInformer
	selections []tenants.Selection
	// granted reports whether the caller still holds the grant of selections (watches end when not).
	granted func() bool
}

var (
	_ rest.Lister  = (*callerView)(nil)
	_ rest.Getter  = (*callerView)(nil)
	_ rest.Watcher = (*callerView)(nil)
)

func (v *callerView) NewList() runtime.Object { return v.resource.NewList() }

func (v *callerView) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return tableConvertor{resource: v.resource}.ConvertToTable(ctx, obj, opts)
}

func (v *callerView) allows(obj runtime.Object) bool {
	for _, s := range v.selections {
		if s.Selects(obj) {
			return true
		}
	}
	return false
}

// Get answers an object the caller may not see exactly like one that does not exist.
func (v *callerView) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	notFound := apierrors.NewNotFound(v.resource.Resource.GroupResource(), name)
	item, exists, err := v.informer.GetStore().GetByKey(name)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading %s from the cache: %w", v.resource.Resource.Resource, err))
	}
	if !exists {
		return nil, notFound
	}
	obj, ok := item.(runtime.Object)
	if !ok {
		return nil, notFound
	}
	if !v.allows(obj) {
		return nil, notFound
	}
	// The encoders set the kind on what they encode; the cached object is shared by every request.
	served, err := v.resource.served(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return served, nil
}

// Watch follows the visible objects, including those that enter or leave the set by a change of labels.
func (v *callerView) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	visible := func(obj runtime.Object) bool {
		m, err := meta.Accessor(obj)
		return err == nil && v.allows(obj) && selects(opts, m)
	}
	return startWatch(ctx, v.informer, visible, watchOptions{
		served:          v.resource.served,
		resourceVersion: opts.ResourceVersion,
		initialEvents:   opts.SendInitialEvents,
		bookmarks:       opts.AllowWatchBookmarks,
		granted:         v.granted,
		newEmptyBookmark: func() runtime.Object {
			if v.resource.Unstructured {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(v.resource.Kind)
				return u
			}
			obj, _ := scheme.New(v.resource.Kind) // every typed served kind is in the scheme
			return obj
		},
	})
}

// List pages through the visible objects in name order, as etcd would list them. The cache answers at its
// current state, as kube-apiserver's watch cache does for resourceVersion="0".
func (v *callerView) List(_ context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	rv, after := v.informer.LastSyncResourceVersion(), ""
	if opts.Continue != "" {
		token, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		rv, after = token.ResourceVersion, token.Start
	}
	var visible []runtime.Object
	for _, item := range v.informer.GetStore().List() {
		obj, ok := item.(runtime.Object)
		if !ok {
			continue
		}
		m, err := meta.Accessor(obj)
		if err != nil || m.GetName() <= after || !v.allows(obj) || !selects(opts, m) {
			continue
		}
		if _, shared := obj.(runtime.Unstructured); shared || v.resource.Served != nil {
			// SetList copies typed items, but an unstructured item's copy shares the cached object's maps,
			// and a resource with Served is cached in another form than it is served.
			if obj, err = v.resource.served(obj); err != nil {
				return nil, apierrors.NewInternalError(err)
			}
		}
		visible = append(visible, obj)
	}
	slices.SortFunc(visible, func(a, b runtime.Object) int { return strings.Compare(name(a), name(b)) })

	list := v.resource.NewList()
	listMeta, err := meta.ListAccessor(list)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building %s list: %w", v.resource.Resource.Resource, err))
	}
	listMeta.SetResourceVersion(rv)
	if opts.Limit > 0 && int64(len(visible)) > opts.Limit {
		remaining := int64(len(visible)) - opts.Limit
		visible = visible[:opts.Limit]
		listMeta.SetContinue(encodeContinue(rv, name(visible[len(visible)-1])))
		listMeta.SetRemainingItemCount(&remaining)
	}
	// SetList copies the items into the typed list, so the shared cached objects are not handed out.
	if err := meta.SetList(list, visible); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building %s list: %w", v.resource.Resource.Resource, err))
	}
	return list, nil
}

func name(obj runtime.Object) string {
	m, _ := meta.Accessor(obj) // only objects with metadata are listed
	return m.GetName()
}

// selects applies the client's label and field selection to an object the tenant filter admitted.
func selects(opts *metainternalversion.ListOptions, m metav1.Object) bool {
	if opts.LabelSelector != nil && !opts.LabelSelector.Matches(labels.Set(m.GetLabels())) {
		return false
	}
	return opts.FieldSelector == nil || opts.FieldSelector.Matches(fields.Set{"metadata.name": m.GetName()})
}
