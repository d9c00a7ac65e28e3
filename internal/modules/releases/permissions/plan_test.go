package permissions

import (
	"context"
	"errors"
	"reflect"
	"testing"

	release "helm.sh/helm/v4/pkg/release/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// testMapper knows a few built-in kinds, as the caller's discovery would.
func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	add := func(group, version, kind, resource string, scope meta.RESTScope) {
		gvk := schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
		m.AddSpecific(gvk, gvk.GroupVersion().WithResource(resource), gvk.GroupVersion().WithResource(resource[:len(resource)-1]), scope)
	}
	add("", "v1", "ConfigMap", "configmaps", meta.RESTScopeNamespace)
	add("", "v1", "Secret", "secrets", meta.RESTScopeNamespace)
	add("", "v1", "Namespace", "namespaces", meta.RESTScopeRoot)
	add("apps", "v1", "Deployment", "deployments", meta.RESTScopeNamespace)
	add("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", meta.RESTScopeRoot)
	add("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", meta.RESTScopeRoot)
	return m
}

const (
	configMapA  = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	configMapB  = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"
	keptMapC    = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    helm.sh/resource-policy: keep\n"
	otherNS     = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: other\n"
	clusterRole = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\n"
	widgetCRD   = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true}]
`
	widget     = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
	listOfMaps = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: l1}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: l2, namespace: side}\n"
)

func docs(parts ...string) string {
	out := ""
	for _, p := range parts {
		out += "---\n" + p
	}
	return out
}

func hook(manifest string, events ...release.HookEvent) *release.Hook {
	return &release.Hook{Path: "templates/hook.yaml", Manifest: manifest, Events: events}
}

func check(group, resource, ns string, verbs ...string) []Check {
	var out []Check
	for _, v := range verbs {
		out = append(out, Check{APIGroup: group, Resource: resource, Namespace: ns, Verb: v})
	}
	return out
}

func join(lists ...[]Check) []Check {
	var out []Check
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func TestPlan(t *testing.T) {
	crds, err := Parse(widgetCRD)
	if err != nil {
		t.Fatal(err)
	}
	installSecrets := check("", "secrets", "rel", "create", "delete", "list", "update")
	tests := []struct {
		name  string
		steps func() ([]Step, error)
		want  []Check
	}{{
		name:  "install: objects get/create/patch in the release namespace, release records",
		steps: func() ([]Step, error) { return Install("rel", Rendered{Manifest: docs(configMapA, configMapB)}, nil) },
		want:  join(check("", "configmaps", "rel", "create", "get", "patch"), installSecrets),
	}, {
		name:  "install: another namespace is checked there, cluster-scoped cluster-wide",
		steps: func() ([]Step, error) { return Install("rel", Rendered{Manifest: docs(otherNS, clusterRole)}, nil) },
		want: join(check("", "secrets", "rel", "create", "delete", "list", "update"),
			check("apps", "deployments", "other", "create", "get", "patch"),
			check("rbac.authorization.k8s.io", "clusterroles", "", "create", "get", "patch")),
	}, {
		name: "install: only install hooks, with hook verbs",
		steps: func() ([]Step, error) {
			return Install("rel", Rendered{Hooks: []*release.Hook{
				hook(clusterRole, release.HookPreInstall),
				hook(otherNS, release.HookPreUpgrade, release.HookTest),
			}}, nil)
		},
		want: join(installSecrets, check("rbac.authorization.k8s.io", "clusterroles", "", "create", "delete", "list", "patch", "watch")),
	}, {
		name:  "install: chart CRDs and a custom object the cluster does not know yet",
		steps: func() ([]Step, error) { return Install("rel", Rendered{Manifest: widget}, crds) },
		want: join(installSecrets, check("apiextensions.k8s.io", "customresourcedefinitions", "", "create", "list", "patch", "watch"),
			check("example.com", "widgets", "rel", "create", "get", "patch")),
	}, {
		name:  "install: List documents are flattened",
		steps: func() ([]Step, error) { return Install("rel", Rendered{Manifest: listOfMaps}, nil) },
		want: join(check("", "configmaps", "rel", "create", "get", "patch"),
			check("", "configmaps", "side", "create", "get", "patch"), installSecrets),
	}, {
		name: "upgrade: dropped objects need delete, kept ones do not",
		steps: func() ([]Step, error) {
			return Upgrade("rel", Rendered{Manifest: docs(configMapA, clusterRole, keptMapC)}, Rendered{Manifest: docs(configMapA)})
		},
		want: join(check("", "configmaps", "rel", "create", "get", "patch"),
			check("", "secrets", "rel", "create", "list", "update"),
			check("rbac.authorization.k8s.io", "clusterroles", "", "delete", "get")),
	}, {
		name: "rollback: against the target revision and its rollback hooks",
		steps: func() ([]Step, error) {
			return Rollback("rel", Rendered{Manifest: docs(configMapA, otherNS)},
				Rendered{Manifest: docs(configMapA), Hooks: []*release.Hook{hook(clusterRole, release.HookPostRollback), hook(configMapB, release.HookPreInstall)}})
		},
		want: join(check("", "configmaps", "rel", "create", "get", "patch"),
			check("", "secrets", "rel", "create", "get", "list", "update"),
			check("apps", "deployments", "other", "delete", "get"),
			check("rbac.authorization.k8s.io", "clusterroles", "", "create", "delete", "list", "patch", "watch")),
	}, {
		name: "uninstall: get/delete every object but kept ones, delete hooks run",
		steps: func() ([]Step, error) {
			return Uninstall("rel", Rendered{Manifest: docs(configMapA, keptMapC, clusterRole),
				Hooks: []*release.Hook{hook(otherNS, release.HookPreDelete)}}, false)
		},
		want: join(check("", "configmaps", "rel", "delete", "get"),
			check("", "secrets", "rel", "delete", "list", "update"),
			check("apps", "deployments", "other", "create", "delete", "list", "patch", "watch"),
			check("rbac.authorization.k8s.io", "clusterroles", "", "delete", "get")),
	}, {
		name:  "uninstall keeping history deletes no release record",
		steps: func() ([]Step, error) { return Uninstall("rel", Rendered{Manifest: configMapA}, true) },
		want:  join(check("", "configmaps", "rel", "delete", "get"), check("", "secrets", "rel", "list", "update")),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := tt.steps()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Plan(testMapper(), "rel", nil, steps...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("checks:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		unknown  bool
	}{
		{name: "a kind nobody defines", manifest: "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n", unknown: true},
		{name: "no kind", manifest: "apiVersion: v1\nmetadata: {name: x}\n"},
		{name: "no name", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"},
		{name: "not YAML", manifest: "apiVersion: [v1\n"},
		{name: "CRD without scope", manifest: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x.example.com}\nspec: {group: example.com, names: {kind: X, plural: xs}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := Install("rel", Rendered{Manifest: tt.manifest}, nil)
			if err == nil {
				_, err = Plan(testMapper(), "rel", nil, steps...)
			}
			if err == nil {
				t.Fatal("no error")
			}
			var unknown *UnknownKindError
			if errors.As(err, &unknown) != tt.unknown {
				t.Errorf("unknown kind error = %v, want %v (%v)", !tt.unknown, tt.unknown, err)
			}
		})
	}
}

func TestGroup(t *testing.T) {
	tests := []struct {
		name   string
		checks []Check
		want   []Permission
	}{
		{name: "none", checks: nil, want: []Permission{}},
		{
			name: "verbs merged and sorted per resource and namespace, duplicates dropped",
			checks: join(check("rbac.authorization.k8s.io", "clusterroles", "", "patch", "create"),
				check("", "configmaps", "b", "get"), check("", "configmaps", "a", "patch", "get", "get")),
			want: []Permission{
				{APIGroup: "", Resource: "configmaps", Namespace: "a", Verbs: []string{"get", "patch"}},
				{APIGroup: "", Resource: "configmaps", Namespace: "b", Verbs: []string{"get"}},
				{APIGroup: "rbac.authorization.k8s.io", Resource: "clusterroles", ClusterWide: true, Verbs: []string{"create", "patch"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Group(tt.checks); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestReviewerMissing(t *testing.T) {
	caller := &user.DefaultInfo{Name: "ann", UID: "u-1", Groups: []string{"owners"}, Extra: map[string][]string{"scope": {"x"}}}
	checks := join(check("", "configmaps", "a", "create", "get"), check("rbac.authorization.k8s.io", "clusterroles", "", "create"))
	tests := []struct {
		name    string
		allow   func(*authorizationv1.ResourceAttributes) (bool, error)
		want    []Check
		wantErr bool
	}{
		{name: "all allowed", allow: func(*authorizationv1.ResourceAttributes) (bool, error) { return true, nil }},
		{name: "cluster-wide refused", allow: func(a *authorizationv1.ResourceAttributes) (bool, error) { return a.Namespace != "", nil },
			want: check("rbac.authorization.k8s.io", "clusterroles", "", "create")},
		{name: "a failed review fails closed", allow: func(a *authorizationv1.ResourceAttributes) (bool, error) {
			if a.Verb == "get" {
				return false, errors.New("timeout")
			}
			return true, nil
		}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			client.PrependReactor("create", "subjectaccessreviews", func(action clienttesting.Action) (bool, runtime.Object, error) {
				sar := action.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
				if sar.Spec.User != "ann" || sar.Spec.UID != "u-1" || !reflect.DeepEqual(sar.Spec.Groups, []string{"owners"}) ||
					!reflect.DeepEqual(sar.Spec.Extra["scope"], authorizationv1.ExtraValue{"x"}) {
					t.Errorf("review names the wrong subject: %+v", sar.Spec)
				}
				ok, err := tt.allow(sar.Spec.ResourceAttributes)
				sar.Status.Allowed = ok
				return true, sar, err
			})
			got, err := NewReviewer(client.AuthorizationV1()).Missing(context.Background(), caller, checks)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("missing = %v, want %v", got, tt.want)
			}
		})
	}
}
