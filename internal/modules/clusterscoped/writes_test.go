package clusterscoped

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/moduletest"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
	"github.com/tenant-proxy/tenant-proxy/internal/request"
)

// The writers of these tests: wes may list, update and delete the nodes of pool oil, and list and update
// the storage classes of tenant oil (gold by name, tier=oil by label); lou owns oil but may only list; gus
// owns tenant gas, whose legacy annotation lets its owners delete the nodes of pool gas.
var writers = map[string]user.Info{
	"wes": &user.DefaultInfo{Name: "wes", Groups: []string{"projectcapsule.dev"}},
	"lou": &user.DefaultInfo{Name: "lou", Groups: []string{"projectcapsule.dev"}},
	"gus": &user.DefaultInfo{Name: "gus", Groups: []string{"projectcapsule.dev"}},
}

func writeTenant(name string, annotations map[string]any, owners []any, nodePool, tier string, allowed ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant",
		"metadata": map[string]any{"name": name, "uid": name, "resourceVersion": "5", "annotations": annotations},
		"spec": map[string]any{
			"owners":         owners,
			"nodeSelector":   map[string]any{"pool": nodePool},
			"storageClasses": map[string]any{"allowed": allowed, "matchLabels": map[string]any{"tier": tier}},
		},
	}}
}

func grant(kind string, ops ...any) map[string]any {
	return map[string]any{"kind": kind, "operations": ops}
}

// fakeAPIServer keeps nodes and storage classes and answers GET, PUT, PATCH (strategic merge, merge and
// apply, all applied as a strategic merge) and DELETE as kube-apiserver does for preconditions: a
// resourceVersion in the written object, or in DeleteOptions, must be the current one, else 409.
type fakeAPIServer struct {
	mu      sync.Mutex
	objects map[string]runtime.Object // by path
	rv      int
	// requests are "METHOD path?query" of every request, and bodies their bodies.
	requests []string
	bodies   []string
	// forbid answers the proxy's requests of this verb with RBAC's Forbidden.
	forbid string
	// beforeWrite runs before a write that is not a dry run is applied: another writer's moment.
	beforeWrite func(f *fakeAPIServer)
}

func newFakeAPIServer() *fakeAPIServer {
	f := &fakeAPIServer{objects: map[string]runtime.Object{}, rv: 100}
	for name, pool := range map[string]string{"oil-1": "oil", "oil-2": "oil", "gas-1": "gas"} {
		f.add("/api/v1/nodes/"+name, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"pool": pool}}})
	}
	for name, tier := range map[string]string{"gold": "", "oiled": "oil", "gassy": "gas"} {
		f.add("/apis/storage.k8s.io/v1/storageclasses/"+name, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"tier": tier}}, Provisioner: "example.com/x"})
	}
	return f
}

func (f *fakeAPIServer) add(path string, obj runtime.Object) {
	f.rv++
	m, _ := metaAccessor(obj)
	m.SetResourceVersion(strconv.Itoa(f.rv))
	f.objects[path] = obj
}

func metaAccessor(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

func (f *fakeAPIServer) object(path string) runtime.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objects[path]
}

func writeJSON(w http.ResponseWriter, code int, obj any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(obj)
}

