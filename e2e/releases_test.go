package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// userTenant is a Tenant owned by one user. Capsule makes the owner the admin of the namespaces they create
// (the "admin" ClusterRole: no cluster-scoped writes, resource quotas read-only).
func userTenant(name, owner string) string {
	return fmt.Sprintf("apiVersion: capsule.clastix.io/v1beta2\nkind: Tenant\nmetadata:\n  name: %s\nspec:\n  owners:\n  - kind: User\n    name: %s\n---\n", name, owner)
}

const demoConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
`

// releaseTestCharts are the charts the test repository serves: file name to content per chart.
var releaseTestCharts = []testChart{
	{Name: "demo", Version: "0.1.0", Files: map[string]string{
		"values.yaml":              "greeting: hello\n",
		"templates/configmap.yaml": demoConfigMap,
	}},
	{Name: "clusterwide", Version: "0.1.0", Files: map[string]string{
		"templates/configmap.yaml": demoConfigMap,
		"templates/role.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Release.Name }}-reader
rules: []
`,
	}},
	{Name: "hooked", Version: "0.1.0", Files: map[string]string{
		"templates/configmap.yaml": demoConfigMap,
		"templates/quota.yaml": `apiVersion: v1
kind: ResourceQuota
metadata:
  name: {{ .Release.Name }}-quota
  annotations:
    helm.sh/hook: pre-install
spec:
  hard:
    pods: "10"
`,
	}},
	{Name: "withcrd", Version: "0.1.0", Files: map[string]string{
		"crds/widgets.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.example.com
spec:
  group: e2e.example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`,
		"templates/configmap.yaml": demoConfigMap,
		"templates/widget.yaml": `apiVersion: e2e.example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
`,
	}},
	// peek renders with lookup: whether ConfigMap "seed" exists in the release namespace.
	{Name: "peek", Version: "0.1.0", Files: map[string]string{
		"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  found: {{ if lookup "v1" "ConfigMap" .Release.Namespace "seed" }}"yes"{{ else }}"no"{{ end }}
`,
	}},
	// secretive renders a Secret from the values.
	{Name: "secretive", Version: "0.1.0", Files: map[string]string{
		"templates/secret.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-secret
stringData:
  password: {{ .Values.password | quote }}
`,
	}},
	// failing applies one good ConfigMap and one the API server rejects (an invalid data key).
	{Name: "failing", Version: "0.1.0", Files: map[string]string{
		"templates/configmap.yaml": demoConfigMap,
		"templates/bad.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-bad
data:
  "not a valid key!": "x"
`,
	}},
}

// releaseAPI is a tenant owner's HTTP client of the release API.
type releaseAPI struct {
	owner  *namespaceOwner
	base   string // the proxy's URL
	client *http.Client
}

