package apprepositories

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	goflag "flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/moduletest"
)

// upstreamCall is one request the fake API server received.
type upstreamCall struct {
	Method, Path, DryRun, As string
	Body                     map[string]any
}

// fakeAPIServer answers AppRepository and Secret creates and deletes with the status set per "METHOD path"
// (+ " dry" for dry runs), 201/200 otherwise, and records every call.
type fakeAPIServer struct {
	mu      sync.Mutex
	status  map[string]error
	objects map[string]any // GET path -> object
	calls   []upstreamCall
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := decodeBody(r)
	call := upstreamCall{Method: r.Method, Path: r.URL.Path, DryRun: r.URL.Query().Get("dryRun"), As: r.Header.Get("Impersonate-User"), Body: body}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	key := r.Method + " " + r.URL.Path
	if call.DryRun != "" {
		key += " dry"
	}
	err := f.status[key]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := err.(apierrors.APIStatus).Status()
		status.Kind, status.APIVersion = "Status", "v1"
		w.WriteHeader(int(status.Code))
		_ = json.NewEncoder(w).Encode(status)
		return
	}
	if r.Method == http.MethodGet {
		obj, ok := f.objects[r.URL.Path]
		if !ok {
			status := apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path).Status()
			status.Kind, status.APIVersion = "Status", "v1"
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(status)
			return
		}
		_ = json.NewEncoder(w).Encode(obj)
		return
	}
	if r.Method == http.MethodDelete {
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Success"})
		return
	}
	meta, _ := body["metadata"].(map[string]any)
	if meta != nil {
		meta["uid"] = "uid-1"
	}
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(body)
}

// decodeBody reads a JSON or (client-go's typed clients may use it) protobuf body as a map.
func decodeBody(r *http.Request) map[string]any {
	data, _ := io.ReadAll(r.Body)
	var body map[string]any
	if json.Unmarshal(data, &body) == nil {
		return body
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil
	}
	body, _ = runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	return body
}

func (f *fakeAPIServer) recorded() []upstreamCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]upstreamCall(nil), f.calls...)
}

const (
	repoPath   = "/apis/kubeapps.com/v1alpha1/namespaces/repos/apprepositories"
	secretPath = "/api/v1/namespaces/repos/secrets"
)

var appRepoGR = schema.GroupResource{Group: "kubeapps.com", Resource: "apprepositories"}

