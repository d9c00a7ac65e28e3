package allnamespaces

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	proxyrequest "github.com/tenant-proxy/tenant-proxy/internal/request"
)

const jsonType = "application/json"

type fakeIndex struct {
	synced     bool
	capsule    bool
	namespaces []string
}

func (f *fakeIndex) Synced() bool                 { return f.synced }
func (f *fakeIndex) CapsuleUser(u user.Info) bool { return f.capsule }
func (f *fakeIndex) Namespaces(user.Info) ([]*corev1.Namespace, uint64) {
	var out []*corev1.Namespace
	for _, n := range f.namespaces {
		out = append(out, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	return out, 1
}

type fakeScope map[schema.GroupVersionResource]bool

func (f fakeScope) Namespaced(gvr schema.GroupVersionResource) bool { return f[gvr] }

var scope = fakeScope{
	{Version: "v1", Resource: "configmaps"}:                          true,
	{Group: "apps", Version: "v1", Resource: "deployments"}:          true,
	{Version: "v1", Resource: "nodes"}:                               false,
	{Group: "storage.k8s.io", Version: "v1", Resource: "csidrivers"}: false,
}

func request(t *testing.T, method, target string) modules.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	info, err := proxyrequest.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	return modules.Request{User: &user.DefaultInfo{Name: "owner"}, Info: info, HTTP: r}
}

func TestIntercept(t *testing.T) {
	owner := &fakeIndex{synced: true, capsule: true, namespaces: []string{"b", "a"}}
	tests := []struct {
		name   string
		index  *fakeIndex
		method string
		target string
		want   bool
	}{
		{"list configmaps in all namespaces", owner, http.MethodGet, "/api/v1/configmaps", true},
		{"list deployments as a Table", owner, http.MethodGet, "/apis/apps/v1/deployments?as=Table", true},
		{"watch", owner, http.MethodGet, "/api/v1/configmaps?watch=true", true},
		{"legacy watch path", owner, http.MethodGet, "/api/v1/watch/configmaps", true},
		{"watch-list", owner, http.MethodGet, "/api/v1/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", false},
		{"watch-list, any spelling", owner, http.MethodGet, "/api/v1/configmaps?watch=1&sendInitialEvents=1", false},
		{"watch in one namespace", owner, http.MethodGet, "/api/v1/namespaces/a/configmaps?watch=true", false},
		{"watch of a cluster-scoped resource", owner, http.MethodGet, "/api/v1/nodes?watch=true", false},
		{"watch, not a Capsule user", &fakeIndex{synced: true, namespaces: []string{"a"}}, http.MethodGet, "/api/v1/configmaps?watch=true", false},
		{"one namespace", owner, http.MethodGet, "/api/v1/namespaces/a/configmaps", false},
		{"one object", owner, http.MethodGet, "/api/v1/namespaces/a/configmaps/x", false},
		{"deletecollection", owner, http.MethodDelete, "/api/v1/configmaps", false},
		{"POST", owner, http.MethodPost, "/api/v1/configmaps", false},
		{"cluster-scoped resource", owner, http.MethodGet, "/api/v1/nodes", false},
		{"cluster-scoped group resource", owner, http.MethodGet, "/apis/storage.k8s.io/v1/csidrivers", false},
		{"unknown resource", owner, http.MethodGet, "/apis/example.com/v1/widgets", false},
		{"non-resource request", owner, http.MethodGet, "/version", false},
		{"discovery", owner, http.MethodGet, "/api/v1", false},
		{"not a Capsule user", &fakeIndex{synced: true, namespaces: []string{"a"}}, http.MethodGet, "/api/v1/configmaps", false},
		{"index not synced", &fakeIndex{capsule: true, namespaces: []string{"a"}}, http.MethodGet, "/api/v1/configmaps", false},
		{"no visible namespaces", &fakeIndex{synced: true, capsule: true}, http.MethodGet, "/api/v1/configmaps", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Module{index: tt.index, scope: scope}
			if got := m.Intercept(request(t, tt.method, tt.target)) != nil; got != tt.want {
				t.Fatalf("Intercept(%s %s) taken = %v, want %v", tt.method, tt.target, got, tt.want)
			}
		})
	}
}

func list(kind string, names ...string) string {
	items := make([]string, 0, len(names))
	for _, n := range names {
		items = append(items, `{"metadata":{"name":"`+n+`"}}`)
	}
	return `{"kind":"` + kind + `","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"abc","remainingItemCount":3},"items":[` + strings.Join(items, ",") + `]}`
}

func table(names ...string) string {
	rows := make([]string, 0, len(names))
	for _, n := range names {
		rows = append(rows, `{"cells":["`+n+`"],"object":{"metadata":{"name":"`+n+`"}}}`)
	}
	return `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"7"},"columnDefinitions":[{"name":"Name","type":"string"}],"rows":[` + strings.Join(rows, ",") + `]}`
}

const forbidden = `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`

