package namespaces

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

func TestInterceptTakesOnlyNamespaceReadsOfCapsuleUsers(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method, path, caller string
		taken                bool
	}{
		{"GET", "/api/v1/namespaces", "alice", true},
		{"GET", "/api/v1/namespaces", "bob", true},
		{"GET", "/api/v1/namespaces?watch=true&timeoutSeconds=1", "alice", true},
		{"GET", "/api/v1/namespaces/oil-a", "alice", true},
		{"GET", "/api/v1/namespaces/gas-a", "alice", true}, // answered NotFound, never forwarded
		{"GET", "/api/v1/watch/namespaces?timeoutSeconds=1", "alice", true},
		{"GET", "/api/v1/watch/namespaces/oil-a?timeoutSeconds=1", "alice", true},
		{"GET", "/api/v1/namespaces", "admin", false}, // not a Capsule user: plain RBAC
		{"GET", "/api/v1/namespaces/oil-a", "admin", false},
		{"GET", "/api/v1/namespaces/oil-a/status", "alice", false},
		{"GET", "/api/v1/namespaces/oil-a/finalize", "alice", false},
		{"GET", "/api/v1/namespaces/oil-a/pods", "alice", false},
		{"GET", "/api/v1/namespaces/oil-a/configmaps/x", "alice", false},
		{"HEAD", "/api/v1/namespaces", "alice", false},
		{"POST", "/api/v1/namespaces", "alice", false},
		{"PUT", "/api/v1/namespaces/oil-a", "alice", false},
		{"PATCH", "/api/v1/namespaces/oil-a", "alice", false},
		{"DELETE", "/api/v1/namespaces/oil-a", "alice", false},
		{"DELETE", "/api/v1/namespaces", "alice", false}, // deletecollection
		{"GET", "/apis/example.com/v1/namespaces", "alice", false},
		{"GET", "/api/v2/namespaces", "alice", false},
		{"GET", "/api", "alice", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" as "+tt.caller, func(t *testing.T) {
			code, _, _ := f.do(t, tt.method, tt.caller, tt.path, "")
			if taken := code != forwardedStatus; taken != tt.taken {
				t.Errorf("taken = %v (status %d), want %v", taken, code, tt.taken)
			}
		})
	}
}

func TestUnsyncedIndexFailsClosed(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	index := tenants.New(fake.NewClientset(), dyn, tenants.Options{}) // never started
	m := New(index)
	if err := m.Ready(context.Background()); err == nil {
		t.Error("module ready before its caches synced")
	}
	f := &fixture{module: m}
	f.server = newServer(t, m)
	for _, caller := range []string{"alice", "admin"} { // whether someone is a Capsule user is not known yet
		code, _, body := f.get(t, caller, "/api/v1/namespaces", "application/json")
		status := decodeStatus(t, body)
		if code != http.StatusServiceUnavailable || status.Code != http.StatusServiceUnavailable || status.Kind != "Status" {
			t.Errorf("%s: %d %s, want a 503 Status", caller, code, body)
		}
	}
	if code, _, _ := f.get(t, "alice", "/api/v1/namespaces/x/pods", ""); code != forwardedStatus {
		t.Errorf("other resources are not the module's to refuse: %d", code)
	}
}

// TestListFormats asks for every format a client may negotiate and checks that each answers exactly the
// caller's namespaces.
func TestListFormats(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		accept      string
		contentType string
		names       func(t *testing.T, body []byte) []string
	}{
		{"", "application/json", jsonListNames},
		{"application/json", "application/json", jsonListNames},
		{"application/yaml", "application/yaml", yamlListNames},
		{"application/vnd.kubernetes.protobuf", "application/vnd.kubernetes.protobuf", protobufListNames},
		{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", "application/json", tableNames},
		{"application/json;as=Table;v=v1beta1;g=meta.k8s.io", "application/json", tableNames},
		{"application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "application/json", partialNames},
		{"application/json;as=PartialObjectMetadataList;v=v1beta1;g=meta.k8s.io", "application/json", partialNames},
		{"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "application/vnd.kubernetes.protobuf", protobufPartialNames},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			code, contentType, body := f.get(t, "alice", "/api/v1/namespaces", tt.accept)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			if mediaType, _, _ := strings.Cut(contentType, ";"); mediaType != tt.contentType {
				t.Errorf("Content-Type %q, want %q", contentType, tt.contentType)
			}
			if got := tt.names(t, body); !sameNames(got, aliceNamespaces) {
				t.Errorf("names %v, want %v", got, aliceNamespaces)
			}
		})
	}
}

