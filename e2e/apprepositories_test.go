package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/tenant-proxy/tenant-proxy/internal/chart"
	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

var appRepositoriesGVR = schema.GroupVersionResource{Group: "kubeapps.com", Version: "v1alpha1", Resource: "apprepositories"}

// installAppRepositoryCRD applies the AppRepository CRD as charts/tenant-proxy renders it (as admin,
// idempotent) and waits until it is served. Without the release's labels: a later server-side apply of the
// chart under another release name (TestChartServerSideDryRun) would conflict with them.
func installAppRepositoryCRD(t *testing.T, ctx context.Context) {
	t.Helper()
	dir, err := chart.Dir()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := chart.Render(ctx, dir, chart.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := chart.Decode(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" || o.GetName() != "apprepositories.kubeapps.com" {
			continue
		}
		o.SetLabels(nil)
		data, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.cluster.ApplyYAML(ctx, data); err != nil {
			t.Fatalf("applying the AppRepository CRD: %v", err)
		}
		admin := dynamic.NewForConfigOrDie(env.cluster.Admin)
		for {
			_, err := admin.Resource(appRepositoriesGVR).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
			if err == nil {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("AppRepositories never served: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	t.Fatal("the chart renders no AppRepository CRD")
}

// atProxy sends client's requests to the proxy at base instead of the suite's (every test proxy serves a
// certificate of the cluster CA for 127.0.0.1), so `do` serves both.
func atProxy(t *testing.T, client *http.Client, base string) *http.Client {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	next := client.Transport
	return &http.Client{Timeout: client.Timeout, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Host, r.Host = target.Host, ""
		return next.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// assertAPIError: the body is {"code": code, "message": "..."} containing want.
func assertAPIError(t *testing.T, body string, code int, want string) {
	t.Helper()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != code || e.Message == "" {
		t.Fatalf("error body %q is not {code: %d, message}", body, code)
	}
	if !strings.Contains(e.Message, want) {
		t.Fatalf("message %q does not say %q", e.Message, want)
	}
}

func appRepoBody(name, url, extra string) string {
	return `{"appRepository": {"name": "` + name + `", "url": "` + url + `"` + extra + `}}`
}

// TestAppRepositories: Kubeapps' repository API creates and deletes AppRepositories as the caller, after
// checking the repository index, with the documented codes.
func TestAppRepositories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	installAppRepositoryCRD(t, ctx)
	admin := env.cluster.AdminClient
	adminDyn := dynamic.NewForConfigOrDie(env.cluster.Admin)
	alice, robot := env.users["alice"], env.users["robot"]

	// The proxy runs outside a pod without --apprepositories-namespace: AppRepositories go to "kubeapps".
	// alice may manage AppRepositories (and create Secrets) there and in team-a (where she edits), and manage
	// AppRepositories but not create Secrets in apprepo-nosecret. robot may do nothing with them.
	const defaultNS, noSecretNS = "kubeapps", "apprepo-nosecret"
	for _, ns := range []string{defaultNS, noSecretNS} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-apprepositories-editor"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"kubeapps.com"}, Resources: []string{"apprepositories"}, Verbs: []string{"get", "list", "create", "delete"}},
	}}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	aliceSubject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: alice.name}}
	for _, ns := range []string{defaultNS, alice.namespace, noSecretNS} {
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-apprepositories-editor", Namespace: ns},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}, Subjects: aliceSubject}
		if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}

	secretsRole := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "e2e-secrets-creator", Namespace: defaultNS}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	}}
	if _, err := admin.RbacV1().Roles(defaultNS).Create(ctx, secretsRole, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	secretsBinding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: secretsRole.Name, Namespace: defaultNS},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: secretsRole.Name}, Subjects: aliceSubject}
	if _, err := admin.RbacV1().RoleBindings(defaultNS).Create(ctx, secretsBinding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	aliceClient, robotClient := rawClient(t, alice), rawClient(t, robot)
	aliceHeader, robotHeader := bearer(alice), bearer(robot)
	demo := testChart{Name: "demo", Version: "0.1.0", Files: map[string]string{"templates/cm.yaml": demoRepoConfigMap}}
	repo := startChartRepo(t, chartRepoOptions{}, demo)
	const repoToken = "Bearer e2e-apprepository-token-5b7e1c"
	env.secrets["AppRepository auth header"] = repoToken
	env.secrets["AppRepository auth header (base64)"] = base64.StdEncoding.EncodeToString([]byte(repoToken))
	private := startChartRepo(t, chartRepoOptions{TLS: true, AuthHeader: repoToken}, demo)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	getRepo := func(ns, name string) (*unstructured.Unstructured, error) {
		return adminDyn.Resource(appRepositoriesGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	}
	// createdAsCaller: the API server recorded the AppRepository (or Secret) create of this request as made by
	// the proxy impersonating who, a dry run first and then the real one.
	createdAsCaller := func(t *testing.T, auditID, who, resourcePath string) {
		t.Helper()
		var dry, real bool
		for _, e := range apiServerEvents(t, auditID, 2) {
			if e.Stage != "ResponseComplete" || e.Verb != "create" || !strings.Contains(e.RequestURI, resourcePath) {
				continue
			}
			if e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != who ||
				e.User.Username != "system:serviceaccount:"+testbed.ProxyNamespace+":"+testbed.ProxyServiceAccount {
				t.Fatalf("create of %s recorded as %+v impersonating %+v", resourcePath, e.User, e.ImpersonatedUser)
			}
			if strings.Contains(e.RequestURI, "dryRun=All") {
				dry = true
			} else if e.ResponseStatus.Code == http.StatusCreated {
				real = true
			}
		}
		if !dry || !real {
			t.Fatalf("API server audit for %s: dry run %v, create %v; want both, as %s", resourcePath, dry, real, who)
		}
	}

	t.Run("created as the caller in the default namespace", func(t *testing.T) {
		code, auditID, body := do(t, aliceClient, http.MethodPost, "/api/backend/v1/apprepositories", aliceHeader, appRepoBody("e2e-stable", repo.URL, ""))
		if code != http.StatusCreated || strings.TrimSpace(body) != `{"repositoryPrefix":"/#/charts/e2e-stable/"}` {
			t.Fatalf("create: %d %s", code, body)
		}
		obj, err := getRepo(defaultNS, "e2e-stable")
		if err != nil {
			t.Fatal(err)
		}
		if url, _, _ := unstructured.NestedString(obj.Object, "spec", "url"); url != repo.URL {
			t.Fatalf("spec.url = %q, want %q", url, repo.URL)
		}
		createdAsCaller(t, auditID, alice.name, "/apis/kubeapps.com/v1alpha1/namespaces/"+defaultNS+"/apprepositories")
		if repo.served("/index.yaml") == 0 {
			t.Fatal("the repository index was never fetched")
		}
	})

	t.Run("409 when it exists", func(t *testing.T) {
		code, _, body := do(t, aliceClient, http.MethodPost, "/api/backend/v1/apprepositories", aliceHeader, appRepoBody("e2e-stable", repo.URL, ""))
		if code != http.StatusConflict {
			t.Fatalf("second create: %d %s", code, body)
		}
		assertAPIError(t, body, http.StatusConflict, "already exists")
	})

	t.Run("403 for a caller without RBAC, before anything is fetched", func(t *testing.T) {
		before := repo.served("/index.yaml")
		for _, path := range []string{"/api/backend/v1/apprepositories", "/api/backend/v1/namespaces/" + robot.namespace + "/apprepositories"} {
			code, _, body := do(t, robotClient, http.MethodPost, path, robotHeader, appRepoBody("e2e-robot", repo.URL, ""))
			if code != http.StatusForbidden {
				t.Fatalf("robot create at %s: %d %s", path, code, body)
			}
			assertAPIError(t, body, http.StatusForbidden, "forbidden")
		}
		if got := repo.served("/index.yaml"); got != before {
			t.Fatalf("the index was fetched %d times for a caller who may not create repositories", got-before)
		}
		code, _, body := do(t, robotClient, http.MethodDelete, "/api/backend/v1/apprepositories/e2e-stable", robotHeader, "")
		if code != http.StatusForbidden {
			t.Fatalf("robot delete: %d %s", code, body)
		}
		if _, err := getRepo(defaultNS, "e2e-stable"); err != nil {
			t.Fatalf("after a forbidden delete: %v", err)
		}
	})

	t.Run("400", func(t *testing.T) {
		tests := []struct {
			name, body, want string
		}{
			{"bad JSON", `{"appRepository": {"name": "x"`, "invalid JSON"},
			{"no appRepository", `{"name": "x"}`, "unknown field"},
			{"bad name", appRepoBody("Not_A_Name", repo.URL, ""), "appRepository.name"},
			{"missing URL", appRepoBody("e2e-nourl", "", ""), "url is required"},
			{"not http", appRepoBody("e2e-oci", "oci://127.0.0.1/charts", ""), "appRepository.url"},
			{"unreachable index", appRepoBody("e2e-unreachable", closedURL, ""), "repository index"},
			{"no index at the URL", appRepoBody("e2e-noindex", repo.URL+"/nothing", ""), "404"},
			{"repository refuses without its header", appRepoBody("e2e-noauth", private.URL, `, "customCA": `+jsonQuote(string(private.CAPEM))), "401"},
			{"unknown authority without its CA", appRepoBody("e2e-noca", private.URL, `, "authHeader": "`+repoToken+`"`), "certificate"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, _, body := do(t, aliceClient, http.MethodPost, "/api/backend/v1/apprepositories", aliceHeader, tt.body)
				if code != http.StatusBadRequest {
					t.Fatalf("%d %s", code, body)
				}
				assertAPIError(t, body, http.StatusBadRequest, tt.want)
				if strings.Contains(body, repoToken) {
					t.Fatal("the answer repeats the auth header")
				}
			})
		}
		list, err := adminDyn.Resource(appRepositoriesGVR).Namespace(defaultNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || list.Items[0].GetName() != "e2e-stable" {
			t.Fatalf("refused requests left AppRepositories behind: %d items", len(list.Items))
		}
	})

	t.Run("namespaced, with an auth header and a CA in an owned Secret", func(t *testing.T) {
		path := "/api/backend/v1/namespaces/" + alice.namespace + "/apprepositories"
		extra := `, "authHeader": "` + repoToken + `", "customCA": ` + jsonQuote(string(private.CAPEM))
		code, auditID, body := do(t, aliceClient, http.MethodPost, path, aliceHeader, appRepoBody("e2e-private", private.URL, extra))
		if code != http.StatusCreated || !strings.Contains(body, `"/#/charts/e2e-private/"`) {
			t.Fatalf("create: %d %s", code, body)
		}
		obj, err := getRepo(alice.namespace, "e2e-private")
		if err != nil {
			t.Fatal(err)
		}
		ref, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "auth", "header", "secretKeyRef")
		caRef, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "auth", "customCA", "secretKeyRef")
		if ref["name"] != "apprepo-e2e-private" || ref["key"] != "authorizationHeader" || caRef["key"] != "ca.crt" {
			t.Fatalf("spec.auth = header %v, customCA %v", ref, caRef)
		}
		secret, err := admin.CoreV1().Secrets(alice.namespace).Get(ctx, ref["name"], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(secret.Data["authorizationHeader"]) != repoToken || string(secret.Data["ca.crt"]) != string(private.CAPEM) {
			t.Fatal("the Secret does not hold the header and CA that were sent")
		}
		if owners := secret.OwnerReferences; len(owners) != 1 || owners[0].UID != obj.GetUID() || owners[0].Kind != "AppRepository" {
			t.Fatalf("Secret owners = %+v, want the AppRepository", owners)
		}
		createdAsCaller(t, auditID, alice.name, "/api/v1/namespaces/"+alice.namespace+"/secrets")
		createdAsCaller(t, auditID, alice.name, "/apis/kubeapps.com/v1alpha1/namespaces/"+alice.namespace+"/apprepositories")
		if private.served("/index.yaml") == 0 {
			t.Fatal("the private index was never fetched")
		}
	})

	t.Run("403 when the Secret may not be created, and nothing is left", func(t *testing.T) {
		path := "/api/backend/v1/namespaces/" + noSecretNS + "/apprepositories"
		extra := `, "authHeader": "` + repoToken + `", "customCA": ` + jsonQuote(string(private.CAPEM))
		code, _, body := do(t, aliceClient, http.MethodPost, path, aliceHeader, appRepoBody("e2e-nosecret", private.URL, extra))
		if code != http.StatusForbidden {
			t.Fatalf("create: %d %s", code, body)
		}
		assertAPIError(t, body, http.StatusForbidden, "secrets")
		if _, err := getRepo(noSecretNS, "e2e-nosecret"); !apierrors.IsNotFound(err) {
			t.Fatalf("AppRepository left behind: %v", err)
		}
	})

	t.Run("delete: 200, then 404; the owned Secret goes with it", func(t *testing.T) {
		for _, tc := range []struct{ path, ns, name string }{
			{"/api/backend/v1/apprepositories/e2e-stable", defaultNS, "e2e-stable"},
			{"/api/backend/v1/namespaces/" + alice.namespace + "/apprepositories/e2e-private", alice.namespace, "e2e-private"},
		} {
			code, _, body := do(t, aliceClient, http.MethodDelete, tc.path, aliceHeader, "")
			if code != http.StatusOK {
				t.Fatalf("delete %s: %d %s", tc.path, code, body)
			}
			if _, err := getRepo(tc.ns, tc.name); !apierrors.IsNotFound(err) {
				t.Fatalf("%s/%s after delete: %v", tc.ns, tc.name, err)
			}
			code, _, body = do(t, aliceClient, http.MethodDelete, tc.path, aliceHeader, "")
			if code != http.StatusNotFound {
				t.Fatalf("second delete %s: %d %s", tc.path, code, body)
			}
			assertAPIError(t, body, http.StatusNotFound, "not found")
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := admin.CoreV1().Secrets(alice.namespace).Get(ctx, "apprepo-e2e-private", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the owned Secret was not garbage-collected: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("401 without credentials", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(mustRead(env.proxy.CAFile)))
		anonymous := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		code, _, body := do(t, anonymous, http.MethodPost, "/api/backend/v1/apprepositories", nil, appRepoBody("e2e-anon", repo.URL, ""))
		if code != http.StatusUnauthorized {
			t.Fatalf("anonymous create: %d %s", code, body)
		}
		assertAPIError(t, body, http.StatusUnauthorized, "Unauthorized")
	})

	t.Run("metrics count index fetches by result", func(t *testing.T) {
		metrics := scrapeMetrics(t, env.proxy.MetricsURL)
		for _, want := range []string{`tenant_proxy_apprepository_index_fetches_total{result="ok"}`, `tenant_proxy_apprepository_requests_total{code="201",operation="create"}`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// TestAppRepositoriesRefusePrivateAddresses: without --allow-private-repositories the proxy refuses a
// repository on loopback, whether named by address or by a host name that resolves to it, without ever
// connecting to it.
func TestAppRepositoriesRefusePrivateAddresses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	installAppRepositoryCRD(t, ctx)
	alice := env.users["alice"]
	admin := env.cluster.AdminClient
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "e2e-apprepositories-private", Namespace: alice.namespace}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"kubeapps.com"}, Resources: []string{"apprepositories"}, Verbs: []string{"create", "delete"}},
	}}
	if _, err := admin.RbacV1().Roles(alice.namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: alice.namespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: alice.name}}}
	if _, err := admin.RbacV1().RoleBindings(alice.namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	proxy, err := env.cluster.StartProxy(ctx, filepath.Join(env.cluster.BinDir, "tenant-proxy"), "tenant-proxy-no-private")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	repo := startChartRepo(t, chartRepoOptions{}, testChart{Name: "demo", Version: "0.1.0", Files: map[string]string{"templates/cm.yaml": demoRepoConfigMap}})
	client := rawClient(t, alice)
	path := "/api/backend/v1/namespaces/" + alice.namespace + "/apprepositories"

	for _, repoURL := range []string{repo.URL, strings.Replace(repo.URL, "127.0.0.1", "localhost", 1)} {
		code, _, body := do(t, atProxy(t, client, proxy.URL), http.MethodPost, path, bearer(alice), appRepoBody("e2e-loopback", repoURL, ""))
		if code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", repoURL, code, body)
		}
		assertAPIError(t, body, http.StatusBadRequest, "repository address refused")
	}
	if got := repo.served("/index.yaml"); got != 0 {
		t.Fatalf("the refused repository was reached %d times", got)
	}
	if _, err := dynamic.NewForConfigOrDie(env.cluster.Admin).Resource(appRepositoriesGVR).Namespace(alice.namespace).Get(ctx, "e2e-loopback", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused repository was created: %v", err)
	}
	// The same request through the suite's proxy, which allows private addresses, succeeds: the refusal
	// above is the address guard, not anything else about the request.
	code, _, body := do(t, client, http.MethodPost, path, bearer(alice), appRepoBody("e2e-loopback", repo.URL, ""))
	if code != http.StatusCreated {
		t.Fatalf("through the allowing proxy: %d %s", code, body)
	}
	code, _, body = do(t, client, http.MethodDelete, path+"/e2e-loopback", bearer(alice), "")
	if code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, body)
	}
	if metrics := scrapeMetrics(t, proxy.MetricsURL); !strings.Contains(metrics, `tenant_proxy_apprepository_index_fetches_total{result="refused_address"} 2`) {
		t.Errorf("the refusing proxy's metrics do not count 2 refused fetches")
	}
}

const demoRepoConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
`

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func scrapeMetrics(t *testing.T, metricsURL string) string {
	t.Helper()
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