func TestMerge(t *testing.T) {
	tests := []struct {
		name      string
		results   []result
		wantCode  int
		wantField string
		wantNames []string
		wantBody  string // exact body for answers passed through
		wantErr   bool
		cut       string
	}{
		{"lists", []result{{200, jsonType, []byte(list("ConfigMapList", "a1", "a2"))}, {200, jsonType, []byte(list("ConfigMapList", "b1"))}},
			200, "items", []string{"a1", "a2", "b1"}, "", false, "42"},
		{"tables", []result{{200, "application/json;as=Table;g=meta.k8s.io;v=v1", []byte(table("a1"))}, {200, "application/json;as=Table;g=meta.k8s.io;v=v1", []byte(table("b1", "b2"))}},
			200, "rows", []string{"a1", "b1", "b2"}, "", false, ""},
		{"empty lists", []result{{200, jsonType, []byte(list("ConfigMapList"))}, {200, jsonType, []byte(`{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":null}`)}},
			200, "items", nil, "", false, ""},
		{"403 skipped", []result{{403, jsonType, []byte(forbidden)}, {200, jsonType, []byte(list("ConfigMapList", "b1"))}, {403, jsonType, []byte(forbidden)}},
			200, "items", []string{"b1"}, "", false, ""},
		{"403 everywhere: the API server's answer", []result{{403, jsonType, []byte(forbidden)}, {403, jsonType, []byte(forbidden)}},
			403, "", nil, forbidden, false, ""},
		{"other error passed through", []result{{200, jsonType, []byte(list("ConfigMapList", "a1"))}, {400, jsonType, []byte(`{"kind":"Status","code":400}`)}},
			400, "", nil, `{"kind":"Status","code":400}`, false, ""},
		{"not JSON", []result{{200, "application/vnd.kubernetes.protobuf", []byte("k8s\x00")}}, 0, "", nil, "", true, ""},
		{"mixed kinds", []result{{200, jsonType, []byte(list("ConfigMapList"))}, {200, jsonType, []byte(table())}}, 0, "", nil, "", true, ""},
		{"not a list", []result{{200, jsonType, []byte(`{"kind":"ConfigMap","apiVersion":"v1"}`)}}, 0, "", nil, "", true, ""},
		{"malformed", []result{{200, jsonType, []byte(`{"kind":`)}}, 0, "", nil, "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := merge(tt.results, tt.cut)
			if (err != nil) != tt.wantErr {
				t.Fatalf("merge error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.code != tt.wantCode {
				t.Fatalf("code %d, want %d (%s)", got.code, tt.wantCode, got.body)
			}
			if tt.wantBody != "" {
				if string(got.body) != tt.wantBody {
					t.Fatalf("body %s, want %s", got.body, tt.wantBody)
				}
				return
			}
			if got.contentType != tt.results[0].contentType && tt.results[0].code == 200 {
				t.Errorf("content type %q, want %q", got.contentType, tt.results[0].contentType)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(got.body, &obj); err != nil {
				t.Fatal(err)
			}
			var entries []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
				Object   struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				} `json:"object"`
			}
			if err := json.Unmarshal(obj[tt.wantField], &entries); err != nil || entries == nil {
				t.Fatalf("%s = %s (%v), want an array", tt.wantField, obj[tt.wantField], err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Metadata.Name+e.Object.Metadata.Name)
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("names %v, want %v", names, tt.wantNames)
			}
			var meta metav1.ListMeta
			if err := json.Unmarshal(obj["metadata"], &meta); err != nil {
				t.Fatal(err)
			}
			if meta.Continue != "" || meta.ResourceVersion != tt.cut || meta.RemainingItemCount != nil {
				t.Errorf("merged metadata %s: want no continue or remainingItemCount, resourceVersion %q", obj["metadata"], tt.cut)
			}
			if tt.wantField == "rows" && !strings.Contains(string(obj["columnDefinitions"]), `"Name"`) {
				t.Errorf("columnDefinitions lost: %s", obj["columnDefinitions"])
			}
		})
	}
}

// upstream answers like the API server: a list per namespace, 403 for namespaces in deny, and records what
// it was asked (from concurrent sub-requests).
type upstream struct {
	deny  map[string]bool
	fail  map[string]int
	mu    sync.Mutex
	asked []*http.Request
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.asked = append(u.asked, r)
	u.mu.Unlock()
	ns := strings.Split(r.URL.Path, "/")[4]
	switch {
	case u.deny[ns]:
		w.Header().Set("Content-Type", jsonType)
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(forbidden))
	case u.fail[ns] != 0:
		w.Header().Set("Content-Type", jsonType)
		w.WriteHeader(u.fail[ns])
		_, _ = w.Write([]byte(`{"kind":"Status","code":500}`))
	default:
		w.Header().Set("Content-Type", jsonType)
		_, _ = w.Write([]byte(list("ConfigMapList", ns+"-cm")))
	}
}

