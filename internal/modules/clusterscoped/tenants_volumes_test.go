package clusterscoped

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	volumesPath = "/api/v1/persistentvolumes"
	tenantsPath = "/apis/capsule.clastix.io/v1beta2/tenants"
)

func TestVolumesAndTenantsNeedTheirGrant(t *testing.T) {
	f := newFixture(t, true)
	for _, c := range []struct {
		caller, method, path string
		taken                bool
	}{
		{"alice", http.MethodGet, volumesPath, true},
		{"alice", http.MethodGet, volumesPath + "/pv-oil-1", true},
		{"alice", http.MethodGet, "/api/v1/watch/persistentvolumes?timeoutSeconds=1", true},
		{"alice", http.MethodGet, volumesPath + "/pv-oil-1/status", false},
		{"alice", http.MethodDelete, volumesPath + "/pv-oil-1", false},
		{"alice", http.MethodPatch, volumesPath + "/pv-oil-1", false},
		{"alice", http.MethodGet, "/api/v1/namespaces/oil-dev/persistentvolumeclaims", false},
		{"alice", http.MethodGet, tenantsPath, true},
		{"alice", http.MethodGet, tenantsPath + "/oil", true},
		{"alice", http.MethodGet, tenantsPath + "?watch=true&timeoutSeconds=1", true},
		{"alice", http.MethodGet, tenantsPath + "/oil/status", false},
		{"alice", http.MethodPut, tenantsPath + "/oil", false},
		{"alice", http.MethodDelete, tenantsPath + "/oil", false},
		{"alice", http.MethodGet, "/apis/capsule.clastix.io/v1beta1/tenants", false},
		{"gas-owner", http.MethodGet, tenantsPath, true},
		{"gas-owner", http.MethodGet, volumesPath, false}, // Tenant does not grant PersistentVolumes
		{"bob", http.MethodGet, volumesPath, false},       // owner without proxy settings
		{"bob", http.MethodGet, tenantsPath, false},
		{"admin", http.MethodGet, volumesPath, false},
		{"admin", http.MethodGet, tenantsPath, false},
	} {
		status, _, _ := f.do(t, c.method, c.caller, c.path, "")
		if taken := status != forwardedStatus; taken != c.taken {
			t.Errorf("%s %s %s: taken %v (status %d), want %v", c.caller, c.method, c.path, taken, status, c.taken)
		}
	}
}

