package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// The shape of the scale fixture. Every tenant has namespacesPerTenant namespaces, a User owner (and every
// groupOwnerEvery-th tenant a Group owner too), one pool of nodes and one group of storage classes.
const (
	namespacesPerTenant   = 10
	groupOwnerEvery       = 10
	nodePools             = 20 // of nodesPerPool nodes
	nodesPerPool          = 10 // 200 nodes
	classGroups           = 40 // of classesPerGroup storage classes
	classesPerGroup       = 10 // 400 storage classes
	configMapsPerNS       = 5  // in the measured tenant's namespaces, for the -A list
	fixtureConcurrency    = 32 // parallel writers, like a busy controller
	poolLabel             = "bench.tenant-proxy.dev/pool"
	classGroupLabel       = "bench.tenant-proxy.dev/class-group"
	classTierLabel        = "bench.tenant-proxy.dev/tier"
	capsuleAPIVersion     = "capsule.clastix.io/v1beta2"
	benchProvisioner      = "bench.tenant-proxy.dev/none"
	capsuleOwnerRoles     = "admin"
	capsuleDeleterRole    = "capsule-namespace-deleter"
	capsuleManagedLabel   = "projectcapsule.dev/managed-by"
	capsuleNewTenantLabel = "projectcapsule.dev/tenant"
)

var tenantsGVR = schema.GroupVersionResource{Group: "capsule.clastix.io", Version: "v1beta2", Resource: "tenants"}

// benchTenant is one tenant of the fixture and what its owner may see.
type benchTenant struct {
	index      int
	name       string
	uid        types.UID
	owner      string // a User owner
	group      string // a Group owner, or ""
	namespaces []string
	pool       string // nodes: labelled poolLabel=pool
	classGroup string // storage classes: labelled classGroupLabel=classGroup
}

func tenantName(i int) string { return fmt.Sprintf("t%04d", i) }

func newBenchTenant(i int) *benchTenant {
	t := &benchTenant{
		index:      i,
		name:       tenantName(i),
		owner:      "owner-" + tenantName(i),
		pool:       fmt.Sprintf("pool-%02d", i%nodePools),
		classGroup: fmt.Sprintf("g%02d", i%classGroups),
	}
	if i%groupOwnerEvery == 0 {
		t.group = "group-" + t.name
	}
	for k := range namespacesPerTenant {
		t.namespaces = append(t.namespaces, fmt.Sprintf("%s-ns%02d", t.name, k))
	}
	return t
}

// className is storage class k of a class group.
func className(group string, k int) string { return fmt.Sprintf("sc-%s-%02d", group, k) }

// tenancy writes the fixture with the administrator's credentials, as the Capsule controller would have
// written it (see the functions below for what exactly), without running the controller: that would take
// the better part of an hour at 2,000 namespaces (/work/shared/TESTBED.md).
type tenancy struct {
	admin   kubernetes.Interface
	tenants dynamic.ResourceInterface

	mu   sync.Mutex
	list []*benchTenant
}

func newTenancy(c *testbed.Cluster) (*tenancy, error) {
	// The shared admin client has client-go's default rate limit (5 QPS), far too slow for thousands of objects.
	cfg := rest.CopyConfig(c.Admin)
	cfg.QPS, cfg.Burst = -1, 0
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &tenancy{admin: admin, tenants: dyn.Resource(tenantsGVR)}, nil
}

func (ty *tenancy) count() int {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	return len(ty.list)
}

func (ty *tenancy) tenant(i int) *benchTenant {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	return ty.list[i]
}

// createNodesAndClasses creates the node pools and storage-class groups that tenants select from.
func (ty *tenancy) createNodesAndClasses(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(fixtureConcurrency)
	for p := range nodePools {
		for k := range nodesPerPool {
			g.Go(func() error { return ty.createNode(ctx, fmt.Sprintf("pool-%02d", p), k) })
		}
	}
	for cg := range classGroups {
		for k := range classesPerGroup {
			g.Go(func() error { return ty.createClass(ctx, fmt.Sprintf("g%02d", cg), k) })
		}
	}
	return g.Wait()
}

