package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const allNamespacesTenant = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-allns
spec:
  owners:
  - kind: User
    name: allns-owner
---
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: e2e-allns-other
spec:
  owners:
  - kind: User
    name: allns-other-owner
`

// TestAllNamespaces: a tenant owner's `kubectl get configmaps -A` through the proxy lists the ConfigMaps of
// exactly their namespaces, each asked of the API server as the owner in that namespace; directly the API
// server refuses the same list.
func TestAllNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.ApplyYAML(ctx, []byte(allNamespacesTenant)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Resource(nsTestTenants).Delete(context.Background(), "e2e-allns", metav1.DeleteOptions{})
		_ = admin.Resource(nsTestTenants).Delete(context.Background(), "e2e-allns-other", metav1.DeleteOptions{})
	})
	own := []string{"e2e-allns-one", "e2e-allns-two"}
	owner := newNamespaceOwner(t, ctx, "allns-owner", "e2e-allns", own, testbed.CapsuleUsersGroup)
	for _, ns := range own {
		createNamespaceThroughProxy(t, ctx, owner, ns)
	}
	syncProxyCaches(t, ctx, owner, waitTenantStatusLists(t, ctx, admin, "e2e-allns", own...))
	other := newNamespaceOwner(t, ctx, "allns-other-owner", "e2e-allns-other", []string{"e2e-allns-other-one"}, testbed.CapsuleUsersGroup)
	createNamespaceThroughProxy(t, ctx, other, "e2e-allns-other-one")
	syncProxyCaches(t, ctx, owner, waitTenantStatusLists(t, ctx, admin, "e2e-allns-other", "e2e-allns-other-one"))

	// A ConfigMap in each namespace, created through the proxy as the owner once Capsule has bound them there;
	// kube-controller-manager adds kube-root-ca.crt to every namespace.
	want := map[string]bool{}
	for _, ns := range own {
		name := "allns-cm-" + strings.TrimPrefix(ns, "e2e-allns-")
		pollFor(t, ctx, "configmap "+ns+"/"+name, func(ctx context.Context) (bool, error) {
			out, err := owner.kubectl(t, ctx, "-n", ns, "create", "configmap", name, "--from-literal=k=v")
			if err == nil || strings.Contains(out, "AlreadyExists") {
				return true, nil
			}
			return false, fmt.Errorf("%s", strings.TrimSpace(out))
		})
		want[ns+"/"+name] = true
		want[ns+"/kube-root-ca.crt"] = true
	}
	wantList := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})

	t.Run("table", func(t *testing.T) {
		var got []string
		pollFor(t, ctx, "the owner's ConfigMaps in every namespace", func(ctx context.Context) (bool, error) {
			out, err := owner.kubectl(t, ctx, "get", "configmaps", "-A")
			if err != nil {
				return false, fmt.Errorf("kubectl get configmaps -A: %v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if header := strings.Fields(lines[0]); len(header) < 2 || header[0] != "NAMESPACE" || header[1] != "NAME" {
				t.Fatalf("table header %v, want NAMESPACE NAME ...", header)
			}
			got = nil
			for _, line := range lines[1:] {
				fields := strings.Fields(line)
				if !slices.Contains(own, fields[0]) {
					t.Fatalf("the owner's table shows %q from another namespace", line)
				}
				got = append(got, fields[0]+"/"+fields[1])
			}
			slices.Sort(got)
			return slices.Equal(got, wantList), fmt.Errorf("rows %v", got)
		})
	})

	t.Run("name", func(t *testing.T) {
		out, err := owner.kubectl(t, ctx, "get", "configmaps", "-A", "-o", "name")
		if err != nil {
			t.Fatalf("kubectl get configmaps -A -o name: %v: %s", err, out)
		}
		var wantNames []string
		for _, k := range wantList {
			wantNames = append(wantNames, "configmap/"+k[strings.Index(k, "/")+1:])
		}
		assertSameNames(t, "kubectl get configmaps -A -o name", strings.Fields(out), wantNames)
	})

	t.Run("json names the namespaces, each asked as the owner", func(t *testing.T) {
		status, auditID, body := do(t, rawClient(t, &identity{proxyConfig: owner.proxyConfig}), http.MethodGet,
			"/api/v1/configmaps?limit=1", http.Header{"Accept": {"application/json"}}, "")
		if status != http.StatusOK {
			t.Fatalf("GET /api/v1/configmaps: %d %s", status, body)
		}
		var list struct {
			Metadata metav1.ListMeta `json:"metadata"`
			Items    []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, item := range list.Items {
			got = append(got, item.Metadata.Namespace+"/"+item.Metadata.Name)
		}
		assertSameNames(t, "items", got, wantList)
		// One cut: every namespace listed at the resource version the merged list reports.
		if list.Metadata.Continue != "" || list.Metadata.ResourceVersion == "" {
			t.Errorf("merged list metadata %+v, want a resource version and no continue", list.Metadata)
		}
		events := apiServerEvents(t, auditID, len(own))
		var uris []string
		for _, e := range events {
			if e.Stage != "ResponseComplete" {
				continue
			}
			if e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != owner.name {
				t.Errorf("API server was asked %s not as the owner: %+v", e.RequestURI, e)
			}
			uris = append(uris, strings.Split(e.RequestURI, "?")[0])
		}
		assertSameNames(t, "requests the API server received", uris,
			[]string{"/api/v1/namespaces/e2e-allns-one/configmaps", "/api/v1/namespaces/e2e-allns-two/configmaps"})
	})

	t.Run("watch", func(t *testing.T) {
		watchAllNamespaces(t, ctx, owner, own, wantList, "e2e-allns-other-one")
	})

	t.Run("watch: each namespace asked as the owner", func(t *testing.T) {
		status, auditID, body := do(t, rawClient(t, &identity{proxyConfig: owner.proxyConfig}), http.MethodGet,
			"/api/v1/configmaps?watch=true&timeoutSeconds=1", http.Header{"Accept": {"application/json"}}, "")
		if status != http.StatusOK {
			t.Fatalf("watch /api/v1/configmaps: %d %s", status, body)
		}
		var uris []string
		// Each watch's ResponseStarted and ResponseComplete.
		for _, e := range apiServerEvents(t, auditID, 2*len(own)) {
			if e.Stage != "ResponseComplete" {
				continue
			}
			if e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != owner.name || e.Verb != "watch" {
				t.Errorf("API server was asked %s (%s) not as the owner: %+v", e.RequestURI, e.Verb, e)
			}
			uris = append(uris, strings.Split(e.RequestURI, "?")[0])
		}
		assertSameNames(t, "watches the API server received", uris,
			[]string{"/api/v1/namespaces/e2e-allns-one/configmaps", "/api/v1/namespaces/e2e-allns-two/configmaps"})
	})

	t.Run("protobuf watch is not acceptable", func(t *testing.T) {
		status, _, body := do(t, rawClient(t, &identity{proxyConfig: owner.proxyConfig}), http.MethodGet,
			"/api/v1/configmaps?watch=true", http.Header{"Accept": {"application/vnd.kubernetes.protobuf;stream=watch"}}, "")
		if status != http.StatusNotAcceptable {
			t.Fatalf("protobuf-only watch: %d %q", status, body)
		}
	})

	t.Run("protobuf only is not acceptable", func(t *testing.T) {
		status, _, body := do(t, rawClient(t, &identity{proxyConfig: owner.proxyConfig}), http.MethodGet,
			"/api/v1/configmaps", http.Header{"Accept": {"application/vnd.kubernetes.protobuf"}}, "")
		if status != http.StatusNotAcceptable {
			t.Fatalf("protobuf-only list: %d %q", status, body)
		}
	})

	t.Run("client-go watch ends when a namespace joins the tenant", func(t *testing.T) {
		watchUntilNamespaceJoins(t, ctx, admin, owner, own)
	})

	t.Run("directly the API server refuses", func(t *testing.T) {
		out, err := env.cluster.Kubectl(ctx, owner.directKubeconfig, "get", "configmaps", "-A")
		if err == nil || !strings.Contains(strings.ToLower(out), "forbidden") {
			t.Fatalf("direct kubectl get configmaps -A as the owner: %v: %s", err, out)
		}
	})
}

// watchAllNamespaces runs `kubectl get configmaps -A -w --output-watch-events` as the owner: the list shows
// initial exactly once (the watch starts at the list's resource version, so nothing listed comes again), then
// a ConfigMap created in each of the owner's namespaces arrives as ADDED, and one created in another
// tenant's namespace (before the second of them) never does.
func watchAllNamespaces(t *testing.T, ctx context.Context, owner *namespaceOwner, own, initial []string, otherNamespace string) {
	client, err := kubernetes.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := exec.CommandContext(watchCtx, filepath.Join(env.cluster.BinDir, "kubectl"), "--kubeconfig="+owner.proxyKubeconfig,
		"get", "configmaps", "-A", "-w", "--output-watch-events")
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
	seen := map[string]int{}
	// read collects rows (EVENT NAMESPACE NAME ...) until every one of want has appeared, or for d when want
	// is empty; a row of another namespace, or a repeated one, fails the test.
	read := func(want []string, d time.Duration) {
		t.Helper()
		timeout := time.After(d)
		for {
			done := len(want) > 0
			for _, w := range want {
				done = done && seen[w] > 0
			}
			if done {
				return
			}
			select {
			case row, ok := <-rows:
				if !ok {
					t.Fatalf("kubectl get configmaps -A -w ended: %v; stderr %s", seen, stderr.String())
				}
				fields := strings.Fields(row)
				if len(fields) < 3 || fields[0] == "EVENT" {
					continue
				}
				if fields[0] != "ADDED" || !slices.Contains(own, fields[1]) {
					t.Errorf("the owner's watch shows %q", row)
				}
				key := fields[1] + "/" + fields[2]
				if seen[key]++; seen[key] > 1 {
					t.Errorf("the owner's watch shows %s again: %q", key, row)
				}
			case <-timeout:
				if len(want) > 0 {
					t.Fatalf("%v did not all appear in the watch; rows so far %v; stderr %s", want, seen, stderr.String())
				}
				return
			}
		}
	}
	read(initial, time.Minute)

	create := func(ns, name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create configmap %s/%s: %v", ns, name, err)
		}
		t.Cleanup(func() { _ = client.CoreV1().ConfigMaps(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	create(own[0], "allns-watch-one")
	create(otherNamespace, "allns-watch-other")
	create(own[1], "allns-watch-two")
	read([]string{own[0] + "/allns-watch-one", own[1] + "/allns-watch-two"}, time.Minute)
	read(nil, 2*time.Second) // anything else the watch would show
	if seen[otherNamespace+"/allns-watch-other"] > 0 {
		t.Error("the owner's watch showed another tenant's ConfigMap")
	}
	if len(seen) != len(initial)+2 {
		t.Errorf("the owner's watch shows %v, want the %d listed and the 2 new ConfigMaps", seen, len(initial))
	}
}

// watchUntilNamespaceJoins: client-go's list and watch across all namespaces through the proxy, with
// bookmarks: an event arrives, then the owner creates a third namespace and the watch ends, so that an
// informer re-lists and sees it.
func watchUntilNamespaceJoins(t *testing.T, ctx context.Context, admin dynamic.Interface, owner *namespaceOwner, own []string) {
	client, err := kubernetes.NewForConfig(owner.proxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	list, err := client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list configmaps across all namespaces through the proxy: %v", err)
	}
	w, err := client.CoreV1().ConfigMaps("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatalf("watch configmaps across all namespaces through the proxy: %v", err)
	}
	defer w.Stop()
	adminClient, err := kubernetes.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "allns-client-go"}}
	if _, err := adminClient.CoreV1().ConfigMaps(own[1]).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adminClient.CoreV1().ConfigMaps(own[1]).Delete(context.Background(), cm.Name, metav1.DeleteOptions{})
	})
	timeout := time.After(time.Minute)
	for added := false; !added; {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch ended before the ConfigMap arrived")
			}
			got, isCM := e.Object.(*corev1.ConfigMap)
			if !isCM {
				t.Fatalf("event %s of %T", e.Type, e.Object)
			}
			if e.Type != watch.Bookmark && !slices.Contains(own, got.Namespace) {
				t.Errorf("the owner's watch shows %s %s/%s", e.Type, got.Namespace, got.Name)
			}
			added = e.Type == watch.Added && got.Namespace == own[1] && got.Name == cm.Name
		case <-timeout:
			t.Fatal("the ConfigMap did not arrive")
		}
	}

	select {
	case e, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch ended before the namespace was created")
		}
		t.Logf("event %s before the namespace was created", e.Type)
	default:
	}
	createNamespaceThroughProxy(t, ctx, owner, "e2e-allns-three")
	for {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				waitTenantStatusLists(t, ctx, admin, "e2e-allns", append(slices.Clone(own), "e2e-allns-three")...)
				return
			}
			if e.Type == watch.Error {
				t.Fatalf("error event %v", e.Object)
			}
		case <-timeout:
			t.Fatal("the watch did not end when a namespace joined the tenant")
		}
	}
}