// itemNames reads the names in a JSON list, Table or PartialObjectMetadataList.
func itemNames(t *testing.T, body []byte) []string {
	t.Helper()
	var list struct {
		Items []struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		} `json:"items"`
		Rows []struct {
			Cells []any `json:"cells"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var names []string
	for _, item := range list.Items {
		names = append(names, item.Metadata.Name)
	}
	for _, row := range list.Rows {
		names = append(names, fmt.Sprint(row.Cells[0]))
	}
	return names
}

func TestVolumesAndTenantsAreFilteredInEveryFormat(t *testing.T) {
	f := newFixture(t, true)
	for _, c := range []struct {
		caller, path string
		want         []string
	}{
		{"alice", volumesPath, aliceVolumes},
		{"alice", volumesPath + "?labelSelector=capsule.clastix.io%2Ftenant%3Doil", nil},
		{"alice", volumesPath + "?labelSelector=!capsule.clastix.io%2Ftenant", aliceVolumes},
		{"alice", volumesPath + "?fieldSelector=metadata.name%3Dpv-gas", nil},
		{"alice", volumesPath + "?fieldSelector=metadata.name%3Dpv-oil-2", []string{"pv-oil-2"}},
		{"alice", tenantsPath, []string{"oil"}},
		{"alice", tenantsPath + "?fieldSelector=metadata.name%3Dgas", nil},
		{"alice", tenantsPath + "?fieldSelector=metadata.name%21%3Doil", nil},
		{"gas-owner", tenantsPath, []string{"gas"}},
	} {
		for _, accept := range []string{"", tableAccept, metadataAccept} {
			status, _, body := f.do(t, http.MethodGet, c.caller, c.path, accept)
			if status != http.StatusOK {
				t.Fatalf("%s %s %q: status %d: %s", c.caller, c.path, accept, status, body)
			}
			if got := itemNames(t, body); !slices.Equal(got, c.want) {
				t.Errorf("%s %s %q: %v, want %v", c.caller, c.path, accept, got, c.want)
			}
		}
	}
	// A protobuf client of the typed volumes agrees.
	pvs, err := f.clientFor(t, "alice", true).CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pv := range pvs.Items {
		names = append(names, pv.Name)
	}
	if !slices.Equal(names, aliceVolumes) {
		t.Errorf("protobuf volumes %v, want %v", names, aliceVolumes)
	}
}

func TestTenantsAreServedLikeACustomResource(t *testing.T) {
	f := newFixture(t, true)
	// The object itself is not in protobuf, as from the API server; its Table and metadata forms are.
	for _, c := range []struct {
		accept string
		status int
	}{
		{"application/vnd.kubernetes.protobuf", http.StatusNotAcceptable},
		{"application/vnd.kubernetes.protobuf, application/json", http.StatusOK},
		{"application/yaml", http.StatusOK},
		{"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", http.StatusOK},
		{"text/html", http.StatusNotAcceptable},
	} {
		status, _, body := f.do(t, http.MethodGet, "alice", tenantsPath, c.accept)
		if status != c.status {
			t.Errorf("%q: status %d, want %d: %s", c.accept, status, c.status, body)
		}
		if status == http.StatusOK && strings.Contains(string(body), "gas") {
			t.Errorf("%q: names gas: %s", c.accept, body)
		}
	}
	status, _, body := f.do(t, http.MethodGet, "alice", tenantsPath+"/oil", "")
	if status != http.StatusOK {
		t.Fatalf("get oil: status %d: %s", status, body)
	}
	var oil unstructured.Unstructured
	if err := json.Unmarshal(body, &oil.Object); err != nil {
		t.Fatal(err)
	}
	if oil.GetAPIVersion() != "capsule.clastix.io/v1beta2" || oil.GetKind() != "Tenant" || oil.GetName() != "oil" {
		t.Errorf("get oil: %s", body)
	}
	if owners, _, _ := unstructured.NestedSlice(oil.Object, "spec", "owners"); len(owners) != 2 {
		t.Errorf("get oil: the spec is not served whole: %s", body)
	}
	// kubectl's -o wide and custom columns ask for the whole object in each row.
	status, _, body = f.do(t, http.MethodGet, "alice", tenantsPath+"?includeObject=Object", tableAccept)
	if status != http.StatusOK || !strings.Contains(string(body), `"owners"`) || strings.Contains(string(body), `"gas"`) {
		t.Errorf("tenants as a table with objects: status %d: %s", status, body)
	}
	// A watch-list ends its initial events with a bookmark of the resource's own kind.
	status, _, body = f.do(t, http.MethodGet, "alice", tenantsPath+"?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"BOOKMARK"`) || !strings.Contains(string(body), `"kind":"Tenant"`) || strings.Contains(string(body), `"gas"`) {
		t.Errorf("watch-list of tenants: status %d: %s", status, body)
	}
	status, _, body = f.do(t, http.MethodGet, "alice", tenantsPath+"/oil", tableAccept)
	var table metav1.Table
	if err := json.Unmarshal(body, &table); status != http.StatusOK || err != nil {
		t.Fatalf("oil as a table: status %d, %v: %s", status, err, body)
	}
	if len(table.ColumnDefinitions) != 2 || table.ColumnDefinitions[0].Name != "Name" || table.ColumnDefinitions[1].Name != "Age" ||
		len(table.Rows) != 1 || table.Rows[0].Cells[0] != "oil" {
		t.Errorf("oil as a table: %s", body)
	}
}

func TestHiddenVolumesAndTenantsAreNoOracle(t *testing.T) {
	f := newFixture(t, true)
	for _, c := range []struct{ path, hidden, missing string }{
		{volumesPath, "pv-gas", "no-such-volume"},
		{volumesPath, "pv-gas-labelled", "no-such-volume"},
		{volumesPath, "pv-free", "no-such-volume"},
		{tenantsPath, "gas", "no-such-tenant"},
	} {
		hiddenStatus, hiddenType, hiddenBody := f.do(t, http.MethodGet, "alice", c.path+"/"+c.hidden, "")
		missingStatus, missingType, missingBody := f.do(t, http.MethodGet, "alice", c.path+"/"+c.missing, "")
		if hiddenStatus != http.StatusNotFound || missingStatus != hiddenStatus || hiddenType != missingType {
			t.Errorf("%s: hidden %d %s, missing %d %s", c.hidden, hiddenStatus, hiddenType, missingStatus, missingType)
		}
		if strings.ReplaceAll(string(hiddenBody), c.hidden, "X") != strings.ReplaceAll(string(missingBody), c.missing, "X") {
			t.Errorf("%s: bodies differ:\n%s\n%s", c.hidden, hiddenBody, missingBody)
		}
	}
}