// createNode creates a Node as a kubelet registers it (labels, addresses, capacity, node info). No kubelet
// ever posts its status, so kube-controller-manager marks it unreachable after its grace period.
func (ty *tenancy) createNode(ctx context.Context, pool string, k int) error {
	name := fmt.Sprintf("node-%s-%02d", pool, k)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			"node.kubernetes.io/instance-type": "bench-8x32", poolLabel: pool,
		}},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.1.%d.%d", len(pool), k+10)},
				{Type: corev1.NodeHostName, Address: name}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
				ContainerRuntimeVersion: "containerd://2.1.0", OSImage: "bench"},
		},
	}
	if _, err := ty.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// createClass creates storage class k of a group. Half the group is tier premium, half standard: a tenant
// allows two by name, three by regular expression and the standard ones by labels (see tenantObject), so its
// allowed set is exactly the group, which an administrator selects with classGroupLabel.
func (ty *tenancy) createClass(ctx context.Context, group string, k int) error {
	tier := "premium"
	if k >= classesPerGroup/2 {
		tier = "standard"
	}
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: className(group, k), Labels: map[string]string{classGroupLabel: group, classTierLabel: tier}},
		Provisioner: benchProvisioner,
		Parameters:  map[string]string{"type": tier},
	}
	if _, err := ty.admin.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create storage class %s: %w", sc.Name, err)
	}
	return nil
}

// grow adds tenants until there are n, each with its namespaces, its owners' RoleBindings and its status.
func (ty *tenancy) grow(ctx context.Context, n int) error {
	from := ty.count()
	created := make([]*benchTenant, n-from)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(fixtureConcurrency)
	for i := from; i < n; i++ {
		g.Go(func() error {
			t := newBenchTenant(i)
			if err := ty.createTenant(ctx, t); err != nil {
				return err
			}
			created[i-from] = t
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	ty.mu.Lock()
	ty.list = append(ty.list, created...)
	ty.mu.Unlock()
	return nil
}

// createTenant writes one tenant the way Capsule v0.13.11 ends up with it: the Tenant; its namespaces
// (created by the owner, which Capsule's namespace webhook labels and gives an ownerReference to the
// Tenant); the owners' RoleBindings in every namespace (the tenant controller's, with a controller
// reference); then the Tenant's status (owners, namespaces, spaces, classes, conditions).
func (ty *tenancy) createTenant(ctx context.Context, t *benchTenant) error {
	created, err := ty.tenants.Create(ctx, tenantObject(t), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", t.name, err)
	}
	t.uid = created.GetUID()
	uids := map[string]types.UID{}
	for _, name := range t.namespaces {
		ns, err := ty.createNamespace(ctx, t, name)
		if err != nil {
			return err
		}
		uids[name] = ns.UID
		if err := ty.createOwnerBinding(ctx, t, name); err != nil {
			return err
		}
	}
	return ty.updateStatus(ctx, created, t, uids)
}

// createNamespace creates a namespace of tenant t as Capsule's namespace webhook leaves it: label
// capsule.clastix.io/tenant and an ownerReference to the Tenant (controllerutil.SetOwnerReference: no
// controller or blockOwnerDeletion flag). The API server adds kubernetes.io/metadata.name.
func (ty *tenancy) createNamespace(ctx context.Context, t *benchTenant, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:            name,
		Labels:          map[string]string{testbed.CapsuleTenantLabel: t.name},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: capsuleAPIVersion, Kind: "Tenant", Name: t.name, UID: t.uid}},
	}}
	created, err := ty.admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	return created, nil
}