func TestUnsupportedFormatsAreRefused(t *testing.T) {
	f := newFixture(t)
	for _, accept := range []string{
		"application/x-unknown",
		"text/html",
		"application/json;as=Unknown;v=v1;g=meta.k8s.io",
		"application/json;as=Table;v=v2;g=meta.k8s.io",
		"application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io", // Tables are JSON and YAML only
	} {
		t.Run(accept, func(t *testing.T) {
			code, _, body := f.get(t, "alice", "/api/v1/namespaces", accept)
			if code != http.StatusNotAcceptable || strings.Contains(string(body), "gas-") {
				t.Errorf("status %d, body %s; want 406 and no namespace", code, body)
			}
		})
	}
}

func TestTableLooksLikeTheAPIServers(t *testing.T) {
	f := newFixture(t)
	_, _, body := f.get(t, "alice", "/api/v1/namespaces?includeObject=Metadata", "application/json;as=Table;v=v1;g=meta.k8s.io")
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatal(err)
	}
	var columns []string
	for _, c := range table.ColumnDefinitions {
		columns = append(columns, c.Name)
	}
	if strings.Join(columns, ",") != "Name,Status,Age" || table.ResourceVersion == "" {
		t.Errorf("columns %v, resourceVersion %q", columns, table.ResourceVersion)
	}
	row := table.Rows[3] // oil-d
	if row.Cells[0] != "oil-d" || row.Cells[1] != "Terminating" || row.Cells[2] != "60m" {
		t.Errorf("row %v, want oil-d Terminating 60m", row.Cells)
	}
	var obj metav1.PartialObjectMetadata
	if err := json.Unmarshal(row.Object.Raw, &obj); err != nil || obj.Kind != "PartialObjectMetadata" || obj.Name != "oil-d" {
		t.Errorf("row object %s (%v), want PartialObjectMetadata of oil-d", row.Object.Raw, err)
	}
	_, _, body = f.get(t, "alice", "/api/v1/namespaces/oil-a?includeObject=Object", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if err := json.Unmarshal(body, &table); err != nil || len(table.Rows) != 1 || !strings.Contains(string(table.Rows[0].Object.Raw), `"kind":"Namespace"`) {
		t.Errorf("table of one namespace with its object: %s", body)
	}
}

// TestSelectorsOnlyNarrow: the client's selectors combine with the tenant filter, so no selector can reach
// beyond the caller's namespaces.
func TestSelectorsOnlyNarrow(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		query string
		want  []string
		code  int
	}{
		{"label notin the own tenant", "labelSelector=" + url.QueryEscape("capsule.clastix.io/tenant notin (oil)"), []string{"oil-old"}, 200},
		{"label on another tenant", "labelSelector=" + url.QueryEscape("capsule.clastix.io/tenant=gas"), []string{}, 200},
		{"label absent", "labelSelector=" + url.QueryEscape("!capsule.clastix.io/tenant"), []string{"oil-old"}, 200},
		{"label narrows", "labelSelector=stage%3Ddev", []string{"oil-a"}, 200},
		{"label exists", "labelSelector=stage", []string{"oil-a", "oil-b"}, 200},
		{"repeated labelSelector", "labelSelector=stage%3Ddev&labelSelector=" + url.QueryEscape("!stage"), []string{"oil-a"}, 200},
		{"field name of another namespace", "fieldSelector=metadata.name%3Dkube-system", []string{}, 200},
		{"field name of another tenant's", "fieldSelector=metadata.name%3Dgas-a", []string{}, 200},
		{"field name not equal", "fieldSelector=metadata.name!%3Doil-a", []string{"oil-b", "oil-c", "oil-d", "oil-old"}, 200},
		{"field phase", "fieldSelector=status.phase%3DTerminating", []string{"oil-d"}, 200},
		{"field and label", "fieldSelector=status.phase%3DActive&labelSelector=stage", []string{"oil-a", "oil-b"}, 200},
		{"malformed label selector", "labelSelector=" + url.QueryEscape("stage in (dev"), nil, 400},
		{"unsupported field", "fieldSelector=spec.finalizers%3Dkubernetes", nil, 400},
		{"malformed field selector", "fieldSelector=metadata.name", nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.get(t, "alice", "/api/v1/namespaces?"+tt.query, "application/json")
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			if tt.code != 200 {
				if s := decodeStatus(t, body); s.Kind != "Status" || s.Reason != metav1.StatusReasonBadRequest {
					t.Errorf("want a BadRequest Status, got %s", body)
				}
				return
			}
			if got := jsonListNames(t, body); !sameNames(got, tt.want) {
				t.Errorf("names %v, want %v", got, tt.want)
			}
		})
	}
}

