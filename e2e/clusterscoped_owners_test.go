package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// ownersTenants are two tenants whose owners are of every kind Capsule has, each granted its own kinds:
// e2e-csx-red is owned by the user csx-uma (List of all six proxySettings kinds) and by the ServiceAccount
// csx-e2e/red-robot (List of ingress and priority classes only); e2e-csx-blue by the group csx-blue-owners
// (five kinds, and ingress classes by the older enable-ingressclass-listing annotation), of which csx-wes is
// a member. Both let their owners list the Tenant itself. Each allowed
// class list uses another of Capsule's forms: names, expressions, label selectors (matchLabels and
// matchExpressions).
const ownersTenants = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-csx-red
  annotations:
    capsule.clastix.io/enable-tenant-listing: "true"
spec:
  owners:
  - kind: User
    name: csx-uma
    proxySettings:
    - kind: Nodes
      operations: [List]
    - kind: StorageClasses
      operations: [List]
    - kind: IngressClasses
      operations: [List]
    - kind: PriorityClasses
      operations: [List]
    - kind: RuntimeClasses
      operations: [List]
    - kind: PersistentVolumes
      operations: [List]
  - kind: ServiceAccount
    name: system:serviceaccount:csx-e2e:red-robot
    proxySettings:
    - kind: IngressClasses
      operations: [List]
    - kind: PriorityClasses
      operations: [List]
  nodeSelector:
    csx-e2e-pool: red
  storageClasses:
    allowed: [csx-e2e-sc-red]
  ingressOptions:
    allowedClasses:
      allowed: [csx-e2e-ic-red]
      allowedRegex: "^csx-e2e-ic-rx-"
  priorityClasses:
    allowed: [csx-e2e-pc-named]
    matchLabels:
      csx-e2e-tier: red
  runtimeClasses:
    allowedRegex: "^csx-e2e-rc-r"
    matchExpressions:
    - key: csx-e2e-tier
      operator: In
      values: [crimson]
---
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-csx-blue
  annotations:
    capsule.clastix.io/enable-tenant-listing: "true"
    capsule.clastix.io/enable-ingressclass-listing: "true"
spec:
  owners:
  - kind: Group
    name: csx-blue-owners
    proxySettings:
    - kind: Nodes
      operations: [List]
    - kind: StorageClasses
      operations: [List]
    - kind: PriorityClasses
      operations: [List]
    - kind: RuntimeClasses
      operations: [List]
    - kind: PersistentVolumes
      operations: [List]
  nodeSelector:
    csx-e2e-pool: blue
  storageClasses:
    matchLabels:
      csx-e2e-tier: blue
  ingressOptions:
    allowedClasses:
      allowed: [csx-e2e-ic-blue]
  priorityClasses:
    allowedRegex: "^csx-e2e-pc-blue"
  runtimeClasses:
    matchLabels:
      csx-e2e-tier: blue
---
apiVersion: capsule.clastix.io/v1beta2
kind: TenantOwner
metadata:
  name: e2e-csx-red-robot
  labels:
    projectcapsule.dev/tenant: e2e-csx-red
spec:
  kind: ServiceAccount
  name: system:serviceaccount:csx-e2e:red-robot
