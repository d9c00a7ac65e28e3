package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

var (
	nsTestTenants               = schema.GroupVersionResource{Group: "capsule.clastix.io", Version: "v1beta2", Resource: "tenants"}
	nsTestTenantOwners          = schema.GroupVersionResource{Group: "capsule.clastix.io", Version: "v1beta2", Resource: "tenantowners"}
	nsTestCapsuleConfigurations = schema.GroupVersionResource{Group: "capsule.clastix.io", Version: "v1beta2", Resource: "capsuleconfigurations"}
)

// namespaceOwner is a caller of the namespaces test, with kubeconfigs for the proxy and for the API server.
type namespaceOwner struct {
	name             string
	proxyKubeconfig  string
	directKubeconfig string
	proxyConfig      *rest.Config
	tenant           string   // the tenant the caller owns
	creates          []string // the namespaces the caller creates
}

// namespacesTenants are two tenants with three kinds of owners: e2e-alpha is owned by the user ns-ann,
// e2e-beta by the group e2e-beta-owners (of which ns-ben is a member) and by a ServiceAccount that only a
// TenantOwner object names, so that it appears in the Tenant's status.owners alone.
const namespacesTenants = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-alpha
spec:
  owners:
  - kind: User
    name: ns-ann
---
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-beta
spec:
  owners:
  - kind: Group
    name: e2e-beta-owners
---
apiVersion: capsule.clastix.io/v1beta2
kind: TenantOwner
metadata:
  name: e2e-beta-robot
  labels:
    projectcapsule.dev/tenant: e2e-beta
spec:
  kind: ServiceAccount
  name: system:serviceaccount:ns-e2e:beta-robot