func TestServe(t *testing.T) {
	tests := []struct {
		name       string
		namespaces []string
		accept     string
		up         *upstream
		wantCode   int
		wantAsked  int
		wantInBody []string
	}{
		{"merged in namespace order", []string{"b", "a"}, "application/json", &upstream{}, 200, 2, []string{`"a-cm"`, `"b-cm"`}},
		{"forbidden namespace skipped", []string{"a", "b", "c"}, "", &upstream{deny: map[string]bool{"b": true}}, 200, 3, []string{`"a-cm"`, `"c-cm"`}},
		{"merged in namespace order when listed concurrently", manyNamespaces(3 * fanOut), "application/json", &upstream{}, 200, 3 * fanOut, []string{`"ns-0000-cm"`, `"ns-0011-cm"`}},
		{"error passed through", []string{"a", "b", "c"}, "application/json", &upstream{fail: map[string]int{"b": 500}}, 500, 3, []string{`"code":500`}},
		{"first error passed through, of several", []string{"a", "b", "c", "d"}, "application/json", &upstream{fail: map[string]int{"b": 500, "c": 503}}, 500, 4, []string{`"code":500`}},
		{"error in the first namespace stops", []string{"a", "b", "c"}, "application/json", &upstream{fail: map[string]int{"a": 500}}, 500, 1, []string{`"code":500`}},
		{"protobuf only is not acceptable", []string{"a"}, "application/vnd.kubernetes.protobuf", &upstream{}, 406, 0, []string{"NotAcceptable"}},
		{"protobuf or JSON", []string{"a"}, "application/vnd.kubernetes.protobuf, application/json", &upstream{}, 200, 1, []string{`"a-cm"`}},
		{"too many namespaces", manyNamespaces(MaxNamespaces + 1), "application/json", &upstream{}, 400, 0, []string{"name a namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Module{index: &fakeIndex{synced: true, capsule: true, namespaces: tt.namespaces}, scope: scope}
			req := request(t, http.MethodGet, "/api/v1/configmaps?limit=500&continue=x&labelSelector=app%3Dweb&resourceVersion=0")
			req.Forward = tt.up
			if tt.accept != "" {
				req.HTTP.Header.Set("Accept", tt.accept)
			}
			req.HTTP.Header.Set("Authorization", "Bearer secret")
			h := m.Intercept(req)
			if h == nil {
				t.Fatal("not intercepted")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.HTTP)
			if w.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.wantCode, w.Body.String())
			}
			for _, s := range tt.wantInBody {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body %s does not contain %s", w.Body.String(), s)
				}
			}
			if len(tt.up.asked) != tt.wantAsked {
				t.Fatalf("asked upstream %d times, want %d", len(tt.up.asked), tt.wantAsked)
			}
			// Sub-requests after the first run concurrently: check them in namespace order.
			slices.SortFunc(tt.up.asked, func(a, b *http.Request) int { return strings.Compare(a.URL.Path, b.URL.Path) })
			for i, r := range tt.up.asked {
				if want := "/api/v1/namespaces/" + slices.Sorted(slices.Values(tt.namespaces))[i] + "/configmaps"; r.URL.Path != want {
					t.Errorf("sub-request path %s, want %s", r.URL.Path, want)
				}
				q := r.URL.Query()
				if q.Has("limit") || q.Has("continue") || q.Get("labelSelector") != "app=web" {
					t.Errorf("sub-request query %s", r.URL.RawQuery)
				}
				// The first namespace as the client asked, the rest at exactly the resource version it answered.
				wantRV, wantMatch := "0", ""
				for _, before := range slices.Sorted(slices.Values(tt.namespaces))[:i] {
					if !tt.up.deny[before] && tt.up.fail[before] == 0 {
						wantRV, wantMatch = "42", "Exact"
					}
				}
				if q.Get("resourceVersion") != wantRV || q.Get("resourceVersionMatch") != wantMatch {
					t.Errorf("sub-request %d query %s, want resourceVersion %s, resourceVersionMatch %q", i, r.URL.RawQuery, wantRV, wantMatch)
				}
				if r.Header.Get("Authorization") != "" || r.Header.Get("Accept") != "application/json" {
					t.Errorf("sub-request headers %v", r.Header)
				}
				if r.Method != http.MethodGet {
					t.Errorf("sub-request method %s", r.Method)
				}
			}
		})
	}
}

func TestJSONAccept(t *testing.T) {
	tests := []struct {
		in   []string
		want string
		ok   bool
	}{
		{nil, "application/json", true},
		{[]string{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"},
			"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", true},
		{[]string{"application/vnd.kubernetes.protobuf", "application/json"}, "application/json", true},
		{[]string{"*/*"}, "application/json", true},
		{[]string{"application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"}, "", false},
		{[]string{"application/yaml"}, "", false},
	}
	for _, tt := range tests {
		got, ok := jsonAccept(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("jsonAccept(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNamespacedPath(t *testing.T) {
	if got := namespacedPath(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ns"); got != "/api/v1/namespaces/ns/configmaps" {
		t.Error(got)
	}
	if got := namespacedPath(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "ns"); got != "/apis/apps/v1/namespaces/ns/deployments" {
		t.Error(got)
	}
}

func manyNamespaces(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("ns-%04d", i)
	}
	return out
}
