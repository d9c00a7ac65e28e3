package namespaces

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// next reads the next n events as "TYPE name", failing after a generous timeout.
func next(t *testing.T, w watch.Interface, n int) []string {
	t.Helper()
	var got []string
	for range n {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended after %v", got)
			}
			if e.Type == watch.Error {
				t.Fatalf("watch error %v after %v", apierrors.FromObject(e.Object), got)
			}
			got = append(got, fmt.Sprintf("%s %s", e.Type, e.Object.(*corev1.Namespace).Name))
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out after %v, waiting for %d events", got, n)
		}
	}
	return got
}

func expectEvents(t *testing.T, w watch.Interface, want ...string) {
	t.Helper()
	if got := next(t, w, len(want)); !slices.Equal(got, want) {
		t.Errorf("events %v\nwant   %v", got, want)
	}
}

func added(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, "ADDED "+n)
	}
	return out
}

func TestWatchFollowsMembership(t *testing.T) {
	for _, format := range []struct {
		name     string
		protobuf bool
	}{{"json", false}, {"protobuf", true}} {
		t.Run(format.name, func(t *testing.T) {
			f := newFixture(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w, err := f.clientFor(t, "alice", format.protobuf).CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			expectEvents(t, w, added(aliceNamespaces...)...)

			f.apply(t, namespace("oil-new", "oil", nil))
			expectEvents(t, w, "ADDED oil-new")

			// Another tenant's new namespace is not sent: the next event is alice's own change.
			f.apply(t, namespace("gas-new", "gas", nil))
			f.apply(t, namespace("oil-a", "oil", map[string]string{"stage": "qa"}))
			expectEvents(t, w, "MODIFIED oil-a")

			// alice becomes an owner of gas, then stops being one.
			f.applyTenant(t, tenantObject("gas", []any{owner("Group", "gas-devs"), owner("User", "alice")}, "gas-a", "gas-b"))
			expectEvents(t, w, added("gas-a", "gas-b", "gas-new")...)
			f.applyTenant(t, tenantObject("gas", []any{owner("Group", "gas-devs")}, "gas-a", "gas-b"))
			expectEvents(t, w, "DELETED gas-a", "DELETED gas-b", "DELETED gas-new")

			// oil-c moves to gas: its ownerReference changes, then oil's status stops listing it.
			f.apply(t, namespace("oil-c", "gas", nil))
			expectEvents(t, w, "MODIFIED oil-c")
			f.applyTenant(t, tenantObject("oil", []any{owner("User", "alice")}, "oil-a", "oil-b", "oil-d", "oil-old"))
			expectEvents(t, w, "DELETED oil-c")

			f.deleteNamespace(t, "oil-new")
			expectEvents(t, w, "MODIFIED oil-new", "DELETED oil-new")
		})
	}
}

func TestWatchFromAListResourceVersion(t *testing.T) {
	f := newFixture(t)
	c := f.clientFor(t, "alice", false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	list, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Changes between the list and the watch, as kubectl get -w may see.
	f.apply(t, namespace("oil-new", "oil", nil))
	f.apply(t, namespace("oil-a", "oil", map[string]string{"stage": "qa"}))
	f.apply(t, namespace("gas-new", "gas", nil))
	f.deleteNamespace(t, "oil-b")

	w, err := c.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvents(t, w, "MODIFIED oil-a", "DELETED oil-b", "ADDED oil-new")
	f.apply(t, namespace("oil-later", "oil", nil))
	expectEvents(t, w, "ADDED oil-later")

	_, err = c.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: "1"})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Errorf("watch from before the proxy's history: %v, want 410", err)
	}
}