func TestVolumeTableLooksLikeKubectls(t *testing.T) {
	f := newFixture(t, true)
	status, _, body := f.do(t, http.MethodGet, "alice", volumesPath+"/pv-oil-1", tableAccept)
	var table metav1.Table
	if err := json.Unmarshal(body, &table); status != http.StatusOK || err != nil {
		t.Fatalf("status %d, %v: %s", status, err, body)
	}
	var columns []string
	for _, col := range table.ColumnDefinitions {
		columns = append(columns, col.Name)
	}
	wantColumns := []string{"Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass", "VolumeAttributesClass", "Reason", "Age", "VolumeMode"}
	if !slices.Equal(columns, wantColumns) {
		t.Errorf("columns %v, want %v", columns, wantColumns)
	}
	want := []any{"pv-oil-1", "1Gi", "RWO,RWX", "Retain", "Bound", "oil-dev/data", "gold", "<unset>", "", "<unknown>", "<unset>"}
	if len(table.Rows) != 1 || !slices.Equal(table.Rows[0].Cells, want) {
		t.Errorf("row %v, want %v", table.Rows, want)
	}
}

func TestVolumeWatchFollowsClaimsAndNamespaces(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	w, err := f.clientFor(t, "alice", false).CoreV1().PersistentVolumes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	nextVolume := func() string {
		t.Helper()
		ev, ok := <-w.ResultChan()
		if !ok {
			t.Fatal("watch ended")
		}
		pv, ok := ev.Object.(*corev1.PersistentVolume)
		if !ok {
			t.Fatalf("event %s %T", ev.Type, ev.Object)
		}
		return fmt.Sprintf("%s %s", ev.Type, pv.Name)
	}
	initial := []string{nextVolume(), nextVolume()}
	slices.Sort(initial)
	if !slices.Equal(initial, []string{"ADDED pv-oil-1", "ADDED pv-oil-2"}) {
		t.Fatalf("initial events %v", initial)
	}
	volumes := f.client.CoreV1().PersistentVolumes()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(volumes.Create(ctx, volume("pv-new-gas", "gas-dev", map[string]string{"capsule.clastix.io/tenant": "oil"}), metav1.CreateOptions{}))
	must(volumes.Create(ctx, volume("pv-new-oil", "oil-dev", nil), metav1.CreateOptions{}))
	if got := nextVolume(); got != "ADDED pv-new-oil" {
		t.Fatalf("event %q, want ADDED pv-new-oil", got)
	}
	// Bound into oil after creation: it enters the set.
	must(volumes.Update(ctx, volume("pv-free", "oil-prod", nil), metav1.UpdateOptions{}))
	if got := nextVolume(); got != "ADDED pv-free" {
		t.Fatalf("event %q, want ADDED pv-free", got)
	}
	// Its claim released and the volume rebound in gas: it leaves.
	must(volumes.Update(ctx, volume("pv-oil-2", "gas-dev", nil), metav1.UpdateOptions{}))
	if got := nextVolume(); got != "DELETED pv-oil-2" {
		t.Fatalf("event %q, want DELETED pv-oil-2", got)
	}
	must(nil, volumes.Delete(ctx, "pv-oil-1", metav1.DeleteOptions{}))
	if got := nextVolume(); got != "DELETED pv-oil-1" {
		t.Fatalf("event %q, want DELETED pv-oil-1", got)
	}
}

func TestTenantWatchShowsOnlyOwnedTenants(t *testing.T) {
	f := newFixture(t, true)
	status, _, body := f.do(t, http.MethodGet, "alice", tenantsPath+"?watch=true&timeoutSeconds=1", "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var ev struct {
			Type   watch.EventType           `json:"type"`
			Object unstructured.Unstructured `json:"object"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		types = append(types, fmt.Sprintf("%s %s %s", ev.Type, ev.Object.GetKind(), ev.Object.GetName()))
	}
	if !slices.Equal(types, []string{"ADDED Tenant oil"}) {
		t.Errorf("events %v", types)
	}
}