// TestNotFoundIsNoOracle: another tenant's namespace, a namespace of no tenant and a namespace that does
// not exist answer byte for byte alike, in every format.
func TestNotFoundIsNoOracle(t *testing.T) {
	f := newFixture(t)
	for _, accept := range []string{"", "application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
		"application/json;as=Table;v=v1;g=meta.k8s.io,application/json", "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"} {
		t.Run(accept, func(t *testing.T) {
			code, contentType, missing := f.get(t, "alice", "/api/v1/namespaces/no-such-namespace", accept)
			if code != http.StatusNotFound {
				t.Fatalf("missing namespace: %d %s", code, missing)
			}
			for _, name := range []string{"gas-a", "kube-system", "fake-oil"} {
				gotCode, gotType, body := f.get(t, "alice", "/api/v1/namespaces/"+name, accept)
				want := strings.ReplaceAll(string(missing), "no-such-namespace", name)
				if accept == "application/vnd.kubernetes.protobuf" {
					want = string(missing) // the name's length is inside the encoding; compare the Status instead
					if s := decodeProtobufStatus(t, body); s.Message != `namespaces "`+name+`" not found` || s.Code != 404 {
						t.Errorf("%s: %+v", name, s)
					}
					continue
				}
				if gotCode != code || gotType != contentType || string(body) != want {
					t.Errorf("%s answers %d %q %s\nmissing answers %d %q %s", name, gotCode, gotType, body, code, contentType, want)
				}
			}
		})
	}
	s := func() metav1.Status {
		_, _, body := f.get(t, "alice", "/api/v1/namespaces/gas-a", "application/json")
		return decodeStatus(t, body)
	}()
	want := apierrors.NewNotFound(corev1.Resource("namespaces"), "gas-a").ErrStatus
	if s.Message != want.Message || s.Reason != want.Reason || s.Details.Name != "gas-a" || s.Details.Kind != "namespaces" {
		t.Errorf("status %+v, want the API server's %+v", s, want)
	}
}

func TestGetFormats(t *testing.T) {
	f := newFixture(t)
	for _, client := range []struct {
		name     string
		protobuf bool
	}{{"json", false}, {"protobuf", true}} {
		t.Run(client.name, func(t *testing.T) {
			c := f.clientFor(t, "alice", client.protobuf)
			ns, err := c.CoreV1().Namespaces().Get(context.Background(), "oil-a", metav1.GetOptions{})
			if err != nil || ns.Name != "oil-a" || ns.Labels["stage"] != "dev" {
				t.Errorf("get oil-a: %v %v", ns, err)
			}
			_, err = c.CoreV1().Namespaces().Get(context.Background(), "gas-a", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("get gas-a: %v, want NotFound", err)
			}
			list, err := c.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
			if err != nil || !sameNames(namesOf(list.Items), aliceNamespaces) {
				t.Errorf("list: %v %v", list, err)
			}
		})
	}
	_, _, body := f.get(t, "alice", "/api/v1/namespaces/oil-a", "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io")
	var partial metav1.PartialObjectMetadata
	if err := json.Unmarshal(body, &partial); err != nil || partial.Kind != "PartialObjectMetadata" || partial.Name != "oil-a" {
		t.Errorf("PartialObjectMetadata: %s", body)
	}
}

func TestPagination(t *testing.T) {
	f := newFixture(t)
	c := f.clientFor(t, "alice", false)
	tests := []struct {
		name     string
		selector string
		limit    int64
		want     []string
	}{
		{"pages of two", "", 2, aliceNamespaces},
		{"pages of one", "", 1, aliceNamespaces},
		{"one page", "", 10, aliceNamespaces},
		{"with a selector", "stage", 1, []string{"oil-a", "oil-b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			opts := metav1.ListOptions{Limit: tt.limit, LabelSelector: tt.selector}
			firstRV := ""
			for pages := 0; ; pages++ {
				list, err := c.CoreV1().Namespaces().List(context.Background(), opts)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(list.Items)) > tt.limit {
					t.Errorf("page of %d items, limit %d", len(list.Items), tt.limit)
				}
				if firstRV == "" {
					firstRV = list.ResourceVersion
				} else if list.ResourceVersion != firstRV {
					t.Errorf("page resource version %s, first page %s", list.ResourceVersion, firstRV)
				}
				if tt.selector == "" && list.Continue != "" {
					if list.RemainingItemCount == nil || int(*list.RemainingItemCount) != len(tt.want)-len(got)-len(list.Items) {
						t.Errorf("remainingItemCount %v after %d+%d of %d", list.RemainingItemCount, len(got), len(list.Items), len(tt.want))
					}
				}
				got = append(got, namesOf(list.Items)...)
				if list.Continue == "" {
					break
				}
				if strings.Contains(list.Continue, "oil") {
					t.Errorf("continue token %q is not opaque", list.Continue)
				}
				opts.Continue = list.Continue
			}
			if !sameNames(got, tt.want) {
				t.Errorf("pages gave %v, want %v", got, tt.want)
			}
		})
	}
	code, _, body := f.get(t, "alice", "/api/v1/namespaces?limit=1&continue=garbage", "application/json")
	if code != http.StatusBadRequest || decodeStatus(t, body).Kind != "Status" {
		t.Errorf("bad continue token: %d %s", code, body)
	}
	// A continue token cannot reach another tenant's namespaces: it only says where to resume.
	forged := encodeContinue(0, "gas-")
	code, _, body = f.get(t, "alice", "/api/v1/namespaces?limit=10&continue="+forged, "application/json")
	if code != http.StatusOK || !sameNames(jsonListNames(t, body), aliceNamespaces) {
		t.Errorf("forged continue token: %d %s", code, body)
	}
}