func status(code int, reason metav1.StatusReason, message string) *metav1.Status {
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: message}
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.bodies = append(f.bodies, string(body))
	verb := map[string]string{http.MethodGet: "get", http.MethodPut: "update", http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	if f.forbid == verb {
		writeJSON(w, http.StatusForbidden, status(http.StatusForbidden, metav1.StatusReasonForbidden,
			fmt.Sprintf(`nodes is forbidden: User "system:serviceaccount:tp:tenant-proxy" cannot %s resource "nodes" in API group "" at the cluster scope`, verb)))
		return
	}
	current, exists := f.objects[r.URL.Path]
	if !exists {
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, metav1.StatusReasonNotFound, "not found"))
		return
	}
	currentMeta, _ := metaAccessor(current)
	conflict := func() {
		writeJSON(w, http.StatusConflict, status(http.StatusConflict, metav1.StatusReasonConflict, "the object has been modified; please apply your changes to the latest version and try again"))
	}
	dryRun := r.URL.Query().Get("dryRun") == metav1.DryRunAll
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, current)
	case http.MethodDelete:
		var opts metav1.DeleteOptions
		_ = json.Unmarshal(body, &opts)
		if !dryRun && f.beforeWrite != nil {
			f.beforeWrite(f)
			current = f.objects[r.URL.Path]
			currentMeta, _ = metaAccessor(current)
		}
		if p := opts.Preconditions; p != nil && (p.ResourceVersion != nil && *p.ResourceVersion != currentMeta.GetResourceVersion() ||
			p.UID != nil && *p.UID != currentMeta.GetUID()) {
			conflict()
			return
		}
		if !dryRun {
			delete(f.objects, r.URL.Path)
		}
		writeJSON(w, http.StatusOK, current)
	default:
		if !dryRun && f.beforeWrite != nil {
			f.beforeWrite(f)
			current = f.objects[r.URL.Path]
		}
		original, _ := json.Marshal(current)
		var result []byte
		var err error
		switch mediaType := r.Header.Get("Content-Type"); {
		case r.Method == http.MethodPut:
			result = body
		case mediaType == mediaApplyPatch:
			var js []byte
			if js, err = yaml.YAMLToJSON(body); err == nil {
				result, err = strategicpatch.StrategicMergePatch(original, js, current)
			}
		default:
			result, err = strategicpatch.StrategicMergePatch(original, body, current)
		}
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, status(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error()))
			return
		}
		updated := current.DeepCopyObject()
		if err := json.Unmarshal(result, updated); err != nil {
			writeJSON(w, http.StatusBadRequest, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
			return
		}
		m, _ := metaAccessor(updated)
		if m.GetResourceVersion() != "" && m.GetResourceVersion() != currentRV(f, r.URL.Path) {
			conflict()
			return
		}
		if !dryRun {
			f.add(r.URL.Path, updated)
		}
		writeJSON(w, http.StatusOK, updated)
	}
}

func currentRV(f *fakeAPIServer, path string) string {
	m, _ := metaAccessor(f.objects[path])
	return m.GetResourceVersion()
}

// writeFixture is the module with granted writes against a fake API server, behind a chain like the
// proxy's, whose forwarding as the caller answers moduletest.ForwardedStatus.
type writeFixture struct {
	api    *fakeAPIServer
	module *Module
	server *httptest.Server
}

func newWriteFixture(t *testing.T) *writeFixture {
	t.Helper()
	api := newFakeAPIServer()
	upstream := httptest.NewServer(api)
	t.Cleanup(upstream.Close)
	proxyUpstream, err := NewProxyUpstream(&rest.Config{Host: upstream.URL})
	if err != nil {
		t.Fatal(err)
	}
	objects := []runtime.Object{}
	for _, obj := range api.objects {
		objects = append(objects, obj.DeepCopyObject())
	}
	client := fake.NewClientset(objects...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		tenants.TenantsResource:               "TenantList",
		tenants.CapsuleConfigurationsResource: "CapsuleConfigurationList",
	},
		writeTenant("oil", nil, []any{
			map[string]any{"kind": "User", "name": "wes", "proxySettings": []any{
				grant("Nodes", "List", "Update", "Delete"), grant("StorageClasses", "List", "Update"),
			}},
			map[string]any{"kind": "User", "name": "lou", "proxySettings": []any{grant("Nodes", "List"), grant("StorageClasses", "List")}},
		}, "oil", "oil", "gold"),
		writeTenant("gas", map[string]any{"capsule.clastix.io/enable-node-deletion": "true"},
			[]any{map[string]any{"kind": "User", "name": "gus"}}, "gas", "gas"),
		&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "capsule.clastix.io/v1beta2", "kind": "CapsuleConfiguration",
			"metadata": map[string]any{"name": "default"},
			"spec":     map[string]any{"users": []any{map[string]any{"kind": "Group", "name": "projectcapsule.dev"}}},
		}},
	)
	f := &writeFixture{api: api, module: New(tenants.New(client, dyn, tenants.Options{}), client, AllResources...).EnableWrites(proxyUpstream)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.module.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the caches to sync", func() bool { return f.module.Ready(ctx) == nil })
	forward := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Forwarded-Body", string(body))
		w.WriteHeader(moduletest.ForwardedStatus)
	})
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := request.Parse(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		caller := writers[r.Header.Get(moduletest.UserHeader)]
		r = r.WithContext(apirequest.WithUser(apirequest.WithRequestInfo(r.Context(), info), caller))
		h := f.module.Intercept(modules.Request{User: caller, Info: info, HTTP: r, Forward: forward})
		if h == nil {
			forward.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.server.Close)
	return f
}

