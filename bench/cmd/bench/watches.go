package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const (
	// eventTenants is how many namespaces are created, one per tenant, while the watches are open.
	eventTenants = 20
	// watchReadyTimeout bounds opening every watch and receiving its initial events.
	watchReadyTimeout = 3 * time.Minute
	// eventTimeout bounds the wait for every watcher of a tenant to see a new namespace.
	eventTimeout = 30 * time.Second
)

// watchResult is what the watch workload measured.
type watchResult struct {
	watches                     int // per side
	tenants                     int // with at least one watcher
	rssBefore, rssWith          int64
	fileWith                    int64 // RssFile part of rssWith
	apiRSSBefore, apiRSSWith    int64
	memBefore, memWith          goMemory
	openTook                    time.Duration
	events                      int
	directLatency, proxyLatency []time.Duration
	err                         error
}

// watcher is one open `kubectl get ns -w`: the tenant's owner through the proxy, or an administrator with
// the tenant's label selector directly. Each has its own connection, as separate kubectl processes would.
type watcher struct {
	side   string
	tenant *benchTenant
	client *client
	cancel context.CancelFunc

	mu      sync.Mutex
	seen    map[string]time.Time // namespace -> when ADDED arrived
	foreign []string             // namespaces of other tenants it was shown
	err     error
	added   chan struct{} // a value per ADDED event
}

// nsEvent is the part of a watch event the bench reads.
type nsEvent struct {
	Type   string `json:"type"`
	Object struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	} `json:"object"`
}

func (w *watcher) run(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := w.client.http.Do(req)
	if err != nil {
		return fmt.Errorf("watch %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return fmt.Errorf("watch %s: %s: %s", url, resp.Status, body)
	}
	go func() {
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var e nsEvent
			if err := dec.Decode(&e); err != nil {
				if ctx.Err() == nil {
					w.fail(fmt.Errorf("%s watch of %s ended: %w", w.side, w.tenant.name, err))
				}
				return
			}
			if e.Type != "ADDED" {
				continue
			}
			now := time.Now()
			name := e.Object.Metadata.Name
			w.mu.Lock()
			if !strings.HasPrefix(name, w.tenant.name+"-") {
				w.foreign = append(w.foreign, name)
			} else if _, dup := w.seen[name]; !dup {
				w.seen[name] = now
			}
			w.mu.Unlock()
			select {
			case w.added <- struct{}{}:
			default: // whoever waits also polls
			}
		}
	}()
	return nil
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *watcher) state() (seen int, foreign []string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen), w.foreign, w.err
}

func (w *watcher) sawAt(name string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.seen[name]
	return t, ok
}

// runWatches opens n watches of namespaces on each side, owners' through the proxy and an administrator's
// with the tenant's label selector directly, measures the proxy's memory with them open, then creates a
// namespace in each of eventTenants watched tenants and times how long each watcher of that tenant takes
// to see it as ADDED. Both sides watch at once, so both see the same creations.
func runWatches(ctx context.Context, c *testbed.Cluster, b *bench, ty *tenancy, ids scaleIdentities, n, proxyPID int, whileOpen func()) *watchResult {
	res := &watchResult{watches: n}
	res.err = res.run(ctx, c, b, ty, ids, proxyPID, whileOpen)
	if res.err != nil {
		fmt.Fprintf(os.Stderr, "bench: watches FAILED: %v\n", res.err)
	}
	return res
}