`

const csxRobot = "system:serviceaccount:csx-e2e:red-robot"

// csxKind is one kind a tenant owner reads through the proxy: how kubectl names it, where the API serves it,
// and how a protobuf client lists it.
type csxKind struct {
	resource string // kubectl's name
	path     string // the collection's API path
	// protobufNames lists the collection with client-go speaking application/vnd.kubernetes.protobuf.
	protobufNames func(ctx context.Context, cfg *rest.Config) ([]string, error)
}

func typedProtobuf(list func(ctx context.Context, c kubernetes.Interface) ([]string, error)) func(context.Context, *rest.Config) ([]string, error) {
	return func(ctx context.Context, cfg *rest.Config) ([]string, error) {
		cfg = rest.CopyConfig(cfg)
		cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeProtobuf, runtime.ContentTypeProtobuf
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		return list(ctx, client)
	}
}

func itemNames[T any](items []T, name func(*T) string) []string {
	names := []string{}
	for i := range items {
		names = append(names, name(&items[i]))
	}
	return names
}

// metadataProtobufNames lists a custom resource in the only protobuf form kube-apiserver offers for one, as
// client-go's metadata client asks for it: PartialObjectMetadataList, with no JSON fallback.
func metadataProtobufNames(path string) func(context.Context, *rest.Config) ([]string, error) {
	return func(ctx context.Context, cfg *rest.Config) ([]string, error) {
		status, contentType, body := rawGet(ctx, cfg, path, "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
		if status != http.StatusOK || !strings.HasPrefix(contentType, runtime.ContentTypeProtobuf) {
			return nil, fmt.Errorf("GET %s: %d %s: %q", path, status, contentType, body)
		}
		scheme := runtime.NewScheme()
		if err := metav1.AddMetaToScheme(scheme); err != nil {
			return nil, err
		}
		var list metav1.PartialObjectMetadataList
		if _, _, err := protobuf.NewSerializer(scheme, scheme).Decode(body, nil, &list); err != nil {
			return nil, fmt.Errorf("decoding the protobuf list: %w", err)
		}
		return itemNames(list.Items, func(o *metav1.PartialObjectMetadata) string { return o.Name }), nil
	}
}

var csxKinds = map[string]csxKind{
	"namespaces": {"namespaces", "/api/v1/namespaces", typedProtobuf(func(ctx context.Context, c kubernetes.Interface) ([]string, error) {
		l, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return itemNames(l.Items, func(o *corev1.Namespace) string { return o.Name }), nil
	})},
	"nodes": {"nodes", "/api/v1/nodes", typedProtobuf(func(ctx context.Context, c kubernetes.Interface) ([]string, error) {
		l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return itemNames(l.Items, func(o *corev1.Node) string { return o.Name }), nil
	})},
	"storageclasses": {"storageclasses", "/apis/storage.k8s.io/v1/storageclasses", typedProtobuf(func(ctx context.Context, c kubernetes.Interface) ([]string, error) {
		l, err := c.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return itemNames(l.Items, func(o *storagev1.StorageClass) string { return o.Name }), nil
	})},
	"ingressclasses": {"ingressclasses", "/apis/networking.k8s.io/v1/ingressclasses", typedProtobuf(func(ctx context.Context, c kubernetes.Interface) ([]string, error) {
		l, err := c.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return itemNames(l.Items, func(o *networkingv1.IngressClass) string { return o.Name }), nil
	})},
	"priorityclasses": {"priorityclasses", "/apis/scheduling.k8s.io/v1/priorityclasses", typedProtobuf(func(ctx context.Context, c kubernetes.Interface) ([]string, error) {
		l, err := c.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return itemNames(l.Items, func(o *schedulingv1.PriorityClass) string { return o.Name }), nil
	})},
	"runtimeclasses": {"runtimeclasses", "/apis/node.k8s.io/v1/runtimeclasses", typedProtobuf(func(ctx context.Context, c kubernetes.Interface) ([]string, error) {
		l, err := c.NodeV1().RuntimeClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return itemNames(l.Items, func(o *nodev1.RuntimeClass) string { return o.Name }), nil
	})},
	"pv": {"pv", "/api/v1/persistentvolumes", typedProtobuf(func(ctx context.Context, c kubernetes.Interface) ([]string, error) {
		l, err := c.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return itemNames(l.Items, func(o *corev1.PersistentVolume) string { return o.Name }), nil
	})},
	"tenants": {"tenants", "/apis/capsule.clastix.io/v1beta2/tenants", metadataProtobufNames("/apis/capsule.clastix.io/v1beta2/tenants")},
}

// csxOrder is every kind of csxKinds, in the order tests walk them.
var csxOrder = []string{"namespaces", "nodes", "storageclasses", "ingressclasses", "priorityclasses", "runtimeclasses", "pv", "tenants"}

// csxAllowed is what each tenant's owners may see, kind by kind; csxOther are objects of no tenant.
var (
	csxRed = map[string][]string{
		"namespaces":      {"csx-e2e-red-1"},
		"nodes":           {"csx-e2e-node-red"},
		"storageclasses":  {"csx-e2e-sc-red"},
		"ingressclasses":  {"csx-e2e-ic-red", "csx-e2e-ic-rx-1"},
		"priorityclasses": {"csx-e2e-pc-named", "csx-e2e-pc-red"},
		"runtimeclasses":  {"csx-e2e-rc-crimson", "csx-e2e-rc-ruby"},
		"pv":              {"csx-e2e-pv-red"},
		"tenants":         {"e2e-csx-red"},
	}
	csxBlue = map[string][]string{
		"namespaces":      {"csx-e2e-blue-1"},
		"nodes":           {"csx-e2e-node-blue"},
		"storageclasses":  {"csx-e2e-sc-blue"},
		"ingressclasses":  {"csx-e2e-ic-blue"},
		"priorityclasses": {"csx-e2e-pc-blue"},
		"runtimeclasses":  {"csx-e2e-rc-blue"},
		"pv":              {"csx-e2e-pv-blue"},
		"tenants":         {"e2e-csx-blue"},
	}
	csxOther = map[string][]string{
		"nodes":           {"csx-e2e-node-green"},
		"storageclasses":  {"csx-e2e-sc-green"},
		"ingressclasses":  {"csx-e2e-ic-green"},
		"priorityclasses": {"csx-e2e-pc-green"},
		"runtimeclasses":  {"csx-e2e-rc-green"},
		"pv":              {"csx-e2e-pv-free"},
	}
)

// csxLabels are the labels of the test's cluster-scoped objects; an object not listed has none.
var csxLabels = map[string]map[string]string{
	"csx-e2e-node-red":   {"csx-e2e-pool": "red", "csx-e2e-tier": "red"},
	"csx-e2e-node-blue":  {"csx-e2e-pool": "blue", "csx-e2e-tier": "blue"},
	"csx-e2e-node-green": {"csx-e2e-pool": "green", "csx-e2e-tier": "green"},
	"csx-e2e-sc-blue":    {"csx-e2e-tier": "blue"},
	"csx-e2e-sc-green":   {"csx-e2e-tier": "green"},
	"csx-e2e-ic-red":     {"csx-e2e-tier": "red"},
	"csx-e2e-ic-blue":    {"csx-e2e-tier": "blue"},
	"csx-e2e-ic-green":   {"csx-e2e-tier": "green"},
	"csx-e2e-pc-red":     {"csx-e2e-tier": "red"},
	"csx-e2e-pc-blue":    {"csx-e2e-tier": "blue"},
	"csx-e2e-pc-green":   {"csx-e2e-tier": "green"},
	"csx-e2e-rc-ruby":    {"csx-e2e-tier": "green"}, // allowed by its name alone
	"csx-e2e-rc-crimson": {"csx-e2e-tier": "crimson"},
	"csx-e2e-rc-blue":    {"csx-e2e-tier": "blue"},
	"csx-e2e-rc-green":   {"csx-e2e-tier": "green"},
	"csx-e2e-pv-red":     {"csx-e2e-tier": "red"},
	"csx-e2e-pv-blue":    {"csx-e2e-tier": "blue"},
	// Unbound, with red's tier and tenant label: labels never make a volume a tenant's.
	"csx-e2e-pv-free": {"csx-e2e-tier": "red", "capsule.clastix.io/tenant": "e2e-csx-red"},
}

// csxOwner is one owner of the test with the kinds it is granted and what it must see of each.
type csxOwner struct {
	*namespaceOwner
	allowed map[string][]string // kind to names, for the granted kinds, namespaces and tenants
	refused []string            // kinds it is not granted: the proxy leaves them to RBAC
	hidden  map[string][]string // objects of the other tenant
}

// TestClusterScopedOwners: two tenants owned by a user, a ServiceAccount and a group, each granted its own
// kinds. Through the proxy, every owner's kubectl (default table, -o name, -o json, -o yaml) and a protobuf
// client list exactly the allowed set of every kind, namespaces and Tenants included; selectors only
// narrow it; the other tenant's objects answer byte for byte like missing ones; kinds an owner is not
// granted, and every list directly at the API server, are Forbidden.
func TestClusterScopedOwners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin, adminDynamic := clusterScopedObjects(t, ctx, ownersTenants, []string{"e2e-csx-red", "e2e-csx-blue"}, "csx-e2e-pool", nil, nil)
	createCSXObjects(t, ctx, admin)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = adminDynamic.Resource(nsTestTenantOwners).Delete(ctx, "e2e-csx-red-robot", metav1.DeleteOptions{})
		_ = admin.CoreV1().Namespaces().Delete(ctx, "csx-e2e", metav1.DeleteOptions{})
	})
	pollFor(t, ctx, "Capsule to aggregate the TenantOwner", func(ctx context.Context) (bool, error) {
		cfg, err := adminDynamic.Resource(nsTestCapsuleConfigurations).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		tnt, err := adminDynamic.Resource(nsTestTenants).Get(ctx, "e2e-csx-red", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return subjectListed(cfg, csxRobot, "status", "users") && subjectListed(tnt, csxRobot, "status", "owners"), nil
	})

	uma := newNamespaceOwner(t, ctx, "csx-uma", "e2e-csx-red", []string{"csx-e2e-red-1"}, testbed.CapsuleUsersGroup)
	wes := newNamespaceOwner(t, ctx, "csx-wes", "e2e-csx-blue", []string{"csx-e2e-blue-1"}, testbed.CapsuleUsersGroup, "csx-blue-owners")
	robot := newNamespaceOwner(t, ctx, csxRobot, "e2e-csx-red", nil)
	for _, o := range []*namespaceOwner{uma, wes} {
		for _, ns := range o.creates {
			createNamespaceThroughProxy(t, ctx, o, ns)
		}
		waitTenantStatusLists(t, ctx, adminDynamic, o.tenant, o.creates...)
	}
	for _, pv := range []*corev1.PersistentVolume{
		csVolume("csx-e2e-pv-red", "csx-e2e-red-1", csxLabels["csx-e2e-pv-red"]),
		csVolume("csx-e2e-pv-blue", "csx-e2e-blue-1", csxLabels["csx-e2e-pv-blue"]),
		csVolume("csx-e2e-pv-free", "", csxLabels["csx-e2e-pv-free"]),
	} {
		if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = admin.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
		})
	}

	pick := func(from map[string][]string, kinds ...string) map[string][]string {
		out := map[string][]string{}
		for _, k := range kinds {
			out[k] = from[k]
		}
		return out
	}
	owners := []csxOwner{
		{namespaceOwner: uma, allowed: csxRed, hidden: csxBlue},
		{namespaceOwner: robot, allowed: pick(csxRed, "namespaces", "ingressclasses", "priorityclasses", "tenants"),
			refused: []string{"nodes", "storageclasses", "runtimeclasses", "pv"}, hidden: csxBlue},
		{namespaceOwner: wes, allowed: csxBlue, hidden: csxRed},
	}
	// The proxy learns of tenants, namespaces and objects from its watches: wait until it serves them all.
	for _, o := range owners {
		for _, kind := range csxOrder {
			want, ok := o.allowed[kind]
			if !ok {
				continue
			}
			pollFor(t, ctx, fmt.Sprintf("the proxy to serve %s's %s", o.name, kind), func(ctx context.Context) (bool, error) {
				names, err := listNames(ctx, o.proxyConfig, csxKinds[kind].path, nil)
				if err != nil {
					return false, err
				}
				return slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(want))), fmt.Errorf("%v", names)
			})
		}
	}

	t.Run("every format shows exactly the allowed set", func(t *testing.T) {
		for _, o := range owners {
			for _, kind := range csxOrder {
				if want, ok := o.allowed[kind]; ok {
					t.Run(o.name+"/"+kind, func(t *testing.T) { assertListFormats(t, ctx, o.namespaceOwner, csxKinds[kind], want) })
				}
			}
		}
	})

	t.Run("selectors only narrow", func(t *testing.T) {
		for _, kind := range csxOrder {
			t.Run(kind, func(t *testing.T) { assertSelectorsNarrow(t, ctx, owners[0], kind) })
		}
		// The forms of the issue with the real kubectl, for each class: they reach the proxy as kubectl
		// encodes them.
		adminCfg := env.cluster.Admin
		for _, kind := range []string{"storageclasses", "ingressclasses", "priorityclasses", "runtimeclasses"} {
			o := owners[0]
			for _, args := range [][]string{
				{"-l", "!csx-e2e-tier"},
				{"-l", "capsule.clastix.io/tenant notin (e2e-csx-red)"},
				{"--field-selector", "metadata.name=" + csxBlue[kind][0]},
				{"--field-selector", "metadata.name=" + csxOther[kind][0]},
			} {
				out, err := o.kubectl(t, ctx, append([]string{"get", kind, "-o", "name"}, args...)...)
				if err != nil {
					t.Errorf("%s get %s %v: %v: %s", o.name, kind, args, err, out)
					continue
				}
				query := url.Values{}
				if args[0] == "-l" {
					query.Set("labelSelector", args[1])
				} else {
					query.Set("fieldSelector", args[1])
				}
				all, err := listNames(ctx, adminCfg, csxKinds[kind].path, query)
				if err != nil {
					t.Fatal(err)
				}
				assertSameNames(t, fmt.Sprintf("%s get %s %v", o.name, kind, args), kubectlNames(out), intersect(all, o.allowed[kind]))
			}
		}
	})

	t.Run("another tenant's objects answer like missing ones", func(t *testing.T) {
		for _, o := range owners {
			for _, kind := range csxOrder {
				if _, ok := o.allowed[kind]; ok {
					t.Run(o.name+"/"+kind, func(t *testing.T) { assertHiddenLikeMissing(t, ctx, o, kind) })
				}
			}
		}
		// And with kubectl, whose error message is what users see.
		for _, kind := range []string{"storageclass", "node", "pv"} {
			hidden := map[string]string{"storageclass": "csx-e2e-sc-blue", "node": "csx-e2e-node-blue", "pv": "csx-e2e-pv-blue"}[kind]
			missing := missingName(hidden)
			got, err := uma.kubectl(t, ctx, "get", kind, hidden)
			if err == nil || !strings.Contains(got, "NotFound") {
				t.Errorf("get %s %s: %v: %s, want NotFound", kind, hidden, err, got)
			}
			want, _ := uma.kubectl(t, ctx, "get", kind, missing)
			if strings.ReplaceAll(got, hidden, "X") != strings.ReplaceAll(want, missing, "X") {
				t.Errorf("kubectl get %s: hidden %s and missing %s differ:\n%s\n%s", kind, hidden, missing, got, want)
			}
		}
	})

	t.Run("refused writes and ungranted reads: the same Forbidden for own, other and missing objects", func(t *testing.T) {
		// No owner is granted Update or Delete, and robot no List of nodes: all of these are forwarded as the
		// caller, and RBAC's answer must not tell an object of the own tenant, of the other one, or of no
		// tenant from a missing one.
		for _, c := range []struct {
			owner       csxOwner
			method      string
			kind        string
			contentType string
			body        string
		}{
			{owners[0], http.MethodDelete, "ingressclasses", "", ""},
			{owners[0], http.MethodPatch, "priorityclasses", "application/merge-patch+json", `{"metadata":{"labels":{"csx-e2e-tier":"blue"}}}`},
			{owners[0], http.MethodPut, "runtimeclasses", "application/json", `{"apiVersion":"node.k8s.io/v1","kind":"RuntimeClass","metadata":{"name":"NAME"},"handler":"runc"}`},
			{owners[0], http.MethodDelete, "pv", "", ""},
			{owners[2], http.MethodPatch, "storageclasses", "application/merge-patch+json", `{"metadata":{"labels":{"csx-e2e-tier":"red"}}}`},
			{owners[1], http.MethodGet, "nodes", "", ""},
			{owners[1], http.MethodDelete, "priorityclasses", "", ""},
		} {
			path := csxKinds[c.kind].path
			own := c.owner.allowed[c.kind]
			if own == nil {
				own = csxRed[c.kind] // robot's own tenant's, which it is not granted
			}
			missing := missingName(own[0])
			request := func(name string) (int, string) {
				code, _, body := ownerRequest(t, c.owner.namespaceOwner, c.method, path+"/"+name, c.contentType, strings.ReplaceAll(c.body, "NAME", name))
				return code, strings.ReplaceAll(body, name, "NAME")
			}
			wantCode, want := request(missing)
			if wantCode != http.StatusForbidden {
				t.Errorf("%s %s %s/%s: %d %s, want 403", c.owner.name, c.method, c.kind, missing, wantCode, want)
			}
			for _, name := range []string{own[0], c.owner.hidden[c.kind][0], csxOther[c.kind][0]} {
				if code, body := request(name); code != wantCode || body != want {
					t.Errorf("%s %s %s/%s: %d %s\nmissing %s: %d %s", c.owner.name, c.method, c.kind, name, code, body, missing, wantCode, want)
				}
			}
		}
	})

	t.Run("ungranted kinds and direct lists are Forbidden", func(t *testing.T) {
		for _, o := range owners {
			direct := rest.CopyConfig(o.proxyConfig)
			direct.Host, direct.CAFile = env.cluster.URL, env.cluster.CAFile
			for _, kind := range csxOrder {
				path := csxKinds[kind].path
				if _, granted := o.allowed[kind]; !granted {
					if status, _, body := rawGet(ctx, o.proxyConfig, path, "application/json"); status != http.StatusForbidden {
						t.Errorf("%s lists %s through the proxy without the grant: %d %s, want 403", o.name, kind, status, body)
					}
				}
				if status, _, body := rawGet(ctx, direct, path, "application/json"); status != http.StatusForbidden {
					t.Errorf("%s lists %s directly: %d %s, want 403", o.name, kind, status, body)
				}
			}
		}
	})
}

// createCSXObjects creates the test's nodes and classes, removed when t ends.
func createCSXObjects(t *testing.T, ctx context.Context, admin kubernetes.Interface) {
	t.Helper()
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Labels: csxLabels[name]} }
	all := func(kind string) []string { return slices.Concat(csxRed[kind], csxBlue[kind], csxOther[kind]) }
	type object struct {
		create func() error
		remove func() error
	}
	var objects []object
	for _, name := range all("nodes") {
		objects = append(objects, object{
			func() error {
				_, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: meta(name)}, metav1.CreateOptions{})
				return err
			},
			func() error { return admin.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) },
		})
	}
	for _, name := range all("storageclasses") {
		objects = append(objects, object{
			func() error {
				_, err := admin.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: meta(name), Provisioner: "example.com/csx"}, metav1.CreateOptions{})
				return err
			},
			func() error {
				return admin.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
			},
		})
	}
	for _, name := range all("ingressclasses") {
		objects = append(objects, object{
			func() error {
				ic := &networkingv1.IngressClass{ObjectMeta: meta(name), Spec: networkingv1.IngressClassSpec{Controller: "example.com/csx"}}
				_, err := admin.NetworkingV1().IngressClasses().Create(ctx, ic, metav1.CreateOptions{})
				return err
			},
			func() error {
				return admin.NetworkingV1().IngressClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
			},
		})
	}
	for _, name := range all("priorityclasses") {
		objects = append(objects, object{
			func() error {
				pc := &schedulingv1.PriorityClass{ObjectMeta: meta(name), Value: 1000}
				_, err := admin.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{})
				return err
			},
			func() error {
				return admin.SchedulingV1().PriorityClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
			},
		})
	}
	for _, name := range all("runtimeclasses") {
		objects = append(objects, object{
			func() error {
				_, err := admin.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: meta(name), Handler: "runc"}, metav1.CreateOptions{})
				return err
			},
			func() error {
				return admin.NodeV1().RuntimeClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
			},
		})
	}
	for _, o := range objects {
		if err := o.create(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = o.remove() })
	}
}

// assertListFormats checks that kubectl's default table, -o name (also one object a page), -o json and
// -o yaml, a PartialObjectMetadataList and a protobuf client all list exactly want of kind through the
// proxy as o.
func assertListFormats(t *testing.T, ctx context.Context, o *namespaceOwner, kind csxKind, want []string) {
	t.Helper()
	out, err := o.kubectl(t, ctx, "get", kind.resource)
	if err != nil {
		t.Fatalf("get %s: %v: %s", kind.resource, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "NAME ") {
		t.Errorf("get %s: no table header:\n%s", kind.resource, out)
	}
	var table []string
	for _, line := range lines[1:] {
		if fields := strings.Fields(line); len(fields) > 0 {
			table = append(table, fields[0])
		}
	}
	assertSameNames(t, "get "+kind.resource+" (table)", table, want)

	out, err = o.kubectl(t, ctx, "get", kind.resource, "-o", "name")
	if err != nil {
		t.Fatalf("get %s -o name: %v: %s", kind.resource, err, out)
	}
	assertSameNames(t, "get "+kind.resource+" -o name", kubectlNames(out), want)

	// One object a page: the continue tokens carry the filter from page to page.
	out, err = o.kubectl(t, ctx, "get", kind.resource, "-o", "name", "--chunk-size=1")
	if err != nil {
		t.Fatalf("get %s -o name --chunk-size=1: %v: %s", kind.resource, err, out)
	}
	assertSameNames(t, "get "+kind.resource+" -o name --chunk-size=1", kubectlNames(out), want)

	// The metadata-only list of client-go's metadata informers (garbage collector, kubectl tree, ...).
	status, _, body := rawGet(ctx, o.proxyConfig, kind.path, "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
	var metadataList objectNames
	if err := json.Unmarshal(body, &metadataList); status != http.StatusOK || err != nil || metadataList.Kind != "PartialObjectMetadataList" {
		t.Fatalf("PartialObjectMetadataList of %s: %d %v %s", kind.resource, status, err, body)
	}
	assertSameNames(t, kind.resource+" as PartialObjectMetadataList", metadataList.names(), want)

	for _, format := range []string{"json", "yaml"} {
		out, err = o.kubectl(t, ctx, "get", kind.resource, "-o", format)
		if err != nil {
			t.Fatalf("get %s -o %s: %v: %s", kind.resource, format, err, out)
		}
		var list objectNames
		if err := yaml.Unmarshal([]byte(out), &list); err != nil { // YAML is a superset of JSON
			t.Fatalf("get %s -o %s: %v:\n%s", kind.resource, format, err, out)
		}
		if list.Kind != "List" {
			t.Errorf("get %s -o %s: kind %q, want List", kind.resource, format, list.Kind)
		}
		assertSameNames(t, "get "+kind.resource+" -o "+format, list.names(), want)
	}

	names, err := kind.protobufNames(ctx, o.proxyConfig)
	if err != nil {
		t.Fatalf("protobuf list of %s: %v", kind.resource, err)
	}
	assertSameNames(t, kind.resource+" over protobuf", names, want)
}

// objectNames is the part of a list that names its items.
type objectNames struct {
	Kind  string `json:"kind"`
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	} `json:"items"`
}

func (l objectNames) names() []string {
	names := []string{}
	for _, item := range l.Items {
		names = append(names, item.Metadata.Name)
	}
	return names
}

// kubectlNames reads `kubectl get -o name`: one resource/name a line.
func kubectlNames(out string) []string {
	names := []string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.LastIndex(line, "/"); i >= 0 && !strings.Contains(line, " ") {
			names = append(names, line[i+1:])
		}
	}
	return names
}

// assertSelectorsNarrow lists kind through the proxy as o with selectors that try to widen the tenant
// filter (negations, absent labels, names of hidden objects, repeated parameters): each must give exactly
// what the API server gives the administrator for the same query, within o's allowed set.
func assertSelectorsNarrow(t *testing.T, ctx context.Context, o csxOwner, kind string) {
	t.Helper()
	allowed := o.allowed[kind]
	hidden := o.hidden[kind][0]
	for _, query := range []url.Values{
		{"labelSelector": {"capsule.clastix.io/tenant notin (" + o.tenant + ")"}},
		{"labelSelector": {"!capsule.clastix.io/tenant"}},
		{"labelSelector": {"!csx-e2e-tier"}},
		{"labelSelector": {"csx-e2e-tier notin (red)"}},
		{"labelSelector": {"csx-e2e-tier"}},
		{"labelSelector": {"", "csx-e2e-tier=blue"}},
		{"labelSelector": {"csx-e2e-tier=blue", ""}},
		{"labelSelector": {"csx-e2e-tier=red", "csx-e2e-tier!=red"}},
		{"labelSelector": {"csx-e2e-tier!=red", "!csx-e2e-tier"}},
		{"fieldSelector": {"metadata.name=" + hidden}},
		{"fieldSelector": {"metadata.name!=" + allowed[0]}},
		{"fieldSelector": {"", "metadata.name=" + hidden}},
		{"fieldSelector": {"metadata.name=" + allowed[0], "metadata.name=" + hidden}},
		{"labelSelector": {"!csx-e2e-tier"}, "fieldSelector": {"metadata.name=" + hidden}},
	} {
		apiServer, apiErr := listNames(ctx, env.cluster.Admin, csxKinds[kind].path, query)
		proxied, err := listNames(ctx, o.proxyConfig, csxKinds[kind].path, query)
		if apiErr != nil {
			// A query the API server refuses must not be answered by the proxy either.
			if err == nil {
				t.Errorf("%s: the API server refuses it (%v), the proxy lists %v", query.Encode(), apiErr, proxied)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", query.Encode(), err)
			continue
		}
		assertSameNames(t, query.Encode(), proxied, intersect(apiServer, allowed))
	}
}

// assertHiddenLikeMissing gets the other tenant's objects, and for cluster-scoped kinds an object of no
// tenant, through the proxy as o, and checks that status and body are those of a missing object of a name
// of the same length (protobuf lengths included), in JSON, Table and protobuf; and that the JSON is what
// the API server itself answers for a missing object.
func assertHiddenLikeMissing(t *testing.T, ctx context.Context, o csxOwner, kind string) {
	t.Helper()
	path := csxKinds[kind].path
	hiddenNames := slices.Concat(o.hidden[kind], csxOther[kind])
	if kind == "namespaces" {
		hiddenNames = append(hiddenNames, "kube-system")
	}
	for _, hidden := range hiddenNames {
		missing := missingName(hidden)
		for _, accept := range []string{
			"application/json",
			"application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
			runtime.ContentTypeProtobuf,
		} {
			if kind == "tenants" && accept == runtime.ContentTypeProtobuf {
				accept = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
			}
			hs, hct, hb := rawGet(ctx, o.proxyConfig, path+"/"+hidden, accept)
			ms, mct, mb := rawGet(ctx, o.proxyConfig, path+"/"+missing, accept)
			if hs != http.StatusNotFound || hs != ms || hct != mct || !bytes.Equal(bytes.ReplaceAll(hb, []byte(hidden), []byte(missing)), mb) {
				t.Errorf("Accept %s: %s answers %d %s %q; missing %s answers %d %s %q", accept, hidden, hs, hct, hb, missing, ms, mct, mb)
			}
			if accept != "application/json" {
				continue
			}
			as, _, ab := rawGet(ctx, env.cluster.Admin, path+"/"+missing, accept)
			if as != ms || !bytes.Equal(ab, mb) {
				t.Errorf("missing %s: the proxy answers %d %q, the API server %d %q", missing, ms, mb, as, ab)
			}
		}
	}
}

// missingName is a name that exists nowhere, of the length of name.
func missingName(name string) string { return name[:len(name)-4] + "zzzz" }

func intersect(a, b []string) []string {
	out := []string{}
	for _, n := range a {
		if slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}

// rawGet sends one GET as cfg's caller with the given Accept header.
func rawGet(ctx context.Context, cfg *rest.Config, path, accept string) (int, string, []byte) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, "", []byte(err.Error())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+path, nil)
	if err != nil {
		return 0, "", []byte(err.Error())
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", []byte(err.Error())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// listNames lists path as cfg's caller with query (parameters may repeat) and returns the items' names.
func listNames(ctx context.Context, cfg *rest.Config, path string, query url.Values) ([]string, error) {
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	status, _, body := rawGet(ctx, cfg, path, "application/json")
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, status, body)
	}
	var list objectNames
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return list.names(), nil
}
