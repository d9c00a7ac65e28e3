package allnamespaces

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	proxyrequest "github.com/tenant-proxy/tenant-proxy/internal/request"
)

// watchUpstream answers like the API server's watches: per namespace a stream of the lines sent on its
// channel (until it is closed), or a refusal.
type watchUpstream struct {
	mu        sync.Mutex
	streams   map[string]chan string
	refuse    map[string]int
	asked     []*http.Request
	cancelled map[string]bool
}

func newWatchUpstream(namespaces ...string) *watchUpstream {
	u := &watchUpstream{streams: map[string]chan string{}, refuse: map[string]int{}, cancelled: map[string]bool{}}
	for _, ns := range namespaces {
		u.streams[ns] = make(chan string)
	}
	return u
}

func (u *watchUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ns := strings.Split(r.URL.Path, "/")[4]
	u.mu.Lock()
	u.asked = append(u.asked, r)
	code, stream := u.refuse[ns], u.streams[ns]
	u.mu.Unlock()
	w.Header().Set("Content-Type", jsonType)
	if code != 0 {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","code":` + strconv.Itoa(code) + `}`))
		return
	}
	w.WriteHeader(http.StatusOK)
	flush(w)
	for {
		select {
		case <-r.Context().Done():
			u.mu.Lock()
			u.cancelled[ns] = true
			u.mu.Unlock()
			return
		case line, ok := <-stream:
			if !ok {
				return
			}
			_, _ = io.WriteString(w, line+"\n")
			flush(w)
		}
	}
}

// fakeMembers is a membership whose namespaces the test changes.
type fakeMembers struct {
	mu      sync.Mutex
	names   []string
	changed chan struct{}
	stopped bool
}

func (f *fakeMembers) Follow(user.Info) (membership, error) { return f, nil }
func (f *fakeMembers) Changed() <-chan struct{}             { return f.changed }
func (f *fakeMembers) Namespaces() ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.names), true
}
func (f *fakeMembers) Stop() { f.mu.Lock(); f.stopped = true; f.mu.Unlock() }

func (f *fakeMembers) set(names ...string) {
	f.mu.Lock()
	f.names = names
	f.mu.Unlock()
	f.changed <- struct{}{}
}

// watchBed is the module behind a real HTTP server (so the reverse proxy behaves as in the proxy, aborting
// cancelled streams), forwarding to up through a reverse proxy.
type watchBed struct {
	up      *watchUpstream
	members *fakeMembers
	front   *httptest.Server
}

func newWatchBed(t *testing.T, namespaces ...string) *watchBed {
	t.Helper()
	b := &watchBed{up: newWatchUpstream(namespaces...), members: &fakeMembers{names: namespaces, changed: make(chan struct{})}}
	upstream := httptest.NewServer(b.up)
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	forward := httputil.NewSingleHostReverseProxy(target)
	m := &Module{index: &fakeIndex{synced: true, capsule: true, namespaces: namespaces}, scope: scope, members: b.members}
	b.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := proxyrequest.Parse(r)
		if err != nil {
			t.Error(err)
			return
		}
		h := m.Intercept(modules.Request{User: &user.DefaultInfo{Name: "owner"}, Info: info, HTTP: r, Forward: forward})
		if h == nil {
			t.Error("not intercepted")
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(b.front.Close)
	return b
}

// open starts the client's watch; lines has each line of the merged stream and is closed when it ends.
func (b *watchBed) open(t *testing.T, ctx context.Context, target, accept string) (*http.Response, <-chan string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.front.URL+target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		s := bufio.NewScanner(resp.Body)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	return resp, lines
}

func ev(typ, ns, name, rv string) string {
	return `{"type":"` + typ + `","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"` + name + `","namespace":"` + ns + `","resourceVersion":"` + rv + `"}}}`
}

func bm(rv string) string {
	return `{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"` + rv + `"}}}`
}

func next(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatal("the merged stream ended")
		}
		return line
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return ""
}

