package chart

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	goflag "flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/webserver"
)

// rendered is one rendering, indexed by kind and name.
type rendered struct {
	objs []*unstructured.Unstructured
}

func render(t *testing.T, values map[string]any) *rendered {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := Render(context.Background(), dir, Options{ReleaseName: "tp", Namespace: "proxy", Values: values})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return &rendered{objs: objs}
}

func (r *rendered) all(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// get returns the object of kind and name, or nil.
func (r *rendered) get(kind, name string) *unstructured.Unstructured {
	for _, o := range r.all(kind) {
		if o.GetName() == name {
			return o
		}
	}
	return nil
}

// typed converts the object of kind and name into out, refusing unknown fields so that a typo in a template
// fails here rather than on a cluster.
func (r *rendered) typed(t *testing.T, kind, name string, out any) {
	t.Helper()
	o := r.get(kind, name)
	if o == nil {
		t.Fatalf("no %s %q rendered", kind, name)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		// present and absent are "Kind/name" of objects that must (not) be rendered.
		present, absent []string
		// args must all appear in the proxy container's arguments; notArgs are prefixes that must not.
		args, notArgs []string
		check         func(t *testing.T, r *rendered)
	}{
		{
			name: "defaults",
			present: []string{"Deployment/tp-tenant-proxy", "Service/tp-tenant-proxy", "ServiceAccount/tp-tenant-proxy",
				"ClusterRole/tp-tenant-proxy", "ClusterRoleBinding/tp-tenant-proxy", "RoleBinding/tp-tenant-proxy-proxy-authentication-reader",
				"PodDisruptionBudget/tp-tenant-proxy", "FlowSchema/tp-tenant-proxy-proxy", "Secret/tp-tenant-proxy-tls",
				"CustomResourceDefinition/apprepositories.kubeapps.com"},
			absent: []string{"HorizontalPodAutoscaler/tp-tenant-proxy", "ServiceMonitor/tp-tenant-proxy",
				"Certificate/tp-tenant-proxy", "Service/tp-tenant-proxy-metrics"},
			args: []string{"serve", "--secure-port=9001", "--tls-cert-file=/etc/tenant-proxy/tls/tls.crt",
				"--tls-private-key-file=/etc/tenant-proxy/tls/tls.key", "--metrics-bind-address=127.0.0.1:9090", "--audit-log-path=-"},
			notArgs: []string{"--kubeconfig", "--oidc-", "--requestheader-", "--anonymous-auth=true"},
			check: func(t *testing.T, r *rendered) {
				if got := grantedWrites(t, r); len(got) != 0 {
					t.Errorf("by default the proxy may write %v, want nothing", got)
				}
				d := deployment(t, r)
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
					t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
				}
				if n := len(d.Spec.Template.Spec.TopologySpreadConstraints); n != 2 {
					t.Errorf("%d topology spread constraints, want 2 (hostname, zone)", n)
				}
				assertService(t, r, corev1.ServiceTypeClusterIP)
				var s corev1.Secret
				r.typed(t, "Secret", "tp-tenant-proxy-tls", &s)
				for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
					if len(s.Data[k]) == 0 {
						t.Errorf("self-signed Secret has no %s", k)
					}
				}
			},
		},
		{
			name: "cert-manager, LoadBalancer, HPA, ServiceMonitor",
			values: map[string]any{
				"tls":            map[string]any{"mode": "certManager", "certManager": map[string]any{"issuerRef": map[string]any{"name": "ca", "kind": "ClusterIssuer"}}},
				"service":        map[string]any{"type": "LoadBalancer", "loadBalancerSourceRanges": []any{"10.0.0.0/8"}},
				"autoscaling":    map[string]any{"enabled": true, "maxReplicas": 10},
				"serviceMonitor": map[string]any{"enabled": true},
			},
			present: []string{"Certificate/tp-tenant-proxy", "HorizontalPodAutoscaler/tp-tenant-proxy",
				"ServiceMonitor/tp-tenant-proxy", "Service/tp-tenant-proxy-metrics", "PodDisruptionBudget/tp-tenant-proxy"},
			absent: []string{"Secret/tp-tenant-proxy-tls"},
			args:   []string{"--secure-port=9001", "--metrics-bind-address=0.0.0.0:9090"},
			check: func(t *testing.T, r *rendered) {
				d := deployment(t, r)
				if d.Spec.Replicas != nil {
					t.Errorf("replicas = %d with an HPA, want unset", *d.Spec.Replicas)
				}
				svc := assertService(t, r, corev1.ServiceTypeLoadBalancer)
				for _, p := range svc.Spec.Ports {
					if p.Name == "metrics" {
						t.Error("plain-HTTP metrics exposed on the LoadBalancer Service")
					}
				}
				var metrics corev1.Service
				r.typed(t, "Service", "tp-tenant-proxy-metrics", &metrics)
				if metrics.Spec.Type != corev1.ServiceTypeClusterIP && metrics.Spec.Type != "" {
					t.Errorf("metrics Service type %s, want ClusterIP", metrics.Spec.Type)
				}
				cert := r.get("Certificate", "tp-tenant-proxy")
				if name, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); name != tlsVolumeSecret(t, d) {
					t.Errorf("Certificate writes %q, pod mounts %q", name, tlsVolumeSecret(t, d))
				}
				dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
				if !slices.Contains(dns, "tp-tenant-proxy.proxy.svc") {
					t.Errorf("Certificate DNS names %v lack the Service name", dns)
				}
				hpa := r.get("HorizontalPodAutoscaler", "tp-tenant-proxy")
				if target, _, _ := unstructured.NestedString(hpa.Object, "spec", "scaleTargetRef", "name"); target != d.Name {
					t.Errorf("HPA scales %q, want %q", target, d.Name)
				}
			},
		},
		{
			name: "existing Secret, NodePort, OIDC, front proxy, minAvailable",
			values: map[string]any{
				"tls":     map[string]any{"mode": "secret", "existingSecret": "my-tls"},
				"service": map[string]any{"type": "NodePort", "nodePort": 30443},
				"oidc": map[string]any{"issuerURL": "https://issuer.example", "clientID": "kubernetes", "caConfigMap": "oidc-ca",
					"usernamePrefix": "oidc:", "groupsClaim": "groups", "requiredClaims": map[string]any{"hd": "example.com"}},
				"requestHeader":       map[string]any{"clientCAConfigMap": "front-proxy-ca", "allowedNames": []any{"dashboard"}},
				"podDisruptionBudget": map[string]any{"minAvailable": 1},
				"proxy":               map[string]any{"extraArgs": []any{"--tls-min-version=VersionTLS13"}},
				"rbac":                map[string]any{"extraServiceAccounts": []any{map[string]any{"name": "dashboard", "namespace": "ui"}}},
			},
			present: []string{"PodDisruptionBudget/tp-tenant-proxy"},
			absent:  []string{"Secret/tp-tenant-proxy-tls", "Certificate/tp-tenant-proxy"},
			args: []string{"--oidc-issuer-url=https://issuer.example", "--oidc-client-id=kubernetes",
				"--oidc-ca-file=/etc/tenant-proxy/oidc-ca/ca.crt", "--oidc-username-prefix=oidc:", "--oidc-groups-claim=groups",
				"--oidc-required-claim=hd=example.com", "--requestheader-client-ca-file=/etc/tenant-proxy/requestheader-ca/ca.crt",
				"--requestheader-allowed-names=dashboard", "--tls-min-version=VersionTLS13"},
			check: func(t *testing.T, r *rendered) {
				d := deployment(t, r)
				if got := tlsVolumeSecret(t, d); got != "my-tls" {
					t.Errorf("TLS volume from Secret %q, want my-tls", got)
				}
				svc := assertService(t, r, corev1.ServiceTypeNodePort)
				if svc.Spec.Ports[0].NodePort != 30443 {
					t.Errorf("nodePort %d, want 30443", svc.Spec.Ports[0].NodePort)
				}
				// The dashboard running the sidecar gets the proxy's permissions and APF flow, nothing else does.
				for _, ref := range []string{"ClusterRoleBinding/tp-tenant-proxy", "RoleBinding/tp-tenant-proxy-proxy-authentication-reader"} {
					kind, name, _ := strings.Cut(ref, "/")
					var b rbacv1.RoleBinding // same shape as a ClusterRoleBinding
					r.typed(t, kind, name, &b)
					want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "tp-tenant-proxy", Namespace: "proxy"}, {Kind: "ServiceAccount", Name: "dashboard", Namespace: "ui"}}
					if !slices.Equal(b.Subjects, want) {
						t.Errorf("%s subjects %+v, want %+v", ref, b.Subjects, want)
					}
				}
				subjects, _, _ := unstructured.NestedSlice(r.get("FlowSchema", "tp-tenant-proxy-proxy").Object, "spec", "rules")
				if got := fmt.Sprint(subjects); !strings.Contains(got, "name:dashboard namespace:ui") {
					t.Errorf("FlowSchema rules %s lack the dashboard", got)
				}
				pdb := r.get("PodDisruptionBudget", "tp-tenant-proxy")
				if _, found, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "maxUnavailable"); found {
					t.Error("PDB sets both minAvailable and maxUnavailable")
				}
			},
		},
		{
			name: "identity only, for a sidecar",
			values: map[string]any{
				"replicas": 0,
				"tls":      map[string]any{"extraIPAddresses": []any{"127.0.0.1"}, "extraDNSNames": []any{"proxy.example"}},
			},
			present: []string{"Secret/tp-tenant-proxy-tls", "ClusterRole/tp-tenant-proxy"},
			check: func(t *testing.T, r *rendered) {
				if d := deployment(t, r); d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
					t.Errorf("replicas = %v, want 0", d.Spec.Replicas)
				}
				var s corev1.Secret
				r.typed(t, "Secret", "tp-tenant-proxy-tls", &s)
				block, _ := pem.Decode(s.Data["tls.crt"])
				if block == nil {
					t.Fatal("tls.crt is not PEM")
				}
				cert, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				roots := x509.NewCertPool()
				roots.AppendCertsFromPEM(s.Data["ca.crt"])
				for _, name := range []string{"127.0.0.1", "proxy.example", "tp-tenant-proxy.proxy.svc"} {
					if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
						t.Errorf("certificate not valid for %s under ca.crt: %v", name, err)
					}
				}
			},
		},
		{
			name:    "users impersonated in constrained mode only",
			present: []string{"ClusterRole/tp-tenant-proxy"},
			check: func(t *testing.T, r *rendered) {
				if got := impersonated(t, r, "impersonate", ""); !slices.Equal(got, []string{"serviceaccounts"}) {
					t.Errorf("legacy impersonation of %v in the core group, want only serviceaccounts", got)
				}
				if got := impersonated(t, r, "impersonate:user-info", "authentication.k8s.io"); !slices.Contains(got, "users") || !slices.Contains(got, "groups") {
					t.Errorf("constrained impersonation of %v, want users and groups", got)
				}
			},
		},
		{
			name:    "legacy user impersonation",
			values:  map[string]any{"rbac": map[string]any{"legacyUserImpersonation": true}},
			present: []string{"ClusterRole/tp-tenant-proxy"},
			check: func(t *testing.T, r *rendered) {
				if got := impersonated(t, r, "impersonate", ""); !slices.Equal(got, []string{"groups", "serviceaccounts", "users"}) {
					t.Errorf("legacy impersonation of %v in the core group, want groups, serviceaccounts and users", got)
				}
			},
		},
		{
			name:    "granted cluster-scoped writes",
			values:  map[string]any{"rbac": map[string]any{"clusterScopedWrites": true}},
			present: []string{"ClusterRole/tp-tenant-proxy"},
			check: func(t *testing.T, r *rendered) {
				if got := grantedWrites(t, r); !slices.Equal(got, clusterScopedWriteResources) {
					t.Errorf("writable resources %v, want %v", got, clusterScopedWriteResources)
				}
			},
		},
		{
			name: "optional parts off",
			values: map[string]any{
				"podDisruptionBudget": map[string]any{"enabled": false},
				"flowSchema":          map[string]any{"enabled": false},
				"crds":                map[string]any{"install": false},
				"topologySpread":      map[string]any{"keys": []any{}},
			},
			present: []string{"Deployment/tp-tenant-proxy", "ClusterRole/tp-tenant-proxy"},
			absent: []string{"PodDisruptionBudget/tp-tenant-proxy", "FlowSchema/tp-tenant-proxy-proxy",
				"CustomResourceDefinition/apprepositories.kubeapps.com"},
			check: func(t *testing.T, r *rendered) {
				if n := len(deployment(t, r).Spec.Template.Spec.TopologySpreadConstraints); n != 0 {
					t.Errorf("%d topology spread constraints, want none", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.values)
			for _, ref := range tt.present {
				kind, name, _ := strings.Cut(ref, "/")
				if r.get(kind, name) == nil {
					t.Errorf("%s not rendered", ref)
				}
			}
			for _, ref := range tt.absent {
				kind, name, _ := strings.Cut(ref, "/")
				if r.get(kind, name) != nil {
					t.Errorf("%s rendered, want none", ref)
				}
			}
			args := deployment(t, r).Spec.Template.Spec.Containers[0].Args
			for _, want := range tt.args {
				if !slices.Contains(args, want) {
					t.Errorf("args %q lack %q", args, want)
				}
			}
			for _, prefix := range tt.notArgs {
				for _, a := range args {
					if strings.HasPrefix(a, prefix) {
						t.Errorf("unexpected argument %q", a)
					}
				}
			}
			assertInvariants(t, r)
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// assertInvariants holds for every set of values.
func assertInvariants(t *testing.T, r *rendered) {
	t.Helper()
	assertLeastPrivilege(t, r)
	assertFlagsExist(t, deployment(t, r).Spec.Template.Spec.Containers[0].Args)
	assertHardenedPod(t, deployment(t, r))
	for _, o := range r.objs {
		if namespaced(o.GetKind()) && o.GetNamespace() == "" {
			t.Errorf("%s/%s has no namespace: kubectl apply would put it in the wrong one", o.GetKind(), o.GetName())
		}
	}
}

// assertLeastPrivilege: wildcards only in impersonate-on rules (the requests a constrained impersonation may
// make), writes only to the review APIs, and bindings only to the proxy's own ClusterRole and kube-apiserver's
// authentication reader Role.
func assertLeastPrivilege(t *testing.T, r *rendered) {
	t.Helper()
	roles := r.all("ClusterRole")
	if len(roles) != 1 {
		t.Fatalf("%d ClusterRoles, want 1", len(roles))
	}
	var role rbacv1.ClusterRole
	r.typed(t, "ClusterRole", roles[0].GetName(), &role)
	readOnly := []string{"get", "list", "watch"}
	for _, rule := range role.Rules {
		impersonateOn := len(rule.Verbs) > 0
		for _, verb := range rule.Verbs {
			impersonateOn = impersonateOn && strings.HasPrefix(verb, "impersonate-on:user-info:") && !strings.Contains(verb, "*")
		}
		if impersonateOn {
			continue // wildcards allowed: they only say which requests an impersonated caller may make
		}
		for _, field := range [][]string{rule.Verbs, rule.Resources, rule.APIGroups, rule.ResourceNames} {
			for _, v := range field {
				if strings.Contains(v, "*") {
					t.Errorf("wildcard %q in rule %+v", v, rule)
				}
			}
		}
		if len(rule.NonResourceURLs) > 0 {
			t.Errorf("non-resource rule %+v", rule)
		}
		for _, verb := range rule.Verbs {
			switch {
			case verb == "impersonate", verb == "impersonate:user-info", slices.Contains(readOnly, verb):
			case verb == "create" && isReview(rule.Resources):
			case slices.Contains([]string{"update", "patch", "delete"}, verb) && isGrantedWrite(rule.Resources):
			default:
				t.Errorf("verb %q on %v: the proxy writes only reviews and the granted writes of tenant owners", verb, rule.Resources)
			}
		}
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range r.all(kind) {
			ref, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			refKind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
			switch {
			case refKind == "ClusterRole" && ref == role.Name:
			case refKind == "Role" && ref == "extension-apiserver-authentication-reader" && o.GetNamespace() == "kube-system":
			default:
				t.Errorf("%s %s binds %s %q", kind, o.GetName(), refKind, ref)
			}
		}
	}
}

// impersonated lists, sorted, the resources of apiGroup the ClusterRole grants verb on.
func impersonated(t *testing.T, r *rendered, verb, apiGroup string) []string {
	t.Helper()
	var role rbacv1.ClusterRole
	r.typed(t, "ClusterRole", "tp-tenant-proxy", &role)
	var out []string
	for _, rule := range role.Rules {
		if slices.Contains(rule.Verbs, verb) && slices.Contains(rule.APIGroups, apiGroup) {
			out = append(out, rule.Resources...)
		}
	}
	slices.Sort(out)
	return out
}

// clusterScopedWriteResources are what rbac.clusterScopedWrites lets the proxy update, patch and delete.
var clusterScopedWriteResources = []string{"ingressclasses", "nodes", "persistentvolumes", "priorityclasses", "runtimeclasses", "storageclasses"}

func isGrantedWrite(resources []string) bool {
	for _, r := range resources {
		if !slices.Contains(clusterScopedWriteResources, r) {
			return false
		}
	}
	return len(resources) > 0
}

// grantedWrites lists, sorted, the resources the ClusterRole lets the proxy update, patch and delete.
func grantedWrites(t *testing.T, r *rendered) []string {
	t.Helper()
	var role rbacv1.ClusterRole
	r.typed(t, "ClusterRole", "tp-tenant-proxy", &role)
	var out []string
	for _, rule := range role.Rules {
		if slices.Contains(rule.Verbs, "update") && slices.Contains(rule.Verbs, "patch") && slices.Contains(rule.Verbs, "delete") {
			out = append(out, rule.Resources...)
		}
	}
	slices.Sort(out)
	return out
}

func isReview(resources []string) bool {
	for _, r := range resources {
		if r != "tokenreviews" && r != "subjectaccessreviews" {
			return false
		}
	}
	return len(resources) > 0
}

// assertFlagsExist parses the container's arguments with the real flags of `tenant-proxy serve`.
func assertFlagsExist(t *testing.T, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args %q do not start with serve", args)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	webserver.NewOptions().AddFlags(fs)
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args[1:]); err != nil {
		t.Errorf("tenant-proxy serve refuses %q: %v", args[1:], err)
	}
	if fs.NArg() > 0 {
		t.Errorf("stray arguments %q", fs.Args())
	}
}

func assertHardenedPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod may run as root")
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container is not read-only without privilege escalation")
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/livez", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe %+v, want HTTPS %s", probe, want)
			continue
		}
		if port := probe.HTTPGet.Port.String(); port != "https" {
			t.Errorf("probe %s on port %s, want https", want, port)
		}
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "https" && p.ContainerPort == 9001 }) {
		t.Errorf("container ports %+v lack https/9001", c.Ports)
	}
}

