package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// warmUpRequests per side and workload open connections and fill caches (the proxy's TokenReview cache,
// the API server's OIDC and RBAC caches) before anything is measured.
const warmUpRequests = 200

// workload is one row of the table: the same request by the same credential, directly and via the proxy,
// unless direct says what the direct side does instead.
type workload struct {
	key     string // what the targets refer to it by
	name    string
	path    string
	id      identity
	clients int
	// accept is the Accept header; empty means application/json.
	accept string
	// direct, if set, is the direct side's equivalent of path as id: an administrator's list with the
	// selector that matches what the proxy's filter lets id see, or the requests id would have to make in a
	// row without the proxy.
	direct *request
}

// request is what one measured operation of one side does: GET each path in turn, as id.
type request struct {
	paths []string
	id    identity
}

func (w workload) sides() (direct, proxy request) {
	proxy = request{paths: []string{w.path}, id: w.id}
	if w.direct != nil {
		return *w.direct, proxy
	}
	return proxy, proxy
}

func urls(base string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = base + p
	}
	return out
}

// side accumulates one side (direct or via the proxy) of a workload over all its rounds.
type side struct {
	name      string
	base      string   // https://host:port of the API server or the proxy
	urls      []string // base + the paths of one operation
	id        identity
	accept    string
	clients   []*client
	latencies []time.Duration
	wall      time.Duration
	cpu       []time.Duration // per component of bench.comps
}

type result struct {
	w             workload
	direct, proxy *side
	err           error // why the workload stopped early, if it did
}

// Indexes of bench.comps.
const (
	apiserverComp = iota
	etcdComp
	proxyComp
)

// bench runs workloads against the API server and the proxy, charging CPU time to the side being measured.
type bench struct {
	directURL, proxyURL string
	proxyMetricsURL     string // the proxy's metrics address (scale part)
	caPEM               []byte
	comps               []component // kube-apiserver, etcd, tenant-proxy
	duration            time.Duration
	rounds              int
	log                 io.Writer
}

// measure warms both sides up, then runs rounds of one direct and one proxy run each, alternating which
// goes first so that neither side always runs on a machine the other has just heated up or slowed down.
func (b *bench) measure(ctx context.Context, w workload) *result {
	d, p := w.sides()
	res := &result{
		w: w,
		direct: &side{name: "direct", base: b.directURL, urls: urls(b.directURL, d.paths), id: d.id, accept: w.accept,
			cpu: make([]time.Duration, len(b.comps))},
		proxy: &side{name: "proxy", base: b.proxyURL, urls: urls(b.proxyURL, p.paths), id: p.id, accept: w.accept,
			cpu: make([]time.Duration, len(b.comps))},
	}
	res.err = b.run(ctx, w, res.direct, res.proxy)
	return res
}

func (b *bench) run(ctx context.Context, w workload, direct, proxy *side) error {
	for _, s := range []*side{direct, proxy} {
		var err error
		if s.clients, err = newClients(w.clients, s.base, b.caPEM, s.id.cred); err != nil {
			return err
		}
		defer closeClients(s.clients)
	}
	perClient := (warmUpRequests + w.clients - 1) / w.clients
	for _, s := range []*side{direct, proxy} {
		if _, err := runLoad(ctx, s.clients, s.urls, s.accept, time.Now().Add(time.Minute), perClient); err != nil {
			return fmt.Errorf("warm-up %s: %w", s.name, err)
		}
	}
	for r := range b.rounds {
		order := []*side{direct, proxy}
		if r%2 == 1 {
			order = []*side{proxy, direct}
		}
		for _, s := range order {
			l, err := b.round(ctx, s)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r+1, s.name, err)
			}
			fmt.Fprintf(b.log, "bench: %-44s round %d/%d %-6s %6d requests, p50 %s ms\n",
				w.name, r+1, b.rounds, s.name, len(l.latencies), fmtMs(percentile(l.latencies, 50)))
		}
	}
	return nil
}

// round runs s's clients for b.duration and adds the latencies, wall time and CPU time of every component.
func (b *bench) round(ctx context.Context, s *side) (load, error) {
	before, err := cpuTimes(b.comps)
	if err != nil {
		return load{}, err
	}
	l, err := runLoad(ctx, s.clients, s.urls, s.accept, time.Now().Add(b.duration), 0)
	if err != nil {
		return load{}, err
	}
	after, err := cpuTimes(b.comps)
	if err != nil {
		return load{}, err
	}
	s.latencies = append(s.latencies, l.latencies...)
	s.wall += l.wall
	for i := range s.cpu {
		s.cpu[i] += after[i] - before[i]
	}
	return l, nil
}