// newReleaseAPI is o's client of the proxy at base.
func newReleaseAPI(t *testing.T, o *namespaceOwner, base string) *releaseAPI {
	t.Helper()
	tr, err := rest.TransportFor(o.proxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	return &releaseAPI{owner: o, base: base, client: &http.Client{Transport: tr, Timeout: 3 * time.Minute}}
}

// call sends one request and returns the status, the Audit-Id and the body.
func (a *releaseAPI) call(t *testing.T, method, path string, body any) (int, string, string) {
	t.Helper()
	var text string
	switch b := body.(type) {
	case nil:
	case string:
		text = b
	default:
		text = mustJSON(t, b)
	}
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Audit-Id"), string(data)
}

// releaseSummary is the part of a release answer the test reads.
type releaseSummary struct {
	Name         string         `json:"name"`
	Namespace    string         `json:"namespace"`
	Version      int            `json:"version"`
	Status       string         `json:"status"`
	Chart        string         `json:"chart"`
	ChartVersion string         `json:"chartVersion"`
	Manifest     string         `json:"manifest"`
	Values       map[string]any `json:"values"`
}

type forbiddenEntry struct {
	APIGroup    string   `json:"apiGroup"`
	Resource    string   `json:"resource"`
	Namespace   string   `json:"namespace"`
	ClusterWide bool     `json:"clusterWide"`
	Verbs       []string `json:"verbs"`
}

type apiErrorBody struct {
	Code      int              `json:"code"`
	Message   string           `json:"message"`
	Forbidden []forbiddenEntry `json:"forbidden"`
}

func decodeData[T any](t *testing.T, body string) T {
	t.Helper()
	var out struct {
		Data T `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("answer is not {\"data\": ...}: %v\n%s", err, body)
	}
	return out.Data
}

func decodeAPIError(t *testing.T, code int, body string) apiErrorBody {
	t.Helper()
	var e apiErrorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error answer is not JSON: %v\n%s", err, body)
	}
	if e.Code != code {
		t.Errorf("error body code %d, HTTP status %d", e.Code, code)
	}
	return e
}

func installBody(repoURL, chart, release, values string) map[string]string {
	return map[string]string{"chartName": chart, "releaseName": release, "version": "0.1.0", "values": values, "repoUrl": repoURL}
}

// TestReleases: a tenant owner installs, lists, reads, upgrades, rolls back and deletes a release through the
// release API; every API server call of it is made as the owner. What they may not do is refused up front
// with exactly the missing permissions, and nothing is created.
func TestReleases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admin, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	kube := env.cluster.AdminClient
	if err := env.cluster.ApplyYAML(ctx, []byte(userTenant("rel-alpha", "rel-ann")+userTenant("rel-beta", "rel-ben"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, name := range []string{"rel-alpha", "rel-beta"} {
			_ = admin.Resource(nsTestTenants).Delete(ctx, name, metav1.DeleteOptions{})
		}
	})
	ann := newNamespaceOwner(t, ctx, "rel-ann", "rel-alpha", []string{"rel-alpha-one"}, testbed.CapsuleUsersGroup)
	ben := newNamespaceOwner(t, ctx, "rel-ben", "rel-beta", []string{"rel-beta-one"}, testbed.CapsuleUsersGroup)
	for _, o := range []*namespaceOwner{ann, ben} {
		createNamespaceThroughProxy(t, ctx, o, o.creates[0])
		syncProxyCaches(t, ctx, o, waitTenantStatusLists(t, ctx, admin, o.tenant, o.creates[0]))
	}
	annAPI, benAPI := newReleaseAPI(t, ann, env.proxy.URL), newReleaseAPI(t, ben, env.proxy.URL)
	repoURL := serveTestCharts(t, releaseTestCharts)
	annNS, benNS := "rel-alpha-one", "rel-beta-one"
	annReleases := "/v1/namespaces/" + annNS + "/releases"

	configMapGreeting := func(t *testing.T, ns, name string) (string, bool) {
		t.Helper()
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["greeting"], true
	}

	t.Run("install", func(t *testing.T) {
		code, auditID, body := annAPI.call(t, http.MethodPost, annReleases, installBody(repoURL, "demo", "web", "greeting: hi\n"))
		if code != http.StatusCreated {
			t.Fatalf("install: %d %s", code, body)
		}
		rel := decodeData[releaseSummary](t, body)
		if rel.Name != "web" || rel.Namespace != annNS || rel.Version != 1 || rel.Status != "deployed" || rel.Chart != "demo" || rel.ChartVersion != "0.1.0" {
			t.Errorf("installed release: %+v", rel)
		}
		if greeting, ok := configMapGreeting(t, annNS, "web-config"); !ok || greeting != "hi" {
			t.Errorf("web-config greeting %q (exists %v), want hi", greeting, ok)
		}
		if _, err := kube.CoreV1().Secrets(annNS).Get(ctx, "sh.helm.release.v1.web.v1", metav1.GetOptions{}); err != nil {
			t.Errorf("Helm's release record: %v", err)
		}
		assertCreatedAs(t, auditID, ann.name, []string{"configmaps/web-config", "secrets/sh.helm.release.v1.web.v1"})
	})

	t.Run("a second install is a conflict", func(t *testing.T) {
		code, _, body := annAPI.call(t, http.MethodPost, annReleases, installBody(repoURL, "demo", "web", ""))
		if code != http.StatusConflict {
			t.Fatalf("second install: %d %s", code, body)
		}
		decodeAPIError(t, code, body)
	})

	t.Run("ben installs in his namespace", func(t *testing.T) {
		code, _, body := benAPI.call(t, http.MethodPost, "/v1/namespaces/"+benNS+"/releases", installBody(repoURL, "demo", "api", ""))
		if code != http.StatusCreated {
			t.Fatalf("install: %d %s", code, body)
		}
	})

	t.Run("lists show each owner only their releases", func(t *testing.T) {
		for _, tc := range []struct {
			api  *releaseAPI
			path string
			want []string
		}{
			{annAPI, "/v1/releases", []string{annNS + "/web"}},
			{benAPI, "/v1/releases", []string{benNS + "/api"}},
			{annAPI, annReleases, []string{annNS + "/web"}},
			{annAPI, "/v1/namespaces/" + benNS + "/releases", nil},
		} {
			code, _, body := tc.api.call(t, http.MethodGet, tc.path, nil)
			if code != http.StatusOK {
				t.Fatalf("%s as %s: %d %s", tc.path, tc.api.owner.name, code, body)
			}
			var got []string
			for _, r := range decodeData[[]releaseSummary](t, body) {
				got = append(got, r.Namespace+"/"+r.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s as %s lists %v, want %v", tc.path, tc.api.owner.name, got, tc.want)
			}
		}
	})

	t.Run("get", func(t *testing.T) {
		code, _, body := annAPI.call(t, http.MethodGet, annReleases+"/web", nil)
		if code != http.StatusOK {
			t.Fatalf("get: %d %s", code, body)
		}
		rel := decodeData[releaseSummary](t, body)
		if rel.Version != 1 || !strings.Contains(rel.Manifest, "greeting: \"hi\"") || rel.Values["greeting"] != "hi" {
			t.Errorf("release: %+v", rel)
		}
		// Another owner's release answers like one that does not exist.
		code, _, body = annAPI.call(t, http.MethodGet, "/v1/namespaces/"+benNS+"/releases/api", nil)
		if code != http.StatusNotFound {
			t.Errorf("ben's release as ann: %d %s", code, body)
		}
		code, _, body = annAPI.call(t, http.MethodGet, annReleases+"/nothing", nil)
		if code != http.StatusNotFound {
			t.Errorf("absent release: %d %s", code, body)
		}
		decodeAPIError(t, code, body)
	})

	t.Run("upgrade", func(t *testing.T) {
		code, auditID, body := annAPI.call(t, http.MethodPut, annReleases+"/web", installBody(repoURL, "demo", "web", "greeting: bye\n"))
		if code != http.StatusOK {
			t.Fatalf("upgrade: %d %s", code, body)
		}
		if rel := decodeData[releaseSummary](t, body); rel.Version != 2 || rel.Status != "deployed" {
			t.Errorf("upgraded release: %+v", rel)
		}
		if greeting, _ := configMapGreeting(t, annNS, "web-config"); greeting != "bye" {
			t.Errorf("web-config greeting %q after upgrade, want bye", greeting)
		}
		assertCreatedAs(t, auditID, ann.name, []string{"secrets/sh.helm.release.v1.web.v2"})
	})

	t.Run("concurrent upgrades are serialised", func(t *testing.T) {
		var wg sync.WaitGroup
		codes := make([]int, 2)
		bodies := make([]string, 2)
		for i, greeting := range []string{"one", "two"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _, bodies[i] = annAPI.call(t, http.MethodPut, annReleases+"/web", installBody(repoURL, "demo", "web", "greeting: "+greeting+"\n"))
			}()
		}
		wg.Wait()
		var versions []int
		for i := range codes {
			if codes[i] != http.StatusOK {
				t.Fatalf("concurrent upgrade %d: %d %s", i, codes[i], bodies[i])
			}
			versions = append(versions, decodeData[releaseSummary](t, bodies[i]).Version)
		}
		slices.Sort(versions)
		if !slices.Equal(versions, []int{3, 4}) {
			t.Errorf("concurrent upgrades made revisions %v, want 3 and 4", versions)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		code, auditID, body := annAPI.call(t, http.MethodPut, annReleases+"/web?action=rollback&revision=1", nil)
		if code != http.StatusOK {
			t.Fatalf("rollback: %d %s", code, body)
		}
		if rel := decodeData[releaseSummary](t, body); rel.Version != 5 {
			t.Errorf("rolled back release: %+v", rel)
		}
		if greeting, _ := configMapGreeting(t, annNS, "web-config"); greeting != "hi" {
			t.Errorf("web-config greeting %q after rollback, want hi", greeting)
		}
		assertCreatedAs(t, auditID, ann.name, []string{"secrets/sh.helm.release.v1.web.v5"})
		code, _, body = annAPI.call(t, http.MethodPut, annReleases+"/web?action=rollback&revision=42", nil)
		if code != http.StatusNotFound {
			t.Errorf("rollback to a missing revision: %d %s", code, body)
		}
	})

	t.Run("lookup renders as the caller", func(t *testing.T) {
		seed := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "seed", Namespace: annNS}}
		if _, err := kube.CoreV1().ConfigMaps(annNS).Create(ctx, seed, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		code, auditID, body := annAPI.call(t, http.MethodPost, annReleases, installBody(repoURL, "peek", "peek", ""))
		if code != http.StatusCreated {
			t.Fatalf("install: %d %s", code, body)
		}
		cm, err := kube.CoreV1().ConfigMaps(annNS).Get(ctx, "peek-config", metav1.GetOptions{})
		if err != nil || cm.Data["found"] != "yes" {
			t.Fatalf("peek-config: %v %v; lookup did not see the seed", cm.Data, err)
		}
		assertCreatedAs(t, auditID, ann.name, []string{"configmaps/peek-config"})
		read := readAuditEvents(t, func(e auditEvent) bool {
			return e.AuditID == auditID && e.Verb == "get" && e.ObjectRef != nil && e.ObjectRef.Resource == "configmaps" && e.ObjectRef.Name == "seed"
		})
		if len(read) == 0 {
			t.Error("the API server recorded no read of the seed ConfigMap by the install")
		}
		if code, _, body := annAPI.call(t, http.MethodDelete, annReleases+"/peek?purge=true", nil); code != http.StatusOK {
			t.Errorf("delete: %d %s", code, body)
		}
	})

	t.Run("upgrades and deletes are refused up front too", func(t *testing.T) {
		code, _, body := annAPI.call(t, http.MethodPut, annReleases+"/web", installBody(repoURL, "clusterwide", "web", ""))
		if code != http.StatusForbidden {
			t.Fatalf("upgrade to a chart with a ClusterRole: %d %s", code, body)
		}
		want := []forbiddenEntry{{APIGroup: "rbac.authorization.k8s.io", Resource: "clusterroles", ClusterWide: true, Verbs: []string{"create", "get", "patch"}}}
		if e := decodeAPIError(t, code, body); !reflect.DeepEqual(e.Forbidden, want) {
			t.Errorf("upgrade forbidden: %+v, want %+v", e.Forbidden, want)
		}
		// Ben may not even read ann's release records: what is missing there is all he is told.
		code, _, body = benAPI.call(t, http.MethodDelete, annReleases+"/web?purge=true", nil)
		if code != http.StatusForbidden {
			t.Fatalf("ben deleting ann's release: %d %s", code, body)
		}
		want = []forbiddenEntry{{Resource: "secrets", Namespace: annNS, Verbs: []string{"delete", "list", "update"}}}
		if e := decodeAPIError(t, code, body); !reflect.DeepEqual(e.Forbidden, want) {
			t.Errorf("delete forbidden: %+v, want %+v", e.Forbidden, want)
		}
		code, _, body = annAPI.call(t, http.MethodGet, annReleases+"/web", nil)
		if rel := decodeData[releaseSummary](t, body); code != http.StatusOK || rel.Version != 5 || rel.Status != "deployed" {
			t.Errorf("web after refused operations: %d %+v", code, rel)
		}
	})

	t.Run("refused up front with exactly the missing permissions", func(t *testing.T) {
		for _, tc := range []struct {
			name, chart, namespace string
			want                   []forbiddenEntry
		}{
			{"another tenant's namespace", "demo", benNS, []forbiddenEntry{
				{Resource: "configmaps", Namespace: benNS, Verbs: []string{"create", "get", "patch"}},
				{Resource: "secrets", Namespace: benNS, Verbs: []string{"create", "delete", "list", "update"}},
			}},
			{"a ClusterRole", "clusterwide", annNS, []forbiddenEntry{
				{APIGroup: "rbac.authorization.k8s.io", Resource: "clusterroles", ClusterWide: true, Verbs: []string{"create", "get", "patch"}},
			}},
			// admin may read resource quotas (list, watch) but not write them.
			{"a hook", "hooked", annNS, []forbiddenEntry{
				{Resource: "resourcequotas", Namespace: annNS, Verbs: []string{"create", "delete", "patch"}},
			}},
			{"a CRD and its custom object", "withcrd", annNS, []forbiddenEntry{
				{APIGroup: "apiextensions.k8s.io", Resource: "customresourcedefinitions", ClusterWide: true, Verbs: []string{"create", "list", "patch", "watch"}},
				{APIGroup: "e2e.example.com", Resource: "widgets", Namespace: annNS, Verbs: []string{"create", "get", "patch"}},
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				release := "denied-" + tc.chart
				code, _, body := annAPI.call(t, http.MethodPost, "/v1/namespaces/"+tc.namespace+"/releases", installBody(repoURL, tc.chart, release, ""))
				if code != http.StatusForbidden {
					t.Fatalf("install: %d %s", code, body)
				}
				e := decodeAPIError(t, code, body)
				if !reflect.DeepEqual(e.Forbidden, tc.want) {
					t.Errorf("forbidden:\n got %+v\nwant %+v", e.Forbidden, tc.want)
				}
				var inMessage []forbiddenEntry
				if err := json.Unmarshal([]byte(e.Message), &inMessage); err != nil || !reflect.DeepEqual(inMessage, tc.want) {
					t.Errorf("message %q is not the same list (%v)", e.Message, err)
				}
				assertNothingOfRelease(t, ctx, kube, tc.namespace, release)
				if _, err := kube.RbacV1().ClusterRoles().Get(ctx, release+"-reader", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("ClusterRole of %s: %v", release, err)
				}
				crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
				if _, err := admin.Resource(crds).Get(ctx, "widgets.e2e.example.com", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("the chart's CRD: %v", err)
				}
			})
		}
	})

	t.Run("a failed install leaves nothing", func(t *testing.T) {
		code, _, body := annAPI.call(t, http.MethodPost, annReleases, installBody(repoURL, "failing", "broken", ""))
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("install: %d %s", code, body)
		}
		if e := decodeAPIError(t, code, body); !strings.Contains(e.Message, "broken-bad") || !strings.Contains(e.Message, "undone") {
			t.Errorf("message %q does not name the rejected object and the undo", e.Message)
		}
		assertNothingOfRelease(t, ctx, kube, annNS, "broken")
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path string
			body               any
			want               int
		}{
			{"not JSON", http.MethodPost, annReleases, "{", http.StatusBadRequest},
			{"no chartName", http.MethodPost, annReleases, map[string]string{"releaseName": "x", "repoUrl": repoURL}, http.StatusBadRequest},
			{"no releaseName", http.MethodPost, annReleases, map[string]string{"chartName": "demo", "repoUrl": repoURL}, http.StatusBadRequest},
			{"invalid values", http.MethodPost, annReleases, installBody(repoURL, "demo", "x", "greeting: [\n"), http.StatusBadRequest},
			{"values not a mapping", http.MethodPost, annReleases, installBody(repoURL, "demo", "x", "- a\n"), http.StatusBadRequest},
			{"no repository", http.MethodPost, annReleases, map[string]string{"chartName": "demo", "releaseName": "x"}, http.StatusBadRequest},
			{"two repositories", http.MethodPost, annReleases, map[string]string{"chartName": "demo", "releaseName": "x", "repoUrl": repoURL, "appRepositoryResourceName": "r"}, http.StatusBadRequest},
			{"invalid release name", http.MethodPost, annReleases, installBody(repoURL, "demo", "Not_Valid", ""), http.StatusBadRequest},
			{"unknown chart", http.MethodPost, annReleases, installBody(repoURL, "nothing", "x", ""), http.StatusNotFound},
			{"rollback without revision", http.MethodPut, annReleases + "/web?action=rollback", nil, http.StatusBadRequest},
			{"upgrade of an absent release", http.MethodPut, annReleases + "/absent", installBody(repoURL, "demo", "absent", ""), http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, body := annAPI.call(t, tc.method, tc.path, tc.body)
				if code != tc.want {
					t.Fatalf("%d %s, want %d", code, body, tc.want)
				}
				decodeAPIError(t, code, body)
			})
		}
		assertNothingOfRelease(t, ctx, kube, annNS, "x")
	})

	t.Run("unauthenticated", func(t *testing.T) {
		tr, err := rest.TransportFor(&rest.Config{Host: env.proxy.URL, TLSClientConfig: rest.TLSClientConfig{CAFile: env.proxy.CAFile}})
		if err != nil {
			t.Fatal(err)
		}
		anonymous := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		for _, path := range []string{"/v1/releases", annReleases, annReleases + "/web"} {
			if code, _, body := do(t, anonymous, http.MethodGet, path, nil, ""); code != http.StatusUnauthorized {
				t.Errorf("GET %s without credentials: %d %s", path, code, body)
			}
		}
	})

	t.Run("install from an AppRepository with an auth header", func(t *testing.T) {
		installAppRepositoryCRD(t, ctx)
		const header = "Bearer release-test-repository-token"
		env.secrets["release test repository header"] = header
		private := startChartRepo(t, chartRepoOptions{AuthHeader: header}, releaseTestCharts[0])
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "charts-auth", Namespace: annNS},
			Data: map[string][]byte{"authorizationHeader": []byte(header)}}
		if _, err := kube.CoreV1().Secrets(annNS).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		repo := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "kubeapps.com/v1alpha1", "kind": "AppRepository",
			"metadata": map[string]any{"name": "charts", "namespace": annNS},
			"spec": map[string]any{"type": "helm", "url": private.URL,
				"auth": map[string]any{"header": map[string]any{"secretKeyRef": map[string]any{"name": "charts-auth", "key": "authorizationHeader"}}}},
		}}
		appRepos := schema.GroupVersionResource{Group: "kubeapps.com", Version: "v1alpha1", Resource: "apprepositories"}
		if _, err := admin.Resource(appRepos).Namespace(annNS).Create(ctx, repo, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Capsule's admin role does not cover the AppRepository kind: ann is let read it in her namespace.
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "apprepository-reader", Namespace: annNS},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"kubeapps.com"}, Resources: []string{"apprepositories"}, Verbs: []string{"get"}}}}
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "apprepository-reader", Namespace: annNS},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: ann.name}}}
		if _, err := kube.RbacV1().Roles(annNS).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.RbacV1().RoleBindings(annNS).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		body := map[string]string{"chartName": "demo", "releaseName": "from-repo", "version": "0.1.0", "appRepositoryResourceName": "charts"}
		pollFor(t, ctx, "ann to install from her AppRepository", func(context.Context) (bool, error) {
			code, _, answer := annAPI.call(t, http.MethodPost, annReleases, body)
			if code == http.StatusCreated {
				return true, nil
			}
			return false, fmt.Errorf("%d %s", code, answer) // RBAC caches may lag the new binding
		})
		if private.served("/demo-0.1.0.tgz") == 0 {
			t.Error("the chart was not fetched from the AppRepository's URL")
		}
		// Ben may not read ann's AppRepository: it answers as if it did not exist, and nothing is fetched.
		before := private.served("/index.yaml")
		body["appRepositoryResourceNamespace"] = annNS
		code, _, answer := benAPI.call(t, http.MethodPost, "/v1/namespaces/"+benNS+"/releases", body)
		if code != http.StatusNotFound {
			t.Errorf("ben installing from ann's AppRepository: %d %s", code, answer)
		}
		if private.served("/index.yaml") != before {
			t.Error("the repository was asked for its index on ben's behalf")
		}
		if code, _, answer := annAPI.call(t, http.MethodDelete, annReleases+"/from-repo?purge=true", nil); code != http.StatusOK {
			t.Errorf("delete: %d %s", code, answer)
		}
	})

	t.Run("metrics count operations by action and result", func(t *testing.T) {
		resp, err := http.Get(env.proxy.MetricsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`tenant_proxy_helm_operations_total{action="install",result="success"}`,
			`tenant_proxy_helm_operations_total{action="install",result="forbidden"}`,
			`tenant_proxy_helm_operations_total{action="install",result="conflict"}`,
			`tenant_proxy_helm_operations_total{action="rollback",result="success"}`,
			`tenant_proxy_helm_operations_total{action="upgrade",result="success"}`,
			`tenant_proxy_helm_operations_total{action="list",result="success"}`,
		} {
			if !strings.Contains(string(data), want+" ") {
				t.Errorf("/metrics has no sample %s", want)
			}
		}
	})

	t.Run("delete with purge", func(t *testing.T) {
		code, auditID, body := annAPI.call(t, http.MethodDelete, annReleases+"/web?purge=true", nil)
		if code != http.StatusOK {
			t.Fatalf("delete: %d %s", code, body)
		}
		assertNothingOfRelease(t, ctx, kube, annNS, "web")
		assertCreatedAs(t, auditID, ann.name, nil) // every call of the delete was made as ann
		deleted := readAuditEvents(t, func(e auditEvent) bool {
			return e.AuditID == auditID && e.Verb == "delete" && e.ObjectRef != nil && e.ObjectRef.Name == "web-config"
		})
		if len(deleted) == 0 {
			t.Error("the API server recorded no delete of web-config by the uninstall")
		}
		if code, _, body := annAPI.call(t, http.MethodGet, annReleases+"/web", nil); code != http.StatusNotFound {
			t.Errorf("get after delete: %d %s", code, body)
		}
		if code, _, body := annAPI.call(t, http.MethodDelete, annReleases+"/web?purge=true", nil); code != http.StatusNotFound {
			t.Errorf("second delete: %d %s", code, body)
		}
	})
}

// assertNothingOfRelease: no Helm record and no ConfigMap of release exist in namespace.
func assertNothingOfRelease(t *testing.T, ctx context.Context, kube kubernetes.Interface, namespace, release string) {
	t.Helper()
	secrets, err := kube.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + release})
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) > 0 {
		t.Errorf("release %s left %d Helm records in %s", release, len(secrets.Items), namespace)
	}
	maps, err := kube.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range maps.Items {
		if strings.HasPrefix(cm.Name, release+"-") {
			t.Errorf("release %s left ConfigMap %s/%s", release, namespace, cm.Name)
		}
	}
}

// assertCreatedAs: the API server recorded, under the operation's Audit-ID, a successful write of each of
// objects ("resource/name"), and every call of the operation came from the proxy impersonating user.
func assertCreatedAs(t *testing.T, auditID, user string, objects []string) {
	t.Helper()
	var events []auditEvent
	deadline := time.Now().Add(5 * time.Second)
	for {
		events = apiServerEvents(t, auditID, 1)
		if wrote(events, objects) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(events) == 0 {
		t.Fatalf("API server has no event with Audit-ID %s", auditID)
	}
	for _, e := range events {
		if e.User.Username != proxyServiceAccount || e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != user {
			t.Errorf("%s %s: user %q impersonating %+v, want %s impersonating %s", e.Verb, e.RequestURI, e.User.Username, e.ImpersonatedUser, proxyServiceAccount, user)
		}
	}
	if !wrote(events, objects) {
		var seen []string
		for _, e := range events {
			seen = append(seen, fmt.Sprintf("%s %s %d", e.Verb, e.RequestURI, e.ResponseStatus.Code))
		}
		t.Errorf("API server did not record writes of %v as %s; it saw:\n%s", objects, user, strings.Join(seen, "\n"))
	}
}

// wrote reports whether events hold a successful create or apply (PATCH answering 201) of every object.
func wrote(events []auditEvent, objects []string) bool {
	for _, obj := range objects {
		resource, name, _ := strings.Cut(obj, "/")
		if !slices.ContainsFunc(events, func(e auditEvent) bool {
			return e.Stage == "ResponseComplete" && e.ResponseStatus.Code == http.StatusCreated &&
				(e.Verb == "create" || e.Verb == "patch") &&
				e.ObjectRef != nil && e.ObjectRef.Resource == resource && e.ObjectRef.Name == name
		}) {
			return false
		}
	}
	return true
}

// TestReleasesWithoutPreCheck: with --disable-auth the proxy skips only its own check; the API server still
// refuses the caller what they may not do, and a refused install is undone. This proxy also runs at -v=10
// without --debug (which caps verbosity at 4), where client-go logs bodies: Secret values must not show; and
// with --list-max 1.
func TestReleasesWithoutPreCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	proxy, err := env.cluster.StartProxy(ctx, filepath.Join(testbed.DefaultBinDir(), "tenant-proxy"), "tenant-proxy-noauth",
		"--allow-private-repositories", "--disable-auth", "--list-max", "1",
		"-v", "10") // -v=10: client-go logs request and response bodies
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	admin, err := dynamic.NewForConfig(env.cluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	kube := env.cluster.AdminClient
	if err := env.cluster.ApplyYAML(ctx, []byte(userTenant("rel-gamma", "rel-cid"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = admin.Resource(nsTestTenants).Delete(ctx, "rel-gamma", metav1.DeleteOptions{})
	})
	cid := newNamespaceOwner(t, ctx, "rel-cid", "rel-gamma", []string{"rel-gamma-one"}, testbed.CapsuleUsersGroup)
	createNamespaceThroughProxy(t, ctx, cid, "rel-gamma-one")
	waitTenantStatusLists(t, ctx, admin, "rel-gamma", "rel-gamma-one")
	api := newReleaseAPI(t, cid, proxy.URL)
	repoURL := serveTestCharts(t, releaseTestCharts)
	install := func(namespace, chart, release string) (int, string) {
		code, _, body := api.call(t, http.MethodPost, "/v1/namespaces/"+namespace+"/releases", installBody(repoURL, chart, release, ""))
		return code, body
	}

	t.Run("the API server refuses the ClusterRole and the install is undone", func(t *testing.T) {
		code, body := install("rel-gamma-one", "clusterwide", "wide")
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "forbidden") {
			t.Fatalf("install: %d %s", code, body)
		}
		if e := decodeAPIError(t, code, body); len(e.Forbidden) != 0 {
			t.Errorf("a list of missing permissions without the pre-check: %+v", e.Forbidden)
		}
		assertNothingOfRelease(t, ctx, kube, "rel-gamma-one", "wide")
		if _, err := kube.RbacV1().ClusterRoles().Get(ctx, "wide-reader", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRole wide-reader: %v", err)
		}
	})

	t.Run("another namespace is refused by the API server", func(t *testing.T) {
		code, body := install("team-a", "demo", "intruder")
		if code != http.StatusForbidden {
			t.Fatalf("install into team-a: %d %s", code, body)
		}
		assertNothingOfRelease(t, ctx, kube, "team-a", "intruder")
	})

	t.Run("Secret values stay out of the proxy's log at -v=10", func(t *testing.T) {
		const password = "release-secret-value-5d1f0c"
		env.secrets["release Secret value"] = password
		code, _, body := api.call(t, http.MethodPost, "/v1/namespaces/rel-gamma-one/releases", installBody(repoURL, "secretive", "vault", "password: "+password+"\n"))
		if code != http.StatusCreated {
			t.Fatalf("install: %d %s", code, body)
		}
		for _, call := range [][2]string{{http.MethodGet, ""}, {http.MethodPut, "?action=rollback&revision=1"}, {http.MethodDelete, "?purge=true"}} {
			if code, _, body := api.call(t, call[0], "/v1/namespaces/rel-gamma-one/releases/vault"+call[1], nil); code != http.StatusOK {
				t.Fatalf("%s %s: %d %s", call[0], call[1], code, body)
			}
		}
		logs, err := os.ReadFile(proxy.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(logs), "Response Body") {
			t.Fatal("the proxy's log has no bodies at -v=10: this test would prove nothing")
		}
		for _, form := range []string{password, base64.StdEncoding.EncodeToString([]byte(password))} {
			if strings.Contains(string(logs), form) {
				t.Errorf("the proxy's log holds the Secret value (%q)", form)
			}
		}
	})

	t.Run("what the caller may do still works", func(t *testing.T) {
		if code, body := install("rel-gamma-one", "demo", "fine"); code != http.StatusCreated {
			t.Fatalf("install: %d %s", code, body)
		}
		if _, err := kube.CoreV1().ConfigMaps("rel-gamma-one").Get(ctx, "fine-config", metav1.GetOptions{}); err != nil {
			t.Error(err)
		}
	})

	t.Run("--list-max caps lists", func(t *testing.T) {
		if code, body := install("rel-gamma-one", "demo", "fine-too"); code != http.StatusCreated {
			t.Fatalf("install: %d %s", code, body)
		}
		for _, path := range []string{"/v1/releases", "/v1/namespaces/rel-gamma-one/releases"} {
			code, _, body := api.call(t, http.MethodGet, path, nil)
			if got := decodeData[[]releaseSummary](t, body); code != http.StatusOK || len(got) != 1 {
				t.Errorf("%s with --list-max 1 and two releases: %d %+v", path, code, got)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
