package tenants

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options tunes the index; the zero value is what a default Capsule installation needs.
type Options struct {
	// ConfigurationName is the CapsuleConfiguration to read (Capsule's --configuration-name).
	ConfigurationName string
	// HistorySize is how many recent namespace changes are kept for watches that resume from a list.
	HistorySize int
}

// sources are the informers that feed the index.
type sources struct {
	namespaces     cache.SharedIndexInformer
	tenants        cache.SharedIndexInformer
	configurations cache.SharedIndexInformer
}

// NewForConfig builds an index that reads with the proxy's own identity from cfg.
func NewForConfig(cfg *rest.Config, opts Options) (*Index, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("tenant index client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("tenant index dynamic client: %w", err)
	}
	return New(client, dyn, opts), nil
}

// New builds an index over the given clients. Nothing is read until Start.
func New(client kubernetes.Interface, dyn dynamic.Interface, opts Options) *Index {
	ix := newIndex(opts.ConfigurationName, opts.HistorySize)
	byName := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ix.configurationName).String()
	}
	ix.sources = &sources{
		namespaces:     informers.NewSharedInformerFactory(client, 0).Core().V1().Namespaces().Informer(),
		tenants:        capsuleInformer(dyn, TenantsResource, nil),
		configurations: capsuleInformer(dyn, CapsuleConfigurationsResource, byName),
	}
	return ix
}

// TenantInformer is the informer of Capsule Tenants that feeds the index, for modules that serve the Tenant
// objects themselves; nil for an index without informers. Its objects are shared and have no
// managedFields. It runs once the index is started.
func (ix *Index) TenantInformer() cache.SharedIndexInformer {
	if ix.sources == nil {
		return nil
	}
	return ix.sources.tenants
}

// capsuleRecheck is how often the index looks again for Capsule's resources when they are not served.
const capsuleRecheck = time.Minute

// capsuleInformer informs about a Capsule resource. A cluster without Capsule has no tenants and no Capsule
// users, so everyone keeps plain RBAC: a resource that is not served (404) lists as empty and is looked
// for again every capsuleRecheck. Any other error, such as missing RBAC, keeps the index unsynced.
func capsuleInformer(dyn dynamic.Interface, gvr schema.GroupVersionResource, tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	resource := dyn.Resource(gvr)
	var logged atomic.Bool
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			if tweak != nil {
				tweak(&opts)
			}
			list, err := resource.List(ctx, opts)
			if apierrors.IsNotFound(err) {
				if !logged.Swap(true) {
					klog.InfoS("Capsule resource not served; treating it as empty", "resource", gvr.String())
				}
				return &unstructured.UnstructuredList{}, nil
			}
			logged.Store(false)
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if tweak != nil {
				tweak(&opts)
			}
			w, err := resource.Watch(ctx, opts)
			// A watch-list request must fail so that the informer falls back to the list above.
			if apierrors.IsNotFound(err) && opts.SendInitialEvents == nil {
				idle := watch.NewFake() // ends after capsuleRecheck, and the informer lists again
				time.AfterFunc(capsuleRecheck, idle.Stop)
				return idle, nil
			}
			return w, err
		},
	}
	return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, dyn), &unstructured.Unstructured{},
		cache.SharedIndexInformerOptions{ObjectDescription: gvr.String()})
}

// Start implements modules.Starter: it starts the informers and returns; the index is Synced once each
// has delivered its initial list. Several modules share one index, so only the first call starts it.
func (ix *Index) Start(ctx context.Context) error {
	ix.startOnce.Do(func() { ix.startErr = ix.start(ctx) })
	return ix.startErr
}

func (ix *Index) start(ctx context.Context) error {
	s := ix.sources
	if s == nil {
		return fmt.Errorf("tenant index has no informers")
	}
	// Managed fields are most of a namespace's memory (BenchmarkIndexMemory: 2.1 KB a namespace with them,
	// 1.2 KB without) and nothing the proxy decides or serves needs them: namespaces and Tenants are served
	// without them, as kubectl shows objects unless asked for --show-managed-fields.
	// Tenants are kept as StoredTenant, JSON and a little metadata, instead of unstructured maps.
	for _, t := range []struct {
		informer  cache.SharedIndexInformer
		transform cache.TransformFunc
	}{{s.namespaces, dropManagedFields}, {s.tenants, storeTenant}, {s.configurations, dropManagedFields}} {
		if err := t.informer.SetTransform(t.transform); err != nil {
			return fmt.Errorf("tenant index transform: %w", err)
		}
	}
	handlers := []struct {
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{s.namespaces, ix.namespaceHandler()},
		{s.tenants, ix.tenantHandler()},
		{s.configurations, ix.configurationHandler()},
	}
	var synced []cache.InformerSynced
	for _, h := range handlers {
		reg, err := h.informer.AddEventHandler(h.handler)
		if err != nil {
			return fmt.Errorf("tenant index handler: %w", err)
		}
		synced = append(synced, reg.HasSynced)
	}
	for _, h := range handlers {
		go h.informer.RunWithContext(ctx)
	}
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			ix.markSynced()
			klog.InfoS("Tenant index synced", "namespaces", len(ix.sources.namespaces.GetStore().ListKeys()), "tenants", len(ix.sources.tenants.GetStore().ListKeys()))
		}
	}()
	return nil
}

func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func (ix *Index) namespaceHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if ns, ok := obj.(*corev1.Namespace); ok {
				ix.setNamespace(ns, !initial)
			}
		},
		UpdateFunc: func(_, obj any) {
			if ns, ok := obj.(*corev1.Namespace); ok {
				ix.setNamespace(ns, true)
			}
		},
		DeleteFunc: func(obj any) {
			if ns, ok := finalState(obj).(*corev1.Namespace); ok {
				ix.removeNamespace(ns)
			}
		},
	}
}

func (ix *Index) tenantHandler() cache.ResourceEventHandler {
	set := func(obj any, live bool) {
		stored, ok := obj.(*StoredTenant)
		if !ok {
			return
		}
		t, err := decodeTenant(stored)
		if err != nil {
			// Fail closed: a tenant the proxy cannot read grants nothing.
			klog.ErrorS(err, "Ignoring unreadable tenant", "tenant", stored.Name)
			ix.removeTenant(stored.UID, parseResourceVersion(stored.ResourceVersion), live)
			return
		}
		ix.setTenant(t, live)
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { set(obj, !initial) },
		UpdateFunc: func(_, obj any) { set(obj, true) },
		DeleteFunc: func(obj any) {
			if stored, ok := finalState(obj).(*StoredTenant); ok {
				ix.removeTenant(stored.UID, parseResourceVersion(stored.ResourceVersion), true)
			}
		},
	}
}

func (ix *Index) configurationHandler() cache.ResourceEventHandler {
	set := func(obj any, live bool) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok || u.GetName() != ix.configurationName {
			return
		}
		users, err := decodeConfiguration(u)
		if err != nil {
			klog.ErrorS(err, "Ignoring unreadable CapsuleConfiguration; nobody is a Capsule user", "name", u.GetName())
			users = nil
		}
		ix.setUsers(users, parseResourceVersion(u.GetResourceVersion()), live)
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, initial bool) { set(obj, !initial) },
		UpdateFunc: func(_, obj any) { set(obj, true) },
		DeleteFunc: func(obj any) {
			if u, ok := finalState(obj).(*unstructured.Unstructured); ok && u.GetName() == ix.configurationName {
				ix.setUsers(nil, parseResourceVersion(u.GetResourceVersion()), true)
			}
		},
	}
}

// finalState unwraps the tombstone an informer delivers when it missed a deletion.
func finalState(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