`

// TestNamespaces: each tenant owner sees, through the proxy and with the real kubectl, exactly the namespaces of
// their tenant, in every output format and live in a watch; another tenant's namespace is as absent as one that
// does not exist. Directly, the API server refuses them the list.
func TestNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.ApplyYAML(ctx, []byte(namespacesTenants)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = admin.Resource(nsTestTenantOwners).Delete(ctx, "e2e-beta-robot", metav1.DeleteOptions{})
		for _, name := range []string{"e2e-alpha", "e2e-beta"} { // their namespaces go with them (ownerReferences)
			_ = admin.Resource(nsTestTenants).Delete(ctx, name, metav1.DeleteOptions{})
		}
	})
	robotSA := "system:serviceaccount:ns-e2e:beta-robot"
	// The ServiceAccount becomes a Capsule user and an owner of e2e-beta once Capsule has aggregated the
	// TenantOwner into both statuses.
	pollFor(t, ctx, "Capsule to aggregate the TenantOwner", func(ctx context.Context) (bool, error) {
		cfg, err := admin.Resource(nsTestCapsuleConfigurations).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		tnt, err := admin.Resource(nsTestTenants).Get(ctx, "e2e-beta", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return subjectListed(cfg, robotSA, "status", "users") && subjectListed(tnt, robotSA, "status", "owners"), nil
	})

	ann := newNamespaceOwner(t, ctx, "ns-ann", "e2e-alpha", []string{"e2e-alpha-one", "e2e-alpha-two"}, testbed.CapsuleUsersGroup)
	ben := newNamespaceOwner(t, ctx, "ns-ben", "e2e-beta", []string{"e2e-beta-one"}, testbed.CapsuleUsersGroup, "e2e-beta-owners")
	robot := newNamespaceOwner(t, ctx, robotSA, "e2e-beta", []string{"e2e-beta-two"})
	owners := []*namespaceOwner{ann, ben, robot}

	// Owners create their namespaces through the proxy (forwarded as them; Capsule assigns them).
	for _, o := range owners {
		for _, ns := range o.creates {
			createNamespaceThroughProxy(t, ctx, o, ns)
		}
	}
	want := map[string][]string{
		"e2e-alpha": {"e2e-alpha-one", "e2e-alpha-two"},
		"e2e-beta":  {"e2e-beta-one", "e2e-beta-two"},
	}
	// The Tenants' resource versions, once their status lists the namespaces, are what the proxy's caches
	// must have reached.
	tenantRV := map[string]string{}
	for tenant, namespaces := range want {
		tenantRV[tenant] = waitTenantStatusLists(t, ctx, admin, tenant, namespaces...)
	}

	for _, o := range owners {
		t.Run(o.name, func(t *testing.T) {
			own := want[o.tenant]
			other := want["e2e-alpha"]
			if o.tenant == "e2e-alpha" {
				other = want["e2e-beta"]
			}
			syncProxyCaches(t, ctx, o, tenantRV[o.tenant])
			assertOwnNamespaces(t, ctx, o, own, other)
		})
	}

	t.Run("watch", func(t *testing.T) {
		watchOwnNamespaces(t, ctx, admin, ann, ben)
	})
}

func newNamespaceOwner(t *testing.T, ctx context.Context, name, tenant string, creates []string, groups ...string) *namespaceOwner {
	t.Helper()
	dir := t.TempDir()
	o := &namespaceOwner{name: name, tenant: tenant, creates: creates,
		proxyKubeconfig: filepath.Join(dir, "proxy.kubeconfig"), directKubeconfig: filepath.Join(dir, "direct.kubeconfig")}
	var certPEM, keyPEM []byte
	var token string
	var err error
	if namespace, sa, splitErr := serviceaccount.SplitUsername(name); splitErr == nil {
		token, err = env.cluster.ServiceAccountToken(ctx, namespace, sa, time.Hour)
		env.secrets[name+" token"] = token
	} else {
		certPEM, keyPEM, err = env.cluster.CA.IssueClientCert(name, groups...)
		env.secrets[name+" private key"] = string(keyPEM)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.WriteKubeconfig(o.proxyKubeconfig, env.proxy.URL, env.proxy.CAFile, name, certPEM, keyPEM, token); err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.WriteKubeconfig(o.directKubeconfig, env.cluster.URL, env.cluster.CAFile, name, certPEM, keyPEM, token); err != nil {
		t.Fatal(err)
	}
	o.proxyConfig = &rest.Config{Host: env.proxy.URL, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: env.proxy.CAFile, CertData: certPEM, KeyData: keyPEM}}
	return o
}

func (o *namespaceOwner) kubectl(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	return env.cluster.Kubectl(ctx, o.proxyKubeconfig, args...)
}

// createNamespaceThroughProxy creates a namespace with kubectl through the proxy. Capsule may refuse for a moment
// after its configuration changed (its provisioner binding follows the Capsule users), so a refusal is retried.
func createNamespaceThroughProxy(t *testing.T, ctx context.Context, o *namespaceOwner, name string) {
	t.Helper()
	pollFor(t, ctx, o.name+" to create namespace "+name, func(ctx context.Context) (bool, error) {
		out, err := o.kubectl(t, ctx, "create", "namespace", name)
		if err == nil || strings.Contains(out, "AlreadyExists") {
			return true, nil
		}
		return false, fmt.Errorf("%s", strings.TrimSpace(out))
	})
}

// waitTenantStatusLists waits for the Capsule controller to list the namespaces in the Tenant's status.
func waitTenantStatusLists(t *testing.T, ctx context.Context, admin dynamic.Interface, tenant string, namespaces ...string) string {
	t.Helper()
	var rv string
	pollFor(t, ctx, "tenant "+tenant+" to list "+strings.Join(namespaces, ","), func(ctx context.Context) (bool, error) {
		tnt, err := admin.Resource(nsTestTenants).Get(ctx, tenant, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		listed, _, _ := unstructured.NestedStringSlice(tnt.Object, "status", "namespaces")
		rv = tnt.GetResourceVersion()
		for _, ns := range namespaces {
			if !slices.Contains(listed, ns) {
				return false, fmt.Errorf("status lists %v", listed)
			}
		}
		return true, nil
	})
	return rv
}

// assertOwnNamespaces checks every way kubectl and client-go read namespaces through the proxy.
func assertOwnNamespaces(t *testing.T, ctx context.Context, o *namespaceOwner, own, other []string) {
	out, err := o.kubectl(t, ctx, "get", "namespaces")
	if err != nil {
		t.Fatalf("kubectl get ns: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if header := strings.Fields(lines[0]); !slices.Equal(header, []string{"NAME", "STATUS", "AGE"}) {
		t.Errorf("table header %v, want NAME STATUS AGE", header)
	}
	var tableNames []string
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		tableNames = append(tableNames, fields[0])
		if fields[1] != "Active" {
			t.Errorf("row %q, want status Active", line)
		}
	}
	assertSameNames(t, "get ns", tableNames, own)

	out, err = o.kubectl(t, ctx, "get", "namespaces", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get ns -o name: %v", err)
	}
	assertSameNames(t, "get ns -o name", namesWithPrefix(out, "namespace/"), own)

	out, err = o.kubectl(t, ctx, "get", "namespaces", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get ns -o json: %v", err)
	}
	var list corev1.NamespaceList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("get ns -o json: %v: %s", err, out)
	}
	assertSameNames(t, "get ns -o json", namespaceListNames(list.Items), own)

	out, err = o.kubectl(t, ctx, "get", "namespaces", "-o", "yaml")
	if err != nil || strings.Count(out, "\n  kind: Namespace\n") != len(own) {
		t.Errorf("get ns -o yaml: %v\n%s", err, out)
	}

	protobuf := rest.CopyConfig(o.proxyConfig)
	protobuf.ContentType, protobuf.AcceptContentTypes = runtime.ContentTypeProtobuf, runtime.ContentTypeProtobuf
	client, err := kubernetes.NewForConfig(protobuf)
	if err != nil {
		t.Fatal(err)
	}
	pbList, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("protobuf list: %v", err)
	}
	assertSameNames(t, "protobuf list", namespaceListNames(pbList.Items), own)

	for _, name := range own {
		out, err := o.kubectl(t, ctx, "get", "namespace", name)
		if err != nil || !strings.Contains(out, name) || !strings.Contains(out, "Active") {
			t.Errorf("get ns %s: %v\n%s", name, err, out)
		}
	}

	// Another tenant's namespace, and one of no tenant, answer exactly like one that does not exist.
	missing, _ := o.kubectl(t, ctx, "get", "namespace", "e2e-no-such-namespace")
	if !strings.Contains(missing, `(NotFound): namespaces "e2e-no-such-namespace" not found`) {
		t.Fatalf("nonexistent namespace: %s", missing)
	}
	for _, name := range append(slices.Clone(other), "kube-system", "default") {
		got, err := o.kubectl(t, ctx, "get", "namespace", name)
		if want := strings.ReplaceAll(missing, "e2e-no-such-namespace", name); err == nil || got != want {
			t.Errorf("get ns %s = %q, want %q", name, got, want)
		}
		if _, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("protobuf get %s: %v, want NotFound", name, err)
		}
	}

	// Byte for byte what the API server itself answers: its NotFound for a missing namespace, its columns.
	adminREST := env.cluster.AdminClient.CoreV1().RESTClient()
	for _, accept := range []string{"application/json", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"} {
		apiServer, _ := adminREST.Get().AbsPath("/api/v1/namespaces/e2e-no-such-namespace").SetHeader("Accept", accept).DoRaw(ctx)
		proxied, _ := client.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces/"+other[0]).SetHeader("Accept", accept).DoRaw(ctx)
		if want := strings.ReplaceAll(string(apiServer), "e2e-no-such-namespace", other[0]); string(proxied) != want {
			t.Errorf("Accept %s: another tenant's namespace answers\n%s\nthe API server answers a missing one\n%s", accept, proxied, want)
		}
	}
	tableAccept := "application/json;as=Table;v=v1;g=meta.k8s.io"
	apiServerTable, err := adminREST.Get().AbsPath("/api/v1/namespaces").SetHeader("Accept", tableAccept).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxiedTable, err := client.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces").SetHeader("Accept", tableAccept).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var apiServerColumns, proxiedColumns metav1.Table
	_ = json.Unmarshal(apiServerTable, &apiServerColumns)
	_ = json.Unmarshal(proxiedTable, &proxiedColumns)
	if a, p := fmt.Sprint(apiServerColumns.ColumnDefinitions), fmt.Sprint(proxiedColumns.ColumnDefinitions); a != p || a == "[]" {
		t.Errorf("Table columns through the proxy %s, from the API server %s", p, a)
	}

	// Selectors that try to widen the result only narrow it.
	for _, args := range [][]string{
		{"-l", "capsule.clastix.io/tenant notin (" + o.tenant + ")"},
		{"-l", "!capsule.clastix.io/tenant"},
		{"-l", "capsule.clastix.io/tenant"},
		{"--field-selector", "metadata.name=kube-system"},
		{"--field-selector", "metadata.name!=" + own[0]},
	} {
		out, err := o.kubectl(t, ctx, append([]string{"get", "namespaces", "-o", "name"}, args...)...)
		if err != nil {
			t.Errorf("get ns %v: %v", args, err)
		}
		for _, name := range namesWithPrefix(out, "namespace/") {
			if !slices.Contains(own, name) {
				t.Errorf("get ns %v shows %s, which is not %s's", args, name, o.name)
			}
		}
	}

	// Directly, RBAC does not let a tenant owner list namespaces: that is what the proxy is for.
	direct, err := env.cluster.Kubectl(ctx, o.directKubeconfig, "get", "namespaces")
	if err == nil || !strings.Contains(direct, "Forbidden") {
		t.Errorf("direct list as %s: %v\n%s", o.name, err, direct)
	}
}

// syncProxyCaches lists through the proxy at resource version rv, which the proxy answers only once its
// caches have caught up with it: after that, what Capsule wrote up to rv is what the proxy serves.
func syncProxyCaches(t *testing.T, ctx context.Context, o *namespaceOwner, rv string) {
	t.Helper()
	client, err := kubernetes.NewForConfig(o.proxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{ResourceVersion: rv}); err != nil {
		t.Fatalf("list through the proxy at resource version %s: %v", rv, err)
	}
}

// watchOwnNamespaces runs `kubectl get ns -w` as ann while ben and ann create namespaces: ann's watch shows
// her new namespace and never ben's.
func watchOwnNamespaces(t *testing.T, ctx context.Context, admin dynamic.Interface, ann, ben *namespaceOwner) {
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := exec.CommandContext(watchCtx, filepath.Join(env.cluster.BinDir, "kubectl"), "--kubeconfig="+ann.proxyKubeconfig, "get", "namespaces", "-w")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); _ = cmd.Wait() }()
	rows := make(chan string)
	go func() {
		defer close(rows)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			rows <- scanner.Text()
		}
	}()
	seen := map[string]bool{}
	// readUntil collects rows until name has appeared; any row of a namespace not ann's fails the test.
	readUntil := func(name string) {
		t.Helper()
		timeout := time.After(time.Minute)
		for !seen[name] {
			select {
			case row, ok := <-rows:
				if !ok {
					t.Fatalf("kubectl get ns -w ended before %s appeared: %s", name, stderr.String())
				}
				fields := strings.Fields(row)
				if len(fields) == 0 || fields[0] == "NAME" {
					continue
				}
				if !strings.HasPrefix(fields[0], "e2e-alpha-") {
					t.Errorf("ann's watch shows %q", row)
				}
				seen[fields[0]] = true
			case <-timeout:
				t.Fatalf("%s did not appear in the watch; rows so far %v; stderr %s", name, seen, stderr.String())
			}
		}
	}
	readUntil("e2e-alpha-one")
	readUntil("e2e-alpha-two")

	// ben's new namespace is in the proxy's caches before ann's is created: had it leaked into ann's watch,
	// it would have appeared before hers.
	createNamespaceThroughProxy(t, ctx, ben, "e2e-beta-three")
	syncProxyCaches(t, ctx, ben, waitTenantStatusLists(t, ctx, admin, "e2e-beta", "e2e-beta-three"))
	createNamespaceThroughProxy(t, ctx, ann, "e2e-alpha-three")
	readUntil("e2e-alpha-three")
	if seen["e2e-beta-three"] {
		t.Error("ann's watch showed ben's namespace")
	}
}

func pollFor(t *testing.T, ctx context.Context, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		done, err := cond(ctx)
		last = err
		return done, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %v)", what, err, last)
	}
}

func subjectListed(obj *unstructured.Unstructured, name string, path ...string) bool {
	list, _, _ := unstructured.NestedSlice(obj.Object, path...)
	for _, item := range list {
		if m, ok := item.(map[string]any); ok && m["name"] == name {
			return true
		}
	}
	return false
}

func assertSameNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: %v, want exactly %v", what, got, want)
	}
}

func namesWithPrefix(out, prefix string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			names = append(names, name)
		}
	}
	return names
}

func namespaceListNames(items []corev1.Namespace) []string {
	var names []string
	for _, ns := range items {
		names = append(names, ns.Name)
	}
	return names
}