func (f *writeFixture) do(t *testing.T, caller, method, path, contentType, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.server.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(moduletest.UserHeader, caller)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

func node1(f *writeFixture, name string) *corev1.Node {
	obj, _ := f.api.object("/api/v1/nodes/" + name).(*corev1.Node)
	return obj
}

const (
	strategic = "application/strategic-merge-patch+json"
	cordon    = `{"spec":{"unschedulable":true}}`
)

func TestGrantedWrites(t *testing.T) {
	tests := []struct {
		name                     string
		caller, method, path, ct string
		body                     string
		setUp                    func(*writeFixture)
		wantCode                 int
		wantBody                 string   // a substring of the answer
		wantRequests             []string // what the fake API server received, in order
		check                    func(t *testing.T, f *writeFixture)
	}{
		{
			name: "cordon a node of the pool", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/oil-1", ct: strategic, body: cordon,
			wantCode:     http.StatusOK,
			wantRequests: []string{"GET /api/v1/nodes/oil-1", "PATCH /api/v1/nodes/oil-1?dryRun=All", "PATCH /api/v1/nodes/oil-1"},
			check: func(t *testing.T, f *writeFixture) {
				if n := node1(f, "oil-1"); !n.Spec.Unschedulable {
					t.Error("oil-1 is not cordoned")
				}
				for _, body := range f.api.bodies[1:] {
					if !strings.Contains(body, `"resourceVersion":"`) {
						t.Errorf("write %s carries no resourceVersion precondition", body)
					}
				}
			},
		},
		{
			name: "server-side apply keeps the client's options", caller: "wes", method: http.MethodPatch,
			path: "/api/v1/nodes/oil-1?fieldManager=kubectl&force=true", ct: mediaApplyPatch,
			body:     "apiVersion: v1\nkind: Node\nmetadata:\n  name: oil-1\n  labels:\n    team: wes\n",
			wantCode: http.StatusOK,
			wantRequests: []string{"GET /api/v1/nodes/oil-1", "PATCH /api/v1/nodes/oil-1?dryRun=All&fieldManager=kubectl&force=true",
				"PATCH /api/v1/nodes/oil-1?fieldManager=kubectl&force=true"},
			check: func(t *testing.T, f *writeFixture) {
				if n := node1(f, "oil-1"); n.Labels["team"] != "wes" || n.Labels["pool"] != "oil" {
					t.Errorf("oil-1 labels %v", n.Labels)
				}
			},
		},
		{
			name: "a client dry run is only a dry run", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/oil-1?dryRun=All", ct: strategic, body: cordon,
			wantCode:     http.StatusOK,
			wantRequests: []string{"GET /api/v1/nodes/oil-1", "PATCH /api/v1/nodes/oil-1?dryRun=All", "PATCH /api/v1/nodes/oil-1?dryRun=All"},
			check: func(t *testing.T, f *writeFixture) {
				if n := node1(f, "oil-1"); n.Spec.Unschedulable {
					t.Error("a dry run cordoned oil-1")
				}
			},
		},
		{
			name: "another pool's node is forwarded as the caller", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/gas-1", ct: strategic, body: cordon,
			wantCode: moduletest.ForwardedStatus, wantRequests: []string{"GET /api/v1/nodes/gas-1"},
		},
		{
			name: "a missing node is forwarded as the caller", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/nope", ct: strategic, body: cordon,
			wantCode: moduletest.ForwardedStatus, wantRequests: []string{"GET /api/v1/nodes/nope"},
		},
		{
			name: "an owner granted only List is forwarded untouched", caller: "lou", method: http.MethodPatch, path: "/api/v1/nodes/oil-1", ct: strategic, body: cordon,
			wantCode: moduletest.ForwardedStatus,
		},
		{
			name: "relabelling a node out of the pool is refused", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/oil-1", ct: strategic,
			body: `{"metadata":{"labels":{"pool":"gas"}}}`, wantCode: http.StatusForbidden, wantBody: "same tenants",
			wantRequests: []string{"GET /api/v1/nodes/oil-1", "PATCH /api/v1/nodes/oil-1?dryRun=All"},
			check: func(t *testing.T, f *writeFixture) {
				if n := node1(f, "oil-1"); n.Labels["pool"] != "oil" {
					t.Errorf("oil-1 moved to pool %s", n.Labels["pool"])
				}
			},
		},
		{
			name: "a class that stays ours but joins another tenant's set is refused", caller: "wes", method: http.MethodPatch,
			path: "/apis/storage.k8s.io/v1/storageclasses/gold", ct: "application/merge-patch+json", body: `{"metadata":{"labels":{"tier":"gas"}}}`,
			wantCode: http.StatusForbidden, wantBody: "same tenants",
			wantRequests: []string{"GET /apis/storage.k8s.io/v1/storageclasses/gold", "PATCH /apis/storage.k8s.io/v1/storageclasses/gold?dryRun=All"},
		},
		{
			name: "a class label that changes no tenant's set is written", caller: "wes", method: http.MethodPatch,
			path: "/apis/storage.k8s.io/v1/storageclasses/oiled", ct: "application/merge-patch+json", body: `{"metadata":{"labels":{"speed":"fast"}}}`,
			wantCode: http.StatusOK,
			wantRequests: []string{"GET /apis/storage.k8s.io/v1/storageclasses/oiled", "PATCH /apis/storage.k8s.io/v1/storageclasses/oiled?dryRun=All",
				"PATCH /apis/storage.k8s.io/v1/storageclasses/oiled"},
		},
		{
			name: "a node is deleted with its UID and version as preconditions", caller: "wes", method: http.MethodDelete, path: "/api/v1/nodes/oil-2",
			wantCode: http.StatusOK, wantRequests: []string{"GET /api/v1/nodes/oil-2", "DELETE /api/v1/nodes/oil-2"},
			check: func(t *testing.T, f *writeFixture) {
				if f.api.object("/api/v1/nodes/oil-2") != nil {
					t.Error("oil-2 still exists")
				}
				if body := f.api.bodies[1]; !strings.Contains(body, `"uid":"uid-oil-2"`) || !strings.Contains(body, `"resourceVersion":"`) {
					t.Errorf("DELETE options %s lack the preconditions", body)
				}
			},
		},
		{
			name: "Update does not grant Delete", caller: "wes", method: http.MethodDelete, path: "/apis/storage.k8s.io/v1/storageclasses/gold",
			wantCode: moduletest.ForwardedStatus,
		},
		{
			name: "the legacy annotation grants deletion of the tenant's nodes", caller: "gus", method: http.MethodDelete, path: "/api/v1/nodes/gas-1",
			wantCode: http.StatusOK, wantRequests: []string{"GET /api/v1/nodes/gas-1", "DELETE /api/v1/nodes/gas-1"},
		},
		{
			name: "the legacy deletion grant does not grant update", caller: "gus", method: http.MethodPatch, path: "/api/v1/nodes/gas-1", ct: strategic, body: cordon,
			wantCode: moduletest.ForwardedStatus,
		},
		{
			name: "a client's own stale resourceVersion is a conflict", caller: "wes", method: http.MethodPut, path: "/api/v1/nodes/oil-1", ct: "application/json",
			body:     `{"apiVersion":"v1","kind":"Node","metadata":{"name":"oil-1","resourceVersion":"7","labels":{"pool":"oil"}}}`,
			wantCode: http.StatusConflict, wantRequests: []string{"GET /api/v1/nodes/oil-1"},
		},
		{
			name: "a client's stale delete precondition is a conflict", caller: "wes", method: http.MethodDelete, path: "/api/v1/nodes/oil-1", ct: "application/json",
			body:     `{"apiVersion":"v1","kind":"DeleteOptions","preconditions":{"resourceVersion":"7"}}`,
			wantCode: http.StatusConflict, wantRequests: []string{"GET /api/v1/nodes/oil-1"},
		},
		{
			name: "a change between the dry run and the write is a conflict, not an overwrite", caller: "wes", method: http.MethodPatch,
			path: "/api/v1/nodes/oil-1", ct: strategic, body: cordon,
			setUp: func(f *writeFixture) {
				f.api.beforeWrite = func(api *fakeAPIServer) {
					n := api.objects["/api/v1/nodes/oil-1"].DeepCopyObject().(*corev1.Node)
					n.Labels["other"] = "writer"
					api.add("/api/v1/nodes/oil-1", n)
					api.beforeWrite = nil
				}
			},
			wantCode:     http.StatusConflict,
			wantRequests: []string{"GET /api/v1/nodes/oil-1", "PATCH /api/v1/nodes/oil-1?dryRun=All", "PATCH /api/v1/nodes/oil-1"},
			check: func(t *testing.T, f *writeFixture) {
				if n := node1(f, "oil-1"); n.Spec.Unschedulable || n.Labels["other"] != "writer" {
					t.Errorf("oil-1: unschedulable=%v labels=%v, want only the other writer's change", n.Spec.Unschedulable, n.Labels)
				}
			},
		},
		{
			name: "a change before a delete is a conflict", caller: "wes", method: http.MethodDelete, path: "/api/v1/nodes/oil-1",
			setUp: func(f *writeFixture) {
				f.api.beforeWrite = func(api *fakeAPIServer) {
					n := api.objects["/api/v1/nodes/oil-1"].DeepCopyObject().(*corev1.Node)
					n.Labels["pool"] = "gas"
					api.add("/api/v1/nodes/oil-1", n)
					api.beforeWrite = nil
				}
			},
			wantCode: http.StatusConflict, wantRequests: []string{"GET /api/v1/nodes/oil-1", "DELETE /api/v1/nodes/oil-1"},
		},
		{
			name: "without write RBAC the proxy names its missing permission", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/oil-1", ct: strategic, body: cordon,
			setUp:    func(f *writeFixture) { f.api.forbid = "patch" },
			wantCode: http.StatusForbidden, wantBody: "rbac.clusterScopedWrites",
			wantRequests: []string{"GET /api/v1/nodes/oil-1", "PATCH /api/v1/nodes/oil-1?dryRun=All"},
		},
		{
			name: "without get RBAC the proxy names its missing permission", caller: "wes", method: http.MethodDelete, path: "/api/v1/nodes/oil-1",
			setUp:    func(f *writeFixture) { f.api.forbid = "get" },
			wantCode: http.StatusForbidden, wantBody: "may not get nodes", wantRequests: []string{"GET /api/v1/nodes/oil-1"},
		},
		{
			name: "an unknown content type is 415", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/oil-1", ct: "application/cbor", body: cordon,
			wantCode: http.StatusUnsupportedMediaType,
		},
		{
			name: "a body over 3 MiB is 413", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/oil-1", ct: strategic,
			body: `{"metadata":{"annotations":{"x":"` + strings.Repeat("a", maxWriteBodyBytes) + `"}}}`, wantCode: http.StatusRequestEntityTooLarge,
		},
		{
			name: "a subresource is forwarded", caller: "wes", method: http.MethodPatch, path: "/api/v1/nodes/oil-1/status", ct: strategic, body: cordon,
			wantCode: moduletest.ForwardedStatus,
		},
		{
			name: "deletecollection is forwarded", caller: "wes", method: http.MethodDelete, path: "/api/v1/nodes", wantCode: moduletest.ForwardedStatus,
		},
		{
			name: "create is forwarded", caller: "wes", method: http.MethodPost, path: "/api/v1/nodes", ct: "application/json",
			body: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"oil-3","labels":{"pool":"oil"}}}`, wantCode: moduletest.ForwardedStatus,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWriteFixture(t)
			if tt.setUp != nil {
				tt.setUp(f)
			}
			code, body, header := f.do(t, tt.caller, tt.method, tt.path, tt.ct, tt.body)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("%s %s = %d %s, want %d with %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantBody)
			}
			if code == moduletest.ForwardedStatus && header.Get("X-Forwarded-Body") != tt.body {
				t.Errorf("forwarded body %q, want the client's %q", header.Get("X-Forwarded-Body"), tt.body)
			}
			f.api.mu.Lock()
			got := append([]string(nil), f.api.requests...)
			f.api.mu.Unlock()
			if strings.Join(got, "\n") != strings.Join(tt.wantRequests, "\n") {
				t.Errorf("the API server received\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantRequests, "\n"))
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func TestGrantedWritesMetric(t *testing.T) {
	f := newWriteFixture(t)
	f.do(t, "wes", http.MethodPatch, "/api/v1/nodes/oil-1", strategic, cordon)
	f.do(t, "wes", http.MethodPatch, "/api/v1/nodes/gas-1", strategic, cordon)
	for _, c := range []struct {
		result string
		want   float64
	}{{resultWritten, 1}, {resultForwarded, 1}, {resultConflict, 0}} {
		if got := testutil.ToFloat64(f.module.writes.WithLabelValues("Nodes", "patch", c.result)); got != c.want {
			t.Errorf("writes{Nodes,patch,%s} = %v, want %v", c.result, got, c.want)
		}
	}
}

func TestServesAccess(t *testing.T) {
	f := newWriteFixture(t)
	tests := []struct {
		caller string
		attrs  authorizationv1.ResourceAttributes
		want   bool
	}{
		{"wes", authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "oil-1"}, true},
		{"wes", authorizationv1.ResourceAttributes{Verb: "update", Resource: "nodes"}, true},
		{"wes", authorizationv1.ResourceAttributes{Verb: "delete", Resource: "nodes", Name: "oil-1", Version: "v1"}, true},
		{"wes", authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "gas-1"}, false},
		{"wes", authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "oil-1", Subresource: "status"}, false},
		{"wes", authorizationv1.ResourceAttributes{Verb: "create", Resource: "nodes"}, false},
		{"wes", authorizationv1.ResourceAttributes{Verb: "deletecollection", Resource: "nodes"}, false},
		{"wes", authorizationv1.ResourceAttributes{Verb: "delete", Group: "storage.k8s.io", Resource: "storageclasses", Name: "gold"}, false},
		{"wes", authorizationv1.ResourceAttributes{Verb: "patch", Group: "storage.k8s.io", Resource: "storageclasses", Name: "gold"}, true},
		{"wes", authorizationv1.ResourceAttributes{Verb: "list", Group: "storage.k8s.io", Resource: "storageclasses"}, true},
		{"wes", authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes", Version: "v2"}, false},
		{"lou", authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "oil-2"}, true},
		{"lou", authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "gas-1"}, false},
		{"lou", authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "oil-1"}, false},
		{"gus", authorizationv1.ResourceAttributes{Verb: "delete", Resource: "nodes", Name: "gas-1"}, true},
		{"gus", authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes"}, false},
		{"gus", authorizationv1.ResourceAttributes{Verb: "update", Group: "capsule.clastix.io", Resource: "tenants", Name: "gas"}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %s/%s", tt.caller, tt.attrs.Verb, tt.attrs.Resource, tt.attrs.Name), func(t *testing.T) {
			nodes := f.module.find("api", "", "v1", "nodes")
			eventually(t, "the node cache", func() bool { return len(nodes.informer.GetStore().List()) == 3 })
			if got := f.module.ServesAccess(writers[tt.caller], &tt.attrs); got != tt.want {
				t.Errorf("ServesAccess = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWithResourceVersion(t *testing.T) {
	node := corev1.SchemeGroupVersion.WithKind("Node")
	protobufNode := func(rv string) []byte {
		var buf bytes.Buffer
		info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaProtobuf)
		n := &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "n", ResourceVersion: rv}}
		if err := codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion).Encode(n, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name, mediaType, body string
		want, wantMediaType   string // want is the JSON sent on; empty for protobuf
		wantErr               error
		wantAnyErr            bool
	}{
		{name: "merge patch", mediaType: mediaMergePatch, body: `{"metadata":{"labels":{"a":"b"}}}`,
			want: `{"metadata":{"labels":{"a":"b"},"resourceVersion":"42"}}`, wantMediaType: mediaMergePatch},
		{name: "strategic patch without metadata", mediaType: mediaStrategicPatch, body: `{"spec":{"unschedulable":true}}`,
			want: `{"metadata":{"resourceVersion":"42"},"spec":{"unschedulable":true}}`, wantMediaType: mediaStrategicPatch},
		{name: "numbers go on as sent", mediaType: mediaJSON, body: `{"metadata":{"name":"n"},"value":12345678901234567890}`,
			want: `{"metadata":{"name":"n","resourceVersion":"42"},"value":12345678901234567890}`, wantMediaType: mediaJSON},
		{name: "the client's equal resourceVersion", mediaType: mediaJSON, body: `{"metadata":{"resourceVersion":"42"}}`,
			want: `{"metadata":{"resourceVersion":"42"}}`, wantMediaType: mediaJSON},
		{name: "the client's other resourceVersion", mediaType: mediaJSON, body: `{"metadata":{"resourceVersion":"41"}}`, wantErr: errPreconditionConflict},
		// YAML is read as kube-apiserver reads it (sigs.k8s.io/yaml, YAML 1.1: an unquoted n is false).
		{name: "YAML is sent as JSON", mediaType: mediaYAML, body: "metadata:\n  name: node-1\n  labels: {a: n}\n",
			want: `{"metadata":{"labels":{"a":false},"name":"node-1","resourceVersion":"42"}}`, wantMediaType: mediaJSON},
		{name: "apply keeps its media type", mediaType: mediaApplyPatch, body: "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-1\n",
			want: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1","resourceVersion":"42"}}`, wantMediaType: mediaApplyPatch},
		{name: "JSON patch gets a replace at the end", mediaType: mediaJSONPatch, body: `[{"op":"add","path":"/metadata/labels/a","value":"b"}]`,
			want:          `[{"op":"add","path":"/metadata/labels/a","value":"b"},{"op":"replace","path":"/metadata/resourceVersion","value":"42"}]`,
			wantMediaType: mediaJSONPatch},
		{name: "JSON patch testing another version", mediaType: mediaJSONPatch, body: `[{"op":"test","path":"/metadata/resourceVersion","value":"41"}]`,
			wantErr: errPreconditionConflict},
		{name: "null metadata", mediaType: mediaMergePatch, body: `{"metadata":null}`, wantAnyErr: true},
		{name: "not an object", mediaType: mediaMergePatch, body: `[1]`, wantAnyErr: true},
		{name: "two documents", mediaType: mediaJSON, body: `{} {}`, wantAnyErr: true},
		{name: "protobuf", mediaType: mediaProtobuf, body: string(protobufNode("")), wantMediaType: mediaProtobuf},
		{name: "protobuf with another version", mediaType: mediaProtobuf, body: string(protobufNode("41")), wantErr: errPreconditionConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, mediaType, err := withResourceVersion(tt.mediaType, []byte(tt.body), "42", node)
			switch {
			case tt.wantErr != nil || tt.wantAnyErr:
				if err == nil || tt.wantErr != nil && !isErr(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if mediaType != tt.wantMediaType {
				t.Errorf("media type %s, want %s", mediaType, tt.wantMediaType)
			}
			if tt.mediaType == mediaProtobuf {
				obj, _, err := codecs.UniversalDeserializer().Decode(out, &node, nil)
				if err != nil || obj.(*corev1.Node).ResourceVersion != "42" || obj.(*corev1.Node).Name != "n" {
					t.Errorf("protobuf sent on: %v %+v", err, obj)
				}
				return
			}
			if string(out) != tt.want {
				t.Errorf("sent on %s, want %s", out, tt.want)
			}
		})
	}
}