func deployment(t *testing.T, r *rendered) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	r.typed(t, "Deployment", "tp-tenant-proxy", &d)
	return &d
}

func assertService(t *testing.T, r *rendered, want corev1.ServiceType) *corev1.Service {
	t.Helper()
	var svc corev1.Service
	r.typed(t, "Service", "tp-tenant-proxy", &svc)
	if svc.Spec.Type != want {
		t.Errorf("Service type %s, want %s", svc.Spec.Type, want)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "https" {
		t.Errorf("Service ports %+v, want only https", svc.Spec.Ports)
	}
	return &svc
}

func tlsVolumeSecret(t *testing.T, d *appsv1.Deployment) string {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "tls" && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	t.Fatal("no tls volume")
	return ""
}

func namespaced(kind string) bool {
	switch kind {
	case "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "FlowSchema":
		return false
	}
	return true
}

// TestRenderRefuses: values.schema.json and the templates reject values that would deploy something unsafe or broken.
func TestRenderRefuses(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		values  map[string]any
		wantErr string
	}{
		{"wildcard user extras", map[string]any{"rbac": map[string]any{"impersonateUserExtras": []any{"*"}}}, "impersonateUserExtras"},
		{"unknown TLS mode", map[string]any{"tls": map[string]any{"mode": "none"}}, "mode"},
		{"existing Secret without a name", map[string]any{"tls": map[string]any{"mode": "secret"}}, "existingSecret"},
		{"cert-manager without an issuer", map[string]any{"tls": map[string]any{"mode": "certManager"}}, "issuerRef"},
		{"ExternalName Service", map[string]any{"service": map[string]any{"type": "ExternalName"}}, "type"},
		{"plain-HTTP OIDC issuer", map[string]any{"oidc": map[string]any{"issuerURL": "http://issuer", "clientID": "x"}}, "issuerURL"},
		{"OIDC without client ID", map[string]any{"oidc": map[string]any{"issuerURL": "https://issuer"}}, "clientID"},
		{"misspelt key", map[string]any{"replica": 3}, "replica"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(context.Background(), dir, Options{Values: tt.values})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}