func TestRepositoryAPI(t *testing.T) {
	index := "apiVersion: v1\nentries: {}\n"
	var repoMu sync.Mutex
	var repoAuth []string
	repo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repoMu.Lock()
		repoAuth = append(repoAuth, r.URL.Path+"|"+r.Header.Get("Authorization"))
		repoMu.Unlock()
		if r.URL.Path != "/charts/index.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, index)
	}))
	defer repo.Close()
	// Any certificate will do: the repository is plain HTTP, the CA is only stored.
	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsServer.Certificate().Raw}))
	tlsServer.Close()
	body := func(name, url, extra string) string {
		return `{"appRepository": {"name": "` + name + `", "url": "` + url + `"` + extra + `}}`
	}
	good := repo.URL + "/charts"

	tests := []struct {
		name         string
		method, path string
		body         string
		allowPrivate bool
		upstream     map[string]error
		objects      map[string]any // GET answers by path
		wantCode     int
		wantBody     string   // substring of the answer
		wantCalls    []string // "METHOD path [dry]" upstream, in order
		wantFetch    bool     // the repository index was fetched
		check        func(t *testing.T, calls []upstreamCall)
	}{
		{name: "created", method: "POST", path: "/api/backend/v1/apprepositories", body: body("stable", good, ""), allowPrivate: true,
			wantCode: 201, wantBody: `{"repositoryPrefix":"/#/charts/stable/"}`,
			wantCalls: []string{"POST " + repoPath + " dry", "POST " + repoPath}, wantFetch: true,
			check: func(t *testing.T, calls []upstreamCall) {
				spec := calls[1].Body["spec"].(map[string]any)
				if spec["url"] != good || spec["type"] != "helm" || spec["auth"] != nil {
					t.Errorf("spec = %v", spec)
				}
			}},
		{name: "created with credentials in an owned Secret", method: "POST", path: "/api/backend/v1/namespaces/repos/apprepositories",
			body: body("private", good, `, "authHeader": "Bearer s3cret", "customCA": `+jsonString(ca)), allowPrivate: true,
			wantCode: 201, wantFetch: true,
			wantCalls: []string{"POST " + repoPath + " dry", "POST " + secretPath + " dry", "POST " + repoPath, "POST " + secretPath},
			check: func(t *testing.T, calls []upstreamCall) {
				auth := calls[2].Body["spec"].(map[string]any)["auth"].(map[string]any)
				header := auth["header"].(map[string]any)["secretKeyRef"].(map[string]any)
				if header["name"] != "apprepo-private" || header["key"] != "authorizationHeader" {
					t.Errorf("header ref = %v", header)
				}
				secret := calls[3].Body
				owners := secret["metadata"].(map[string]any)["ownerReferences"].([]any)
				owner := owners[0].(map[string]any)
				if owner["kind"] != "AppRepository" || owner["name"] != "private" || owner["uid"] != "uid-1" {
					t.Errorf("owner = %v", owner)
				}
				data := secret["data"].(map[string]any)
				if data["authorizationHeader"] == nil || data["ca.crt"] == nil {
					t.Errorf("secret data keys = %v", data)
				}
				repoMu.Lock()
				defer repoMu.Unlock()
				if last := repoAuth[len(repoAuth)-1]; last != "/charts/index.yaml|Bearer s3cret" {
					t.Errorf("index fetched with %q", last)
				}
			}},
		{name: "forbidden: nothing fetched", method: "POST", path: "/api/backend/v1/namespaces/repos/apprepositories", body: body("stable", good, ""),
			allowPrivate: true, upstream: map[string]error{"POST " + repoPath + " dry": apierrors.NewForbidden(appRepoGR, "stable", nil)},
			wantCode: 403, wantBody: `"code":403`, wantCalls: []string{"POST " + repoPath + " dry"}},
		{name: "exists", method: "POST", path: "/api/backend/v1/namespaces/repos/apprepositories", body: body("stable", good, ""),
			allowPrivate: true, upstream: map[string]error{"POST " + repoPath + " dry": apierrors.NewAlreadyExists(appRepoGR, "stable")},
			wantCode: 409, wantBody: `already exists`, wantCalls: []string{"POST " + repoPath + " dry"}},
		{name: "secret forbidden: nothing fetched or created", method: "POST", path: "/api/backend/v1/namespaces/repos/apprepositories",
			body: body("stable", good, `, "authHeader": "Bearer s3cret"`), allowPrivate: true,
			upstream: map[string]error{"POST " + secretPath + " dry": apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "apprepo-stable", nil)},
			wantCode: 403, wantCalls: []string{"POST " + repoPath + " dry", "POST " + secretPath + " dry"}},
		{name: "secret fails after the repository: repository taken back", method: "POST", path: "/api/backend/v1/namespaces/repos/apprepositories",
			body: body("stable", good, `, "authHeader": "Bearer s3cret"`), allowPrivate: true, wantFetch: true,
			upstream: map[string]error{"POST " + secretPath: apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "apprepo-stable", nil)},
			wantCode: 403,
			wantCalls: []string{"POST " + repoPath + " dry", "POST " + secretPath + " dry", "POST " + repoPath, "POST " + secretPath,
				"DELETE " + repoPath + "/stable"}},
		{name: "unreachable index", method: "POST", path: "/api/backend/v1/namespaces/repos/apprepositories", body: body("stable", repo.URL+"/nothing", ""),
			allowPrivate: true, wantCode: 400, wantBody: "404", wantFetch: true, wantCalls: []string{"POST " + repoPath + " dry"}},
		{name: "private address refused", method: "POST", path: "/api/backend/v1/namespaces/repos/apprepositories", body: body("stable", good, ""),
			wantCode: 400, wantBody: "repository address refused", wantCalls: []string{"POST " + repoPath + " dry"}},
		{name: "bad JSON", method: "POST", path: "/api/backend/v1/apprepositories", body: `{"appRepository":`, wantCode: 400, wantBody: "invalid JSON"},
		{name: "unknown field", method: "POST", path: "/api/backend/v1/apprepositories", body: body("stable", good, `, "password": "x"`), wantCode: 400, wantBody: "unknown field"},
		{name: "two JSON values", method: "POST", path: "/api/backend/v1/apprepositories", body: body("stable", good, "") + "{}", wantCode: 400},
		{name: "no appRepository", method: "POST", path: "/api/backend/v1/apprepositories", body: `{}`, wantCode: 400, wantBody: "appRepository is required"},
		{name: "bad name", method: "POST", path: "/api/backend/v1/apprepositories", body: body("Not_A_Name", good, ""), wantCode: 400, wantBody: "appRepository.name"},
		{name: "no URL", method: "POST", path: "/api/backend/v1/apprepositories", body: body("stable", "", ""), wantCode: 400, wantBody: "url is required"},
		{name: "file URL", method: "POST", path: "/api/backend/v1/apprepositories", body: body("stable", "file:///etc", ""), wantCode: 400, wantBody: "invalid appRepository.url"},
		{name: "header injection", method: "POST", path: "/api/backend/v1/apprepositories", body: body("stable", good, `, "authHeader": "a\r\nX-Evil: 1"`), wantCode: 400, wantBody: "authHeader"},
		{name: "CA without certificate", method: "POST", path: "/api/backend/v1/apprepositories", body: body("stable", good, `, "customCA": "nope"`), wantCode: 400, wantBody: "customCA"},
		{name: "bad namespace", method: "POST", path: "/api/backend/v1/namespaces/Bad_NS/apprepositories", body: body("stable", good, ""), wantCode: 400, wantBody: "namespace"},
		{name: "deleted", method: "DELETE", path: "/api/backend/v1/namespaces/repos/apprepositories/stable", wantCode: 200,
			wantCalls: []string{"DELETE " + repoPath + "/stable", "GET " + secretPath + "/apprepo-stable"}},
		{name: "deleted in the default namespace", method: "DELETE", path: "/api/backend/v1/apprepositories/stable", wantCode: 200,
			wantCalls: []string{"DELETE " + repoPath + "/stable", "GET " + secretPath + "/apprepo-stable"}},
		{name: "deleted with its owned Secret", method: "DELETE", path: "/api/backend/v1/apprepositories/stable", wantCode: 200,
			objects:   map[string]any{secretPath + "/apprepo-stable": ownedSecret("stable", "uid-1")},
			wantCalls: []string{"DELETE " + repoPath + "/stable", "GET " + secretPath + "/apprepo-stable", "GET " + repoPath + "/stable", "DELETE " + secretPath + "/apprepo-stable"}},
		{name: "a Secret of another owner is left alone", method: "DELETE", path: "/api/backend/v1/apprepositories/stable", wantCode: 200,
			objects:   map[string]any{secretPath + "/apprepo-stable": ownedSecret("other", "uid-1")},
			wantCalls: []string{"DELETE " + repoPath + "/stable", "GET " + secretPath + "/apprepo-stable"}},
		{name: "the Secret of a re-created repository is left alone", method: "DELETE", path: "/api/backend/v1/apprepositories/stable", wantCode: 200,
			objects: map[string]any{
				secretPath + "/apprepo-stable": ownedSecret("stable", "uid-2"),
				repoPath + "/stable":           map[string]any{"apiVersion": "kubeapps.com/v1alpha1", "kind": "AppRepository", "metadata": map[string]any{"name": "stable", "namespace": "repos", "uid": "uid-2"}},
			},
			wantCalls: []string{"DELETE " + repoPath + "/stable", "GET " + secretPath + "/apprepo-stable", "GET " + repoPath + "/stable"}},
		{name: "delete absent", method: "DELETE", path: "/api/backend/v1/apprepositories/stable",
			upstream: map[string]error{"DELETE " + repoPath + "/stable": apierrors.NewNotFound(appRepoGR, "stable")},
			wantCode: 404, wantBody: `"code":404`, wantCalls: []string{"DELETE " + repoPath + "/stable"}},
		{name: "delete bad name", method: "DELETE", path: "/api/backend/v1/apprepositories/Bad_Name", wantCode: 400},
		{name: "other method", method: "GET", path: "/api/backend/v1/apprepositories", wantCode: 405},
		{name: "other path is not taken", method: "GET", path: "/api/v1/namespaces", wantCode: moduletest.ForwardedStatus},
		{name: "other backend path is not taken", method: "POST", path: "/api/backend/v1/other", wantCode: moduletest.ForwardedStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPIServer{status: tt.upstream, objects: tt.objects}
			apiServer := httptest.NewServer(api)
			defer apiServer.Close()
			repoMu.Lock()
			fetchesBefore := len(repoAuth)
			repoMu.Unlock()

			m := New(Options{Namespace: "repos"}, &rest.Config{Host: apiServer.URL},
				helmrepo.New(helmrepo.Options{AllowPrivate: tt.allowPrivate}))
			alice := &user.DefaultInfo{Name: "alice", Groups: []string{"dev", user.AllAuthenticated}}
			proxy := httptest.NewServer(moduletest.ProxyLike(m, map[string]user.Info{"alice": alice}))
			defer proxy.Close()

			req, err := http.NewRequest(tt.method, proxy.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(moduletest.UserHeader, "alice")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(answer), tt.wantBody) {
				t.Fatalf("answer %d %s, want %d containing %q", resp.StatusCode, answer, tt.wantCode, tt.wantBody)
			}
			if tt.wantCode >= 400 && tt.wantCode != moduletest.ForwardedStatus {
				var e apiError
				if err := json.Unmarshal(answer, &e); err != nil || e.Code != tt.wantCode || e.Message == "" {
					t.Fatalf("error body %s is not {code: %d, message}", answer, tt.wantCode)
				}
				if strings.Contains(string(answer), "s3cret") {
					t.Fatalf("the answer repeats the credential: %s", answer)
				}
			}
			calls := api.recorded()
			var got []string
			for _, c := range calls {
				s := c.Method + " " + c.Path
				if c.DryRun != "" {
					s += " dry"
				}
				got = append(got, s)
				if c.As != "alice" {
					t.Errorf("%s sent as %q, want impersonating alice", s, c.As)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantCalls, "\n") {
				t.Fatalf("upstream calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantCalls, "\n"))
			}
			repoMu.Lock()
			fetched := len(repoAuth) > fetchesBefore
			repoMu.Unlock()
			if fetched != tt.wantFetch {
				t.Fatalf("index fetched = %v, want %v", fetched, tt.wantFetch)
			}
			if tt.check != nil {
				tt.check(t, calls)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := newMetrics()
	for _, err := range []error{nil, helmrepo.ErrForbiddenAddress, io.EOF} {
		m.fetch(err)
	}
	m.request("create", 201)
	if got := testutil.ToFloat64(m.fetches.WithLabelValues("refused_address")); got != 1 {
		t.Fatalf("refused_address fetches = %v", got)
	}
	if got := testutil.CollectAndCount(m.fetches); got != 3 {
		t.Fatalf("fetch series = %d, want 3 (ok, refused_address, failed)", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("create", "201")); got != 1 {
		t.Fatalf("create 201 = %v", got)
	}
}

func TestResolve(t *testing.T) {
	appRepo := func(name string, spec map[string]any) any {
		return map[string]any{"apiVersion": "kubeapps.com/v1alpha1", "kind": "AppRepository",
			"metadata": map[string]any{"name": name, "namespace": "repos"}, "spec": spec}
	}
	ref := func(name, key string) map[string]any {
		return map[string]any{"secretKeyRef": map[string]any{"name": name, "key": key}}
	}
	objects := map[string]any{
		repoPath + "/plain": appRepo("plain", map[string]any{"url": "https://charts.example.com"}),
		repoPath + "/private": appRepo("private", map[string]any{"url": "https://charts.example.com",
			"auth": map[string]any{"header": ref("creds", "authorizationHeader"), "customCA": ref("creds", "ca.crt")}}),
		repoPath + "/missing-key": appRepo("missing-key", map[string]any{"url": "https://charts.example.com",
			"auth": map[string]any{"header": ref("creds", "nothing")}}),
		repoPath + "/other-secret": appRepo("other-secret", map[string]any{"url": "https://charts.example.com",
			"auth": map[string]any{"header": ref("absent", "authorizationHeader")}}),
		repoPath + "/oci":      appRepo("oci", map[string]any{"url": "oci://registry.example.com/charts", "type": "oci"}),
		repoPath + "/file-url": appRepo("file-url", map[string]any{"url": "file:///etc"}),
		secretPath + "/creds": map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "creds", "namespace": "repos"},
			"data": map[string]any{"authorizationHeader": "QmVhcmVyIHQ=", "ca.crt": "Q0E="}}, // "Bearer t", "CA"
	}
	tests := []struct {
		name     string
		want     helmrepo.Repository
		wantErr  error
		notFound bool
	}{
		{name: "plain", want: helmrepo.Repository{URL: "https://charts.example.com"}},
		{name: "private", want: helmrepo.Repository{URL: "https://charts.example.com", AuthHeader: "Bearer t", CAPEM: []byte("CA")}},
		{name: "missing-key", wantErr: ErrUnsupported},
		{name: "other-secret", notFound: true},
		{name: "oci", wantErr: ErrUnsupported},
		{name: "file-url", wantErr: ErrUnsupported},
		{name: "absent", notFound: true},
	}
	api := &fakeAPIServer{objects: objects}
	apiServer := httptest.NewServer(api)
	defer apiServer.Close()
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}}
	cfg := CallerConfig(&rest.Config{Host: apiServer.URL}, alice, "audit-1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), cfg, "repos", tt.name)
			switch {
			case tt.notFound:
				if !apierrors.IsNotFound(err) {
					t.Fatalf("error = %v, want NotFound", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if got.URL != tt.want.URL || got.AuthHeader != tt.want.AuthHeader || string(got.CAPEM) != string(tt.want.CAPEM) {
					t.Fatalf("repository = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
	for _, c := range api.recorded() {
		if c.As != "alice" {
			t.Errorf("%s %s read as %q, want alice", c.Method, c.Path, c.As)
		}
	}
}

// TestCredentialsAreNotLogged: at -v=10 client-go logs request and response bodies; the Secret that carries
// a repository's auth header is neither logged when created nor when read back.
func TestCredentialsAreNotLogged(t *testing.T) {
	var logs bytes.Buffer
	flags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(flags)
	for k, v := range map[string]string{"v": "10", "logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := flags.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	klog.SetOutput(&logs)
	defer func() {
		_ = flags.Set("v", "0")
		_ = flags.Set("logtostderr", "true")
	}()

	const header = "Bearer never-logged-7d1f"
	encoded := base64.StdEncoding.EncodeToString([]byte(header))
	repo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "apiVersion: v1\nentries: {}\n")
	}))
	defer repo.Close()
	api := &fakeAPIServer{objects: map[string]any{
		repoPath + "/logged": map[string]any{"apiVersion": "kubeapps.com/v1alpha1", "kind": "AppRepository",
			"metadata": map[string]any{"name": "logged", "namespace": "repos"},
			"spec": map[string]any{"url": repo.URL, "auth": map[string]any{
				"header": map[string]any{"secretKeyRef": map[string]any{"name": "apprepo-logged", "key": "authorizationHeader"}}}}},
		secretPath + "/apprepo-logged": map[string]any{"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": "apprepo-logged", "namespace": "repos"},
			"data":     map[string]any{"authorizationHeader": encoded}},
	}}
	apiServer := httptest.NewServer(api)
	defer apiServer.Close()
	base := &rest.Config{Host: apiServer.URL}
	alice := &user.DefaultInfo{Name: "alice"}
	m := New(Options{Namespace: "repos"}, base, helmrepo.New(helmrepo.Options{AllowPrivate: true}))
	proxy := httptest.NewServer(moduletest.ProxyLike(m, map[string]user.Info{"alice": alice}))
	defer proxy.Close()

	body := `{"appRepository": {"name": "logged", "url": "` + repo.URL + `", "authHeader": "` + header + `"}}`
	req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/api/backend/v1/apprepositories", strings.NewReader(body))
	req.Header.Set(moduletest.UserHeader, "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create = %d", resp.StatusCode)
	}
	got, err := Resolve(context.Background(), CallerConfig(base, alice, ""), "repos", "logged")
	if err != nil || got.AuthHeader != header {
		t.Fatalf("Resolve = %+v, %v", got, err)
	}
	klog.Flush()
	out := logs.String()
	if !strings.Contains(out, "Request Body") || !strings.Contains(out, "Response Body") {
		t.Fatal("client-go logged no bodies at -v=10: this test would prove nothing")
	}
	for _, secret := range []string{header, encoded, "never-logged-7d1f"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

// ownedSecret is the credentials Secret as the create handler writes it, owned by AppRepository owner.
func ownedSecret(owner, uid string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "apprepo-stable", "namespace": "repos", "uid": "secret-uid",
			"ownerReferences": []any{map[string]any{"apiVersion": "kubeapps.com/v1alpha1", "kind": "AppRepository", "name": owner, "uid": uid}}}}
}
