package clusterscoped

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// Resource describes one cluster-scoped resource the module filters: where it is served, which
// proxySettings kind grants reading it, how to inform about it and how kubectl's table shows it.
type Resource struct {
	Kind     schema.GroupVersionKind
	Resource schema.GroupVersionResource
	// Grant is the owners[].proxySettings kind that lets a tenant owner list it.
	Grant    tenants.Kind
	NewList  func() runtime.Object
	Informer func(informers.SharedInformerFactory) cache.SharedIndexInformer
	// IndexInformer, when set instead of Informer, is an informer the tenant index already runs.
	IndexInformer func(*tenants.Index) cache.SharedIndexInformer
	// Unstructured marks a custom resource, served as unstructured objects.
	Unstructured bool
	// Served, when set, builds the object served for a cached one, which the cache keeps in another form;
	// otherwise a deep copy is served.
	Served  func(cached runtime.Object) (runtime.Object, error)
	Columns []metav1.TableColumnDefinition
	// Columns and Cells follow the Name column, in kubectl's order.
	Cells func(runtime.Object) []any
}

// served is what a response gets for a cached object: never the cached object, which every request shares.
func (r Resource) served(cached runtime.Object) (runtime.Object, error) {
	if r.Served != nil {
		obj, err := r.Served(cached)
		if err != nil {
			return nil, fmt.Errorf("serving cached %s: %w", r.Resource.Resource, err)
		}
		return obj, nil
	}
	return cached.DeepCopyObject(), nil
}

func column(name, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "string", Description: description}
}

// StorageClasses are storage.k8s.io/v1 storageclasses.
var StorageClasses = Resource{
	Kind:     storagev1.SchemeGroupVersion.WithKind("StorageClass"),
	Resource: storagev1.SchemeGroupVersion.WithResource("storageclasses"),
	Grant:    tenants.StorageClasses,
	NewList:  func() runtime.Object { return &storagev1.StorageClassList{} },
	Informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Storage().V1().StorageClasses().Informer()
	},
	Columns: []metav1.TableColumnDefinition{
		column("Provisioner", "Indicates the type of the provisioner."),
		column("ReclaimPolicy", "Indicates the type of the reclaim policy."),
		column("VolumeBindingMode", "Indicates how volumes are bound."),
		{Name: "AllowVolumeExpansion", Type: "boolean", Description: "Indicates whether volumes can be expanded."},
		ageColumn,
	},
	Cells: func(obj runtime.Object) []any {
		sc := obj.(*storagev1.StorageClass)
		reclaim, binding := string(corev1.PersistentVolumeReclaimDelete), string(storagev1.VolumeBindingImmediate)
		if sc.ReclaimPolicy != nil {
			reclaim = string(*sc.ReclaimPolicy)
		}
		if sc.VolumeBindingMode != nil {
			binding = string(*sc.VolumeBindingMode)
		}
		expansion := sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
		return []any{sc.Provisioner, reclaim, binding, expansion, age(sc)}
	},
}

// IngressClasses are networking.k8s.io/v1 ingressclasses.
var IngressClasses = Resource{
	Kind:     networkingv1.SchemeGroupVersion.WithKind("IngressClass"),
	Resource: networkingv1.SchemeGroupVersion.WithResource("ingressclasses"),
	Grant:    tenants.IngressClasses,
	NewList:  func() runtime.Object { return &networkingv1.IngressClassList{} },
	Informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Networking().V1().IngressClasses().Informer()
	},
	Columns: []metav1.TableColumnDefinition{
		column("Controller", "Controller that is responsible for handling this class"),
		column("Parameters", "A reference to a resource with additional parameters"),
		ageColumn,
	},
	Cells: func(obj runtime.Object) []any {
		ic := obj.(*networkingv1.IngressClass)
		params := "<none>"
		if p := ic.Spec.Parameters; p != nil {
			group := ""
			if p.APIGroup != nil {
				group = "." + *p.APIGroup
			}
			params = fmt.Sprintf("%s%s/%s", p.Kind, group, p.Name)
		}
		return []any{ic.Spec.Controller, params, age(ic)}
	},
}

// PriorityClasses are scheduling.k8s.io/v1 priorityclasses.
var PriorityClasses = Resource{
	Kind:     schedulingv1.SchemeGroupVersion.WithKind("PriorityClass"),
	Resource: schedulingv1.SchemeGroupVersion.WithResource("priorityclasses"),
	Grant:    tenants.PriorityClasses,
	NewList:  func() runtime.Object { return &schedulingv1.PriorityClassList{} },
	Informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Scheduling().V1().PriorityClasses().Informer()
	},
	Columns: []metav1.TableColumnDefinition{
		{Name: "Value", Type: "integer", Description: "The value of this priority class."},
		{Name: "Global-Default", Type: "boolean", Description: "Whether this is the global default priority class."},
		ageColumn,
		column("PreemptionPolicy", "The preemption policy of this priority class."),
	},
	Cells: func(obj runtime.Object) []any {
		pc := obj.(*schedulingv1.PriorityClass)
		policy := string(corev1.PreemptLowerPriority)
		if pc.PreemptionPolicy != nil {
			policy = string(*pc.PreemptionPolicy)
		}
		return []any{int64(pc.Value), pc.GlobalDefault, age(pc), policy}
	},
}