func TestResourceVersionSemantics(t *testing.T) {
	f := newFixture(t)
	current := f.index.ResourceVersion()
	tests := []struct {
		query string
		code  int
	}{
		{"resourceVersion=0", 200},
		{"resourceVersion=" + itoa(current), 200},
		{"resourceVersion=" + itoa(current) + "&resourceVersionMatch=Exact", 200},
		{"resourceVersion=" + itoa(current-1) + "&resourceVersionMatch=Exact", http.StatusGone},
		{"resourceVersion=" + itoa(current+1000), http.StatusGatewayTimeout}, // too large, after a short wait
		{"resourceVersion=abc", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, _, body := f.get(t, "alice", "/api/v1/namespaces?"+tt.query, "application/json")
			if code != tt.code {
				t.Errorf("status %d, want %d: %s", code, tt.code, body)
			}
		})
	}
}

func decodeStatus(t *testing.T, body []byte) metav1.Status {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("not a JSON Status: %s", body)
	}
	return s
}

func decodeProtobufStatus(t *testing.T, body []byte) *metav1.Status {
	t.Helper()
	obj, _, err := codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		t.Fatalf("protobuf Status: %v", err)
	}
	s, ok := obj.(*metav1.Status)
	if !ok {
		t.Fatalf("got %T, want Status", obj)
	}
	return s
}

func jsonListNames(t *testing.T, body []byte) []string {
	t.Helper()
	var list corev1.NamespaceList
	if err := json.Unmarshal(body, &list); err != nil || list.Kind != "NamespaceList" {
		t.Fatalf("not a NamespaceList (%v): %s", err, body)
	}
	return namesOf(list.Items)
}

func yamlListNames(t *testing.T, body []byte) []string {
	t.Helper()
	obj, _, err := codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		t.Fatalf("YAML list: %v", err)
	}
	return namesOf(obj.(*corev1.NamespaceList).Items)
}

func protobufListNames(t *testing.T, body []byte) []string {
	t.Helper()
	obj, _, err := codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		t.Fatalf("protobuf list: %v", err)
	}
	return namesOf(obj.(*corev1.NamespaceList).Items)
}

func tableNames(t *testing.T, body []byte) []string {
	t.Helper()
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil || table.Kind != "Table" {
		t.Fatalf("not a Table (%v): %s", err, body)
	}
	names := []string{}
	for _, row := range table.Rows {
		names = append(names, row.Cells[0].(string))
	}
	return names
}

func partialNames(t *testing.T, body []byte) []string {
	t.Helper()
	var list metav1.PartialObjectMetadataList
	if err := json.Unmarshal(body, &list); err != nil || list.Kind != "PartialObjectMetadataList" {
		t.Fatalf("not a PartialObjectMetadataList (%v): %s", err, body)
	}
	names := []string{}
	for _, item := range list.Items {
		names = append(names, item.Name)
	}
	return names
}

// metaCodecs decode the meta.k8s.io kinds the API server's transforms produce.
var metaCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	metav1.AddMetaToScheme(s)
	return serializer.NewCodecFactory(s)
}()

func protobufPartialNames(t *testing.T, body []byte) []string {
	t.Helper()
	obj, _, err := metaCodecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		t.Fatalf("protobuf PartialObjectMetadataList: %v", err)
	}
	names := []string{}
	for _, item := range obj.(*metav1.PartialObjectMetadataList).Items {
		names = append(names, item.Name)
	}
	return names
}