func TestDeleteOptions(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		query                   url.Values
		wantErr                 bool
		check                   func(*metav1.DeleteOptions) bool
	}{
		{name: "from the query", query: url.Values{"propagationPolicy": {"Foreground"}, "dryRun": {"All"}},
			check: func(o *metav1.DeleteOptions) bool {
				return *o.PropagationPolicy == metav1.DeletePropagationForeground && len(o.DryRun) == 1
			}},
		{name: "from the body", contentType: "application/json", body: `{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}`,
			check: func(o *metav1.DeleteOptions) bool { return *o.GracePeriodSeconds == 0 }},
		{name: "equal client preconditions", contentType: "application/json", body: `{"preconditions":{"uid":"u","resourceVersion":"42"}}`,
			check: func(*metav1.DeleteOptions) bool { return true }},
		{name: "another UID", contentType: "application/json", body: `{"preconditions":{"uid":"v"}}`, wantErr: true},
		{name: "another version", contentType: "application/json", body: `{"preconditions":{"resourceVersion":"41"}}`, wantErr: true},
		{name: "a body of an unknown type", contentType: "application/cbor", body: `x`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := deleteOptions(tt.contentType, []byte(tt.body), tt.query, "u", "42")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("options %+v, want an error", o)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *o.Preconditions.UID != "u" || *o.Preconditions.ResourceVersion != "42" || !tt.check(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

func isErr(err, target error) bool {
	return err != nil && strings.Contains(err.Error(), target.Error())
}