// RuntimeClasses are node.k8s.io/v1 runtimeclasses.
var RuntimeClasses = Resource{
	Kind:     nodev1.SchemeGroupVersion.WithKind("RuntimeClass"),
	Resource: nodev1.SchemeGroupVersion.WithResource("runtimeclasses"),
	Grant:    tenants.RuntimeClasses,
	NewList:  func() runtime.Object { return &nodev1.RuntimeClassList{} },
	Informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Node().V1().RuntimeClasses().Informer()
	},
	Columns: []metav1.TableColumnDefinition{column("Handler", "Handler is the name of the CRI handler"), ageColumn},
	Cells: func(obj runtime.Object) []any {
		rc := obj.(*nodev1.RuntimeClass)
		return []any{rc.Handler, age(rc)}
	},
}

// Nodes are core/v1 nodes.
var Nodes = Resource{
	Kind:     corev1.SchemeGroupVersion.WithKind("Node"),
	Resource: corev1.SchemeGroupVersion.WithResource("nodes"),
	Grant:    tenants.Nodes,
	NewList:  func() runtime.Object { return &corev1.NodeList{} },
	Informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().Nodes().Informer()
	},
	Columns: []metav1.TableColumnDefinition{
		column("Status", "The status of the node"),
		column("Roles", "The roles of the node"),
		ageColumn,
		column("Version", "Kubelet Version reported by the node."),
	},
	Cells: func(obj runtime.Object) []any {
		n := obj.(*corev1.Node)
		return []any{nodeStatus(n), nodeRoles(n), age(n), n.Status.NodeInfo.KubeletVersion}
	},
}

func nodeStatus(n *corev1.Node) string {
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				status = "Ready"
			} else {
				status = "NotReady"
			}
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

func nodeRoles(n *corev1.Node) string {
	var roles []string
	for k := range n.Labels {
		if role, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && role != "" {
			roles = append(roles, role)
		}
	}
	if len(roles) == 0 {
		return "<none>"
	}
	slices.Sort(roles)
	return strings.Join(roles, ",")
}

// PersistentVolumes are core/v1 persistentvolumes. A tenant's volumes are those bound to claims in its
// namespaces (spec.claimRef.namespace), with membership from the tenant index, never from a label on the
// volume: see tenants.volumeSelection.
var PersistentVolumes = Resource{
	Kind:     corev1.SchemeGroupVersion.WithKind("PersistentVolume"),
	Resource: corev1.SchemeGroupVersion.WithResource("persistentvolumes"),
	Grant:    tenants.PersistentVolumes,
	NewList:  func() runtime.Object { return &corev1.PersistentVolumeList{} },
	Informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().PersistentVolumes().Informer()
	},
	Columns: []metav1.TableColumnDefinition{
		column("Capacity", corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"]),
		column("Access Modes", corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"]),
		column("Reclaim Policy", corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"]),
		column("Status", corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"]),
		column("Claim", corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"]),
		column("StorageClass", "StorageClass of the pv"),
		column("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
		column("Reason", corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"]),
		ageColumn,
		{Name: "VolumeMode", Type: "string", Priority: 1, Description: corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"]},
	},
	Cells: func(obj runtime.Object) []any {
		pv := obj.(*corev1.PersistentVolume)
		claim := ""
		if ref := pv.Spec.ClaimRef; ref != nil {
			claim = ref.Namespace + "/" + ref.Name
		}
		capacity := pv.Spec.Capacity[corev1.ResourceStorage]
		phase := string(pv.Status.Phase)
		if pv.DeletionTimestamp != nil {
			phase = "Terminating"
		}
		class := pv.Spec.StorageClassName
		if beta, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
			class = beta
		}
		attributesClass, volumeMode := "<unset>", "<unset>"
		if pv.Spec.VolumeAttributesClassName != nil {
			attributesClass = *pv.Spec.VolumeAttributesClassName
		}
		if pv.Spec.VolumeMode != nil {
			volumeMode = string(*pv.Spec.VolumeMode)
		}
		return []any{capacity.String(), accessModes(pv.Spec.AccessModes), string(pv.Spec.PersistentVolumeReclaimPolicy),
			phase, claim, class, attributesClass, pv.Status.Reason, age(pv), volumeMode}
	},
}

// accessModes abbreviates access modes in kubectl's fixed order.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"}, {corev1.ReadOnlyMany, "ROX"}, {corev1.ReadWriteMany, "RWX"}, {corev1.ReadWriteOncePod, "RWOP"},
	} {
		if slices.Contains(modes, m.mode) {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}