// createOwnerBinding is the RoleBinding Capsule's tenant controller keeps in each tenant namespace for the
// owners' ClusterRole admin (it also binds capsule-namespace-deleter, which only matters for deletes).
func (ty *tenancy) createOwnerBinding(ctx context.Context, t *benchTenant, ns string) error {
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: t.owner}}
	if t.group != "" {
		subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: t.group})
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "capsule-" + t.name + "-" + capsuleOwnerRoles,
			Labels: map[string]string{capsuleNewTenantLabel: t.name, capsuleManagedLabel: "controller"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: capsuleAPIVersion, Kind: "Tenant", Name: t.name, UID: t.uid,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: capsuleOwnerRoles},
		Subjects: subjects,
	}
	if _, err := ty.admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create RoleBinding in %s: %w", ns, err)
	}
	return nil
}

// tenantObject is the Tenant of t: owners with proxySettings for nodes and storage classes, a node selector
// (its pool) and allowed storage classes by name, regular expression and labels (its class group).
func tenantObject(t *benchTenant) *unstructured.Unstructured {
	proxySettings := []any{
		map[string]any{"kind": "Nodes", "operations": []any{"List"}},
		map[string]any{"kind": "StorageClasses", "operations": []any{"List"}},
	}
	owners := []any{map[string]any{"kind": "User", "name": t.owner, "proxySettings": proxySettings}}
	if t.group != "" {
		owners = append(owners, map[string]any{"kind": "Group", "name": t.group, "proxySettings": proxySettings})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": capsuleAPIVersion,
		"kind":       "Tenant",
		"metadata":   map[string]any{"name": t.name},
		"spec": map[string]any{
			"owners":       owners,
			"nodeSelector": map[string]any{poolLabel: t.pool},
			"storageClasses": map[string]any{
				"allowed":      []any{className(t.classGroup, 0), className(t.classGroup, 1)},
				"allowedRegex": fmt.Sprintf("^sc-%s-0[2-4]$", t.classGroup),
				"matchLabels":  map[string]any{classGroupLabel: t.classGroup, classTierLabel: "standard"},
			},
		},
	}}
}

// updateStatus writes the status Capsule's tenant controller reports once it has reconciled t.
func (ty *tenancy) updateStatus(ctx context.Context, obj *unstructured.Unstructured, t *benchTenant, uids map[string]types.UID) error {
	now := time.Now().UTC().Format(time.RFC3339)
	condition := func(typ, status, reason, message string) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason, "message": message,
			"lastTransitionTime": now, "observedGeneration": obj.GetGeneration()}
	}
	roles := []any{capsuleOwnerRoles, capsuleDeleterRole}
	owners := []any{map[string]any{"kind": "User", "name": t.owner, "clusterRoles": roles}}
	if t.group != "" {
		owners = append(owners, map[string]any{"kind": "Group", "name": t.group, "clusterRoles": roles})
	}
	var names, spaces, classes []any
	for _, ns := range t.namespaces {
		names = append(names, ns)
		spaces = append(spaces, map[string]any{
			"name": ns, "uid": string(uids[ns]),
			"conditions": []any{condition("Ready", "True", "Succeeded", "reconciled")},
		})
	}
	for k := range classesPerGroup {
		classes = append(classes, className(t.classGroup, k))
	}
	obj.Object["status"] = map[string]any{
		"state":              "Active",
		"size":               int64(len(t.namespaces)),
		"namespaces":         names,
		"spaces":             spaces,
		"owners":             owners,
		"observedGeneration": obj.GetGeneration(),
		"classes":            map[string]any{"storage": classes},
		"conditions": []any{
			condition("Ready", "True", "Succeeded", "reconciled"),
			condition("Cordoned", "False", "Active", "not cordoned"),
		},
	}
	if _, err := ty.tenants.UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of tenant %s: %w", t.name, err)
	}
	return nil
}

// createConfigMaps gives each namespace of t a few ConfigMaps of about 1 KiB, for the -A list.
func (ty *tenancy) createConfigMaps(ctx context.Context, t *benchTenant) error {
	data := map[string]string{"config.yaml": strings.Repeat("key: value\n", 90)}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(fixtureConcurrency)
	for _, ns := range t.namespaces {
		for k := range configMapsPerNS {
			g.Go(func() error {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%02d", k)}, Data: data}
				if _, err := ty.admin.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					return fmt.Errorf("create ConfigMap in %s: %w", ns, err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}