func (res *watchResult) run(ctx context.Context, c *testbed.Cluster, b *bench, ty *tenancy, ids scaleIdentities, proxyPID int, whileOpen func()) error {
	n := res.watches
	tenants := ty.count()
	res.tenants = min(n, tenants)
	res.rssBefore, _ = residentBytes(proxyPID)
	res.memBefore = readGoMemory(ctx, b.proxyMetricsURL)
	res.apiRSSBefore, _ = residentBytes(c.PID("kube-apiserver"))

	ownerIDs := map[int]identity{}
	var watchers []*watcher
	byTenant := map[string][]*watcher{}
	defer func() {
		for _, w := range watchers {
			if w.cancel != nil {
				w.cancel()
			}
			closeClients([]*client{w.client})
		}
	}()
	began := time.Now()
	openCtx, cancelOpen := context.WithTimeout(ctx, watchReadyTimeout)
	defer cancelOpen()
	g, gctx := errgroup.WithContext(openCtx)
	g.SetLimit(fixtureConcurrency)
	for i := range n {
		t := ty.tenant(i % tenants)
		id, ok := ownerIDs[t.index]
		if !ok {
			var err error
			if id, err = ownerIdentity(c.CA, t); err != nil {
				return err
			}
			ownerIDs[t.index] = id
		}
		for _, s := range []struct {
			side, base, path string
			id               identity
		}{
			{"proxy", b.proxyURL, nsListPath + "?watch=true", id},
			{"direct", b.directURL, nsListPath + selector(testbed.CapsuleTenantLabel, t.name) + "&watch=true", ids.admin},
		} {
			cl, err := newClient(s.base, b.caPEM, s.id.cred)
			if err != nil {
				return err
			}
			cl.http.Timeout = 0 // a watch lasts as long as the bench wants it to
			w := &watcher{side: s.side, tenant: t, client: cl, seen: map[string]time.Time{}, added: make(chan struct{}, 64)}
			watchers = append(watchers, w)
			byTenant[t.name] = append(byTenant[t.name], w)
			wctx, cancel := context.WithCancel(ctx)
			w.cancel = cancel
			g.Go(func() error {
				if err := w.run(wctx, s.base+s.path); err != nil {
					return err
				}
				// Initial events: every namespace the tenant has.
				for {
					seen, foreign, err := w.state()
					switch {
					case err != nil:
						return err
					case len(foreign) > 0:
						return fmt.Errorf("%s watcher of %s was shown %v", w.side, t.name, foreign)
					case seen >= len(t.namespaces):
						return nil
					}
					select {
					case <-w.added:
					case <-gctx.Done():
						return fmt.Errorf("%s watcher of %s saw %d of %d namespaces: %w", w.side, t.name, seen, len(t.namespaces), gctx.Err())
					}
				}
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	res.openTook = time.Since(began)
	fmt.Fprintf(os.Stderr, "bench: scale: %d watches open on each side in %s\n", n, res.openTook.Round(100*time.Millisecond))
	// Let the servers finish whatever opening the watches started before reading their memory.
	time.Sleep(3 * time.Second)
	res.rssWith, _ = residentBytes(proxyPID)
	res.fileWith, _ = fileBackedBytes(proxyPID)
	res.apiRSSWith, _ = residentBytes(c.PID("kube-apiserver"))
	res.memWith = readGoMemory(ctx, b.proxyMetricsURL)
	whileOpen()

	for k := range min(eventTenants, res.tenants) {
		t := ty.tenant(k * res.tenants / min(eventTenants, res.tenants))
		name := fmt.Sprintf("%s-w%02d", t.name, k)
		start := time.Now()
		ns, err := ty.createNamespace(ctx, t, name)
		if err != nil {
			return err
		}
		deadline := time.After(eventTimeout)
		for _, w := range byTenant[t.name] {
			for {
				at, ok := w.sawAt(name)
				if ok {
					if w.side == "proxy" {
						res.proxyLatency = append(res.proxyLatency, at.Sub(start))
					} else {
						res.directLatency = append(res.directLatency, at.Sub(start))
					}
					break
				}
				if _, _, err := w.state(); err != nil {
					return err
				}
				select {
				case <-w.added:
				case <-time.After(10 * time.Millisecond):
				case <-deadline:
					return fmt.Errorf("%s watcher of %s did not see namespace %s within %s", w.side, t.name, name, eventTimeout)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		res.events++
		// Capsule's controller then records the namespace in the Tenant's status.
		t.namespaces = append(t.namespaces, name)
		if err := ty.refreshStatus(ctx, t, name, ns.UID); err != nil {
			return err
		}
	}
	time.Sleep(time.Second) // a stray event of another tenant would have arrived by now
	var errs []error
	for _, w := range watchers {
		if _, foreign, err := w.state(); err != nil {
			errs = append(errs, err)
		} else if len(foreign) > 0 {
			errs = append(errs, fmt.Errorf("%s watcher of %s was shown %v", w.side, w.tenant.name, foreign))
		}
	}
	return errors.Join(errs...)
}

// refreshStatus adds a namespace to a tenant's status, as the Capsule controller does after its webhook
// has assigned the namespace.
func (ty *tenancy) refreshStatus(ctx context.Context, t *benchTenant, name string, uid types.UID) error {
	obj, err := ty.tenants.Get(ctx, t.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get tenant %s: %w", t.name, err)
	}
	uids := map[string]types.UID{name: uid}
	spaces, _, _ := unstructured.NestedSlice(obj.Object, "status", "spaces")
	for _, sp := range spaces {
		if m, ok := sp.(map[string]any); ok {
			n, _ := m["name"].(string)
			u, _ := m["uid"].(string)
			uids[n] = types.UID(u)
		}
	}
	return ty.updateStatus(ctx, obj, t, uids)
}

func watchReport(w *watchResult) string {
	var s strings.Builder
	fmt.Fprintf(&s, "\n### %d namespace watches on each side\n\n", w.watches)
	fmt.Fprintf(&s, "Through the proxy, the owners of %d tenants (watch i by the owner of tenant i mod %d) watch namespaces "+
		"(`kubectl get ns -w`: GET /api/v1/namespaces?watch=true); directly, an administrator holds the same number of watches, "+
		"each with the label selector of the same tenant. Every watch has its own HTTP/2 connection, as separate kubectl "+
		"processes would. Both sides are open at the same time.\n\n", w.tenants, w.tenants)
	if w.err != nil {
		fmt.Fprintf(&s, "**Failed:** %v\n\n", w.err)
	}
	fmt.Fprintf(&s, "- Opening all %d watches and receiving their initial events: %.1f s.\n", 2*w.watches, w.openTook.Seconds())
	fmt.Fprintf(&s, "- Proxy RSS: %.1f MiB before the watches, %.1f MiB with them open, of which %.1f MiB file-backed "+
		"(RssFile: pages of the executable; kube-apiserver: %.1f -> %.1f MiB).\n",
		mib(w.rssBefore), mib(w.rssWith), mib(w.fileWith), mib(w.apiRSSBefore), mib(w.apiRSSWith))
	fmt.Fprintf(&s, "- Proxy runtime before the watches: %s; with them open: %s.\n", w.memBefore, w.memWith)
	if w.events > 0 {
		fmt.Fprintf(&s, "- Event latency: %d namespaces created (by an administrator, shaped as Capsule's webhook leaves them), "+
			"one in each of %d watched tenants; the time from sending the create to each watcher of that tenant receiving "+
			"ADDED. Directly: p50 %s ms, p99 %s ms over %d events seen; via the proxy: p50 %s ms, p99 %s ms over %d "+
			"(p50 ratio %s). No watcher was shown another tenant's namespace.\n",
			w.events, w.events, fmtMs(percentile(w.directLatency, 50)), fmtMs(percentile(w.directLatency, 99)), len(w.directLatency),
			fmtMs(percentile(w.proxyLatency, 50)), fmtMs(percentile(w.proxyLatency, 99)), len(w.proxyLatency),
			fmtX(ratio(percentile(w.proxyLatency, 50), percentile(w.directLatency, 50))))
	}
	s.WriteString("\n")
	return s.String()
}