func ended(t *testing.T, lines <-chan string) {
	t.Helper()
	select {
	case line, ok := <-lines:
		if ok {
			t.Fatalf("unexpected line %s", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the merged stream did not end")
	}
}

func TestServeWatch(t *testing.T) {
	tests := []struct {
		name   string
		target string
		// run drives the upstream streams and reads the client's lines.
		run func(t *testing.T, b *watchBed, lines <-chan string, cancel func())
	}{
		{"events of every namespace, whole, and an upstream end ends the stream", "/api/v1/configmaps?watch=true&resourceVersion=10",
			func(t *testing.T, b *watchBed, lines <-chan string, _ func()) {
				for _, e := range []struct{ ns, line string }{{"a", ev("ADDED", "a", "x", "11")}, {"b", ev("ADDED", "b", "y", "12")}, {"a", ev("DELETED", "a", "x", "13")}} {
					b.up.streams[e.ns] <- e.line
					if got := next(t, lines); got != e.line {
						t.Fatalf("relayed %s, want %s", got, e.line)
					}
				}
				b.up.streams["b"] <- bm("14") // not the client's: it asked for no bookmarks
				close(b.up.streams["b"])
				ended(t, lines)
				waitCancelled(t, b.up, "a")
			}},
		{"the legacy watch path", "/api/v1/watch/configmaps?resourceVersion=10",
			func(t *testing.T, b *watchBed, lines <-chan string, _ func()) {
				b.up.streams["b"] <- ev("ADDED", "b", "y", "12")
				if got := next(t, lines); !strings.Contains(got, `"y"`) {
					t.Fatal(got)
				}
			}},
		{"bookmarks at the point every namespace has reached", "/api/v1/configmaps?watch=true&resourceVersion=10&allowWatchBookmarks=true",
			func(t *testing.T, b *watchBed, lines <-chan string, _ func()) {
				b.up.streams["a"] <- ev("ADDED", "a", "x", "12")
				next(t, lines)
				if got := next(t, lines); got != bm("10") {
					t.Fatalf("after a's event at 12 got %s, want a bookmark at 10 (b may still have 11 and 12)", got)
				}
				b.up.streams["b"] <- bm("15")
				if got := next(t, lines); got != bm("12") {
					t.Fatalf("after b's bookmark at 15 got %s, want a bookmark at 12", got)
				}
			}},
		{"an ERROR event is relayed and ends the stream", "/api/v1/configmaps?watch=true&resourceVersion=10",
			func(t *testing.T, b *watchBed, lines <-chan string, _ func()) {
				gone := `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410}}`
				b.up.streams["a"] <- gone
				if got := next(t, lines); got != gone {
					t.Fatal(got)
				}
				ended(t, lines)
				waitCancelled(t, b.up, "a", "b")
			}},
		{"the client going cancels every upstream watch", "/api/v1/configmaps?watch=true",
			func(t *testing.T, b *watchBed, lines <-chan string, cancel func()) {
				b.up.streams["a"] <- ev("ADDED", "a", "x", "11")
				next(t, lines)
				cancel()
				waitCancelled(t, b.up, "a", "b")
			}},
		{"a change of the caller's namespaces ends the stream", "/api/v1/configmaps?watch=true",
			func(t *testing.T, b *watchBed, lines <-chan string, _ func()) {
				b.members.set("a", "b") // the same set: nothing to do
				b.up.streams["a"] <- ev("ADDED", "a", "x", "11")
				next(t, lines)
				b.members.set("a", "b", "c")
				ended(t, lines)
				waitCancelled(t, b.up, "a", "b")
			}},
		{"timeoutSeconds", "/api/v1/configmaps?watch=true&timeoutSeconds=1",
			func(t *testing.T, b *watchBed, lines <-chan string, _ func()) {
				ended(t, lines)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newWatchBed(t, "a", "b")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp, lines := b.open(t, ctx, tt.target, "application/json")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != jsonType {
				t.Fatalf("answer %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			tt.run(t, b, lines, cancel)
			assertWatchSubRequests(t, b.up, tt.target)
		})
	}
}

func assertWatchSubRequests(t *testing.T, up *watchUpstream, target string) {
	t.Helper()
	up.mu.Lock()
	defer up.mu.Unlock()
	client, _ := url.Parse(target)
	var paths []string
	for _, r := range up.asked {
		paths = append(paths, r.URL.Path)
		q := r.URL.Query()
		if q.Get("watch") != "true" || q.Get("allowWatchBookmarks") != "true" || q.Get("resourceVersion") != client.Query().Get("resourceVersion") ||
			q.Get("timeoutSeconds") != client.Query().Get("timeoutSeconds") {
			t.Errorf("sub-request query %s", r.URL.RawQuery)
		}
		if r.Header.Get("Authorization") != "" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("sub-request headers %v", r.Header)
		}
	}
	slices.Sort(paths)
	if want := []string{"/api/v1/namespaces/a/configmaps", "/api/v1/namespaces/b/configmaps"}; !slices.Equal(paths, want) {
		t.Errorf("sub-requests %v, want %v", paths, want)
	}
}

func waitCancelled(t *testing.T, up *watchUpstream, namespaces ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		up.mu.Lock()
		all := true
		for _, ns := range namespaces {
			all = all && up.cancelled[ns]
		}
		up.mu.Unlock()
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream watches of %v not all cancelled", namespaces)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeWatchRefusals(t *testing.T) {
	tests := []struct {
		name     string
		refuse   map[string]int
		accept   string
		target   string
		wantCode int
		wantBody string
	}{
		{"a forbidden namespace is left out", map[string]int{"a": 403}, "", "/api/v1/configmaps?watch=true", 200, ""},
		{"forbidden everywhere: the API server's answer", map[string]int{"a": 403, "b": 403}, "", "/api/v1/configmaps?watch=true", 403, `"code":403`},
		{"another refusal as is", map[string]int{"b": 410}, "", "/api/v1/configmaps?watch=true&resourceVersion=1", 410, `"code":410`},
		{"protobuf only is not acceptable", nil, "application/vnd.kubernetes.protobuf;stream=watch", "/api/v1/configmaps?watch=true", 406, "NotAcceptable"},
		{"bad timeoutSeconds", nil, "", "/api/v1/configmaps?watch=true&timeoutSeconds=x", 400, "timeoutSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newWatchBed(t, "a", "b")
			b.up.refuse = tt.refuse
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp, lines := b.open(t, ctx, tt.target, tt.accept)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("code %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode == http.StatusOK {
				b.up.streams["b"] <- ev("ADDED", "b", "y", "12")
				if got := next(t, lines); !strings.Contains(got, `"y"`) {
					t.Fatal(got)
				}
				return
			}
			var body strings.Builder
			for line := range lines {
				body.WriteString(line)
			}
			if !strings.Contains(body.String(), tt.wantBody) {
				t.Errorf("body %s, want %s", body.String(), tt.wantBody)
			}
		})
	}
}

func TestServeWatchTooManyNamespaces(t *testing.T) {
	names := manyNamespaces(MaxNamespaces + 1)
	m := &Module{index: &fakeIndex{synced: true, capsule: true, namespaces: names}, scope: scope, members: &fakeMembers{names: names}}
	req := request(t, http.MethodGet, "/api/v1/configmaps?watch=true")
	req.Forward = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("forwarded") })
	w := httptest.NewRecorder()
	m.Intercept(req).ServeHTTP(w, req.HTTP)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "name a namespace") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}
