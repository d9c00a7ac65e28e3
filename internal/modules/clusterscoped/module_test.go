package clusterscoped

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	storageClassesPath = "/apis/storage.k8s.io/v1/storageclasses"
	nodesPath          = "/api/v1/nodes"
	tableAccept        = "application/json;as=Table;v=v1;g=meta.k8s.io"
	metadataAccept     = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
)

func TestInterceptTakesOnlyGrantedReads(t *testing.T) {
	f := newFixture(t, true)
	for _, c := range []struct {
		caller, method, path string
		taken                bool
	}{
		{"alice", http.MethodGet, storageClassesPath, true},
		{"alice", http.MethodGet, storageClassesPath + "/gold", true},
		{"alice", http.MethodGet, nodesPath, true},
		{"alice", http.MethodGet, nodesPath + "/oil-node-1", true},
		{"alice", http.MethodGet, storageClassesPath + "?watch=true&timeoutSeconds=1", true},
		{"alice", http.MethodGet, "/apis/storage.k8s.io/v1/watch/storageclasses?timeoutSeconds=1", true},
		{"alice", http.MethodGet, nodesPath + "/oil-node-1/status", false},
		{"alice", http.MethodGet, "/api/v1/namespaces/default/nodes", false},
		{"alice", http.MethodGet, "/apis/storage.k8s.io/v1beta1/storageclasses", false},
		{"alice", http.MethodPut, storageClassesPath + "/gold", false},
		{"alice", http.MethodDelete, storageClassesPath + "/gold", false},
		{"alice", http.MethodDelete, storageClassesPath, false},
		{"alice", http.MethodPatch, nodesPath + "/oil-node-1", false},
		{"alice", http.MethodGet, "/apis/networking.k8s.io/v1/ingressclasses", false}, // no grant: plain RBAC
		{"bob", http.MethodGet, storageClassesPath, false},                            // owner without proxy settings
		{"bob", http.MethodGet, nodesPath, false},
		{"admin", http.MethodGet, storageClassesPath, false},
	} {
		status, _, _ := f.do(t, c.method, c.caller, c.path, "")
		if taken := status != forwardedStatus; taken != c.taken {
			t.Errorf("%s %s %s: taken %v (status %d), want %v", c.caller, c.method, c.path, taken, status, c.taken)
		}
	}
}

func TestUnsyncedCachesFailClosed(t *testing.T) {
	f := newFixture(t, false)
	status, _, body := f.do(t, http.MethodGet, "alice", storageClassesPath, "")
	if status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503: %s", status, body)
	}
}

func TestListFormats(t *testing.T) {
	f := newFixture(t, true)
	for _, protobuf := range []bool{false, true} {
		client := f.clientFor(t, "alice", protobuf)
		classes, err := client.StorageV1().StorageClasses().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("protobuf %v: %v", protobuf, err)
		}
		if got := classNames(classes.Items); !slices.Equal(got, aliceClasses) {
			t.Errorf("protobuf %v: storage classes %v, want %v", protobuf, got, aliceClasses)
		}
		nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("protobuf %v: %v", protobuf, err)
		}
		if got := nodeNames(nodes.Items); !slices.Equal(got, aliceNodes) {
			t.Errorf("protobuf %v: nodes %v, want %v", protobuf, got, aliceNodes)
		}
	}
	for _, accept := range []string{tableAccept, metadataAccept, "application/yaml"} {
		status, _, body := f.do(t, http.MethodGet, "alice", storageClassesPath, accept)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", accept, status, body)
		}
		for _, name := range []string{"bronze"} {
			if strings.Contains(string(body), name) {
				t.Errorf("%s: response names %s:\n%s", accept, name, body)
			}
		}
		for _, name := range aliceClasses {
			if !strings.Contains(string(body), name) {
				t.Errorf("%s: response lacks %s:\n%s", accept, name, body)
			}
		}
	}
}

func TestUnsupportedFormatsAreRefused(t *testing.T) {
	f := newFixture(t, true)
	for _, accept := range []string{"text/html", "application/json;as=Bogus;v=v1;g=meta.k8s.io"} {
		status, _, body := f.do(t, http.MethodGet, "alice", storageClassesPath, accept)
		if status != http.StatusNotAcceptable {
			t.Errorf("%s: status %d, want 406: %s", accept, status, body)
		}
	}
}

func TestTableLooksLikeKubectls(t *testing.T) {
	f := newFixture(t, true)
	for _, c := range []struct {
		path    string
		columns []string
		first   []any
	}{
		{storageClassesPath, []string{"Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"},
			[]any{"gold", "example.com/gold", "Delete", "Immediate", false, "60m"}},
		{nodesPath, []string{"Name", "Status", "Roles", "Age", "Version"}, []any{"oil-node-1", "Ready", "<none>", "<unknown>", ""}},
	} {
		status, _, body := f.do(t, http.MethodGet, "alice", c.path, tableAccept)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", c.path, status, body)
		}
		var table metav1.Table
		if err := json.Unmarshal(body, &table); err != nil {
			t.Fatal(err)
		}
		var columns []string
		for _, col := range table.ColumnDefinitions {
			columns = append(columns, col.Name)
		}
		if !slices.Equal(columns, c.columns) {
			t.Errorf("%s: columns %v, want %v", c.path, columns, c.columns)
		}
		if len(table.Rows) == 0 || !slices.Equal(table.Rows[0].Cells, c.first) {
			t.Errorf("%s: first row %v, want %v", c.path, table.Rows, c.first)
		}
	}
}