func TestWatchFollowsSelectors(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := f.clientFor(t, "alice", false).CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{LabelSelector: "stage=dev"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvents(t, w, "ADDED oil-a")
	f.apply(t, namespace("gas-b", "gas", map[string]string{"stage": "dev"})) // matches, but not alice's
	f.apply(t, namespace("oil-b", "oil", map[string]string{"stage": "dev"}))
	expectEvents(t, w, "ADDED oil-b")
	f.apply(t, namespace("oil-a", "oil", map[string]string{"stage": "prod"}))
	expectEvents(t, w, "DELETED oil-a")
}

func TestWatchListEndsInitialEventsWithABookmark(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := f.clientFor(t, "alice", true).CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{
		SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvents(t, w, added(aliceNamespaces...)...)
	select {
	case e := <-w.ResultChan():
		ns := e.Object.(*corev1.Namespace)
		if e.Type != watch.Bookmark || ns.Annotations[metav1.InitialEventsAnnotationKey] != "true" || ns.ResourceVersion == "" {
			t.Errorf("got %s %+v, want the initial-events-end bookmark", e.Type, ns.ObjectMeta)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no bookmark")
	}

	// Membership events carry the namespaces' own, older resource versions; a bookmark moves the client's
	// resume point up to the index's.
	f.applyTenant(t, tenantObject("gas", []any{owner("Group", "gas-devs"), owner("User", "alice")}, "gas-a", "gas-b"))
	expectEvents(t, w, "ADDED gas-a", "ADDED gas-b")
	select {
	case e := <-w.ResultChan():
		ns := e.Object.(*corev1.Namespace)
		if e.Type != watch.Bookmark || ns.ResourceVersion != itoa(f.index.ResourceVersion()) {
			t.Errorf("got %s at %s, want a bookmark at %d", e.Type, ns.ResourceVersion, f.index.ResourceVersion())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no bookmark after membership events")
	}
}

// TestConcurrentReadersShareTheCache: requests in every format while namespaces change; run with -race,
// it proves the encoders never touch the objects the cache shares.
func TestConcurrentReadersShareTheCache(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accepts := []string{"application/json", "application/vnd.kubernetes.protobuf", "application/json;as=Table;v=v1;g=meta.k8s.io",
		"application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"}
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 20 {
				path := "/api/v1/namespaces"
				if j%2 == 1 {
					path += "/oil-a"
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.server.URL+path, nil)
				req.Header.Set("X-Test-User", "alice")
				if !strings.HasSuffix(path, "oil-a") || i%4 < 2 {
					req.Header.Set("Accept", accepts[i%4])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	w, err := f.clientFor(t, "alice", true).CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range 10 {
		f.apply(t, namespace("oil-a", "oil", map[string]string{"round": itoa(uint64(i))}))
	}
	for range 8 {
		<-done
	}
}

func TestWatchEndsWhenTheCallerIsNoLongerACapsuleUser(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := f.clientFor(t, "alice", false).CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvents(t, w, added(aliceNamespaces...)...)
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2", "kind": "CapsuleConfiguration",
		"metadata": map[string]any{"name": "default", "resourceVersion": nextRV()},
		"spec":     map[string]any{"users": []any{owner("Group", "someone-else")}},
	}}
	if _, err := f.dynamic.Resource(tenants.CapsuleConfigurationsResource).Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e, ok := <-w.ResultChan():
		if ok {
			t.Errorf("got %s, want the watch to end", e.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch still open")
	}
}

// TestWatchAsTable is kubectl get ns -w: a watch of Table rows, the first with the column definitions.
func TestWatchAsTable(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodGet, f.server.URL+"/api/v1/namespaces?watch=true&timeoutSeconds=5", nil)
	req.Header.Set("X-Test-User", "alice")
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	var names []string
	for i := range aliceNamespaces {
		var event struct {
			Type   string       `json:"type"`
			Object metav1.Table `json:"object"`
		}
		if err := dec.Decode(&event); err != nil {
			t.Fatal(err)
		}
		if event.Type != "ADDED" || event.Object.Kind != "Table" || len(event.Object.Rows) != 1 {
			t.Fatalf("event %d: %+v", i, event)
		}
		if hasHeaders := len(event.Object.ColumnDefinitions) > 0; hasHeaders != (i == 0) {
			t.Errorf("event %d has column definitions: %v", i, hasHeaders)
		}
		names = append(names, event.Object.Rows[0].Cells[0].(string))
	}
	if !sameNames(names, aliceNamespaces) {
		t.Errorf("rows %v, want %v", names, aliceNamespaces)
	}
}

// TestLegacyWatchOfOneNamespaceIsNoOracle: watching another tenant's namespace looks like watching one that
// does not exist: an open stream without events.
func TestLegacyWatchOfOneNamespaceIsNoOracle(t *testing.T) {
	f := newFixture(t)
	code, _, own := f.get(t, "alice", "/api/v1/watch/namespaces/oil-a?timeoutSeconds=1", "application/json")
	var event struct {
		Type   string           `json:"type"`
		Object corev1.Namespace `json:"object"`
	}
	if err := json.Unmarshal(own, &event); code != http.StatusOK || err != nil || event.Type != "ADDED" || event.Object.Name != "oil-a" {
		t.Errorf("own namespace: %d %s", code, own)
	}
	_, _, missing := f.get(t, "alice", "/api/v1/watch/namespaces/no-such-namespace?timeoutSeconds=1", "application/json")
	_, _, other := f.get(t, "alice", "/api/v1/watch/namespaces/gas-a?timeoutSeconds=1", "application/json")
	if len(missing) != 0 || len(other) != 0 {
		t.Errorf("missing %q, other tenant's %q; want both empty", missing, other)
	}
}