func TestSelectorsOnlyNarrow(t *testing.T) {
	f := newFixture(t, true)
	client := f.clientFor(t, "alice", false)
	for _, c := range []struct {
		label, field string
		want         []string
	}{
		{"tier notin (oil)", "", []string{"gold", "silver-1", "silver-2"}},
		{"!tier", "", []string{"gold", "silver-1", "silver-2"}},
		{"tier in (gas)", "", nil},
		{"", "metadata.name=bronze", nil},
		{"", "metadata.name!=gold", []string{"labeled", "silver-1", "silver-2"}},
		{"speed=fast", "", []string{"silver-2"}},
	} {
		list, err := client.StorageV1().StorageClasses().List(context.Background(), metav1.ListOptions{LabelSelector: c.label, FieldSelector: c.field})
		if err != nil {
			t.Fatalf("%q %q: %v", c.label, c.field, err)
		}
		if got := classNames(list.Items); !slices.Equal(got, c.want) {
			t.Errorf("%q %q: %v, want %v", c.label, c.field, got, c.want)
		}
	}
	// A repeated labelSelector cannot widen either: whichever is used, bronze stays hidden.
	status, _, body := f.do(t, http.MethodGet, "alice", storageClassesPath+"?labelSelector=tier%3Doil&labelSelector=tier%3Dgas", "")
	if status != http.StatusOK || strings.Contains(string(body), "bronze") {
		t.Errorf("repeated labelSelector: status %d: %s", status, body)
	}
	// A field the API server would not select on is refused, not ignored.
	status, _, body = f.do(t, http.MethodGet, "alice", storageClassesPath+"?fieldSelector=provisioner%3Dx", "")
	if status != http.StatusBadRequest {
		t.Errorf("unsupported field selector: status %d, want 400: %s", status, body)
	}
}

func TestNotFoundIsNoOracle(t *testing.T) {
	f := newFixture(t, true)
	for _, path := range []string{storageClassesPath, nodesPath} {
		hidden, missing := "bronze", "no-such-class"
		if path == nodesPath {
			hidden, missing = "gas-node", "no-such-node"
		}
		hiddenStatus, hiddenType, hiddenBody := f.do(t, http.MethodGet, "alice", path+"/"+hidden, "")
		missingStatus, missingType, missingBody := f.do(t, http.MethodGet, "alice", path+"/"+missing, "")
		if hiddenStatus != http.StatusNotFound || missingStatus != hiddenStatus || hiddenType != missingType {
			t.Errorf("%s: hidden %d %s, missing %d %s", path, hiddenStatus, hiddenType, missingStatus, missingType)
		}
		if strings.ReplaceAll(string(hiddenBody), hidden, "X") != strings.ReplaceAll(string(missingBody), missing, "X") {
			t.Errorf("%s: bodies differ:\n%s\n%s", path, hiddenBody, missingBody)
		}
	}
	client := f.clientFor(t, "alice", true)
	if _, err := client.StorageV1().StorageClasses().Get(context.Background(), "bronze", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("protobuf get of a hidden class: %v, want NotFound", err)
	}
	sc, err := client.StorageV1().StorageClasses().Get(context.Background(), "silver-1", metav1.GetOptions{})
	if err != nil || sc.Name != "silver-1" || sc.Provisioner != "example.com/silver-1" {
		t.Errorf("get silver-1: %v %v", sc, err)
	}
	status, _, body := f.do(t, http.MethodGet, "alice", nodesPath+"/oil-node-1", tableAccept)
	if status != http.StatusOK || !strings.Contains(string(body), `"oil-node-1"`) {
		t.Errorf("get node as table: status %d: %s", status, body)
	}
}

func TestPagination(t *testing.T) {
	f := newFixture(t, true)
	client := f.clientFor(t, "alice", false)
	var got []string
	opts := metav1.ListOptions{Limit: 1, LabelSelector: "tier!=gas"}
	for pages := 0; ; pages++ {
		if pages > len(aliceClasses) {
			t.Fatalf("too many pages: %v", got)
		}
		list, err := client.StorageV1().StorageClasses().List(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, classNames(list.Items)...)
		if list.Continue == "" {
			break
		}
		if list.RemainingItemCount == nil || *list.RemainingItemCount != int64(len(aliceClasses)-len(got)) {
			t.Errorf("remaining item count %v after %v", list.RemainingItemCount, got)
		}
		opts.Continue = list.Continue
	}
	if !slices.Equal(got, aliceClasses) {
		t.Errorf("paged through %v, want %v", got, aliceClasses)
	}
	status, _, _ := f.do(t, http.MethodGet, "alice", storageClassesPath+"?limit=1&continue=not-a-token", "")
	if status != http.StatusBadRequest {
		t.Errorf("bad continue token: status %d, want 400", status)
	}
}

func TestTableConvertorRefusesOtherTypes(t *testing.T) {
	_, err := tableConvertor{resource: StorageClasses}.ConvertToTable(context.Background(), &corev1.Node{}, nil)
	if err == nil {
		t.Error("a node rendered as a storage class table")
	}
}

func classNames(items []storagev1.StorageClass) []string {
	var names []string
	for _, sc := range items {
		names = append(names, sc.Name)
	}
	return names
}

func nodeNames(items []corev1.Node) []string {
	var names []string
	for _, n := range items {
		names = append(names, n.Name)
	}
	return names
}
