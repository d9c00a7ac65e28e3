package main

import (
	"context"
	"fmt"
	"io"
	"slices"
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
	// alternate, if set, is the identity of every second client (on both sides): one proxy serving callers that
	// the API server impersonates in different modes (a ServiceAccount's legacy, a user's constrained).
	alternate *identity
	// baseline, if set, is a second identity whose same request is measured too, directly and via the proxy, in
	// the same rounds: a target that compares two callers then compares them on the same machine.
	baseline     *identity
	baselineName string // its row's name
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
	comps     []component     // whose CPU time this side's rounds are charged
	cpu       []time.Duration // per component of comps
}

type result struct {
	w             workload
	direct, proxy *side
	// alongside are further proxies measured in the same rounds as direct and proxy (tenant-proxy beside
	// the floor): comparing them with proxy is fair only if neither ran on a machine warmer than the other's.
	alongside []*side
	// baselineDirect and baselineProxy are w.baseline's sides, nil without one.
	baselineDirect, baselineProxy *side
	err                           error // why the workload stopped early, if it did
}

// proxyAt is a proxy to measure alongside bench.proxyURL: its URL and the process its CPU is charged to.
type proxyAt struct {
	url  string
	comp component
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

// measure warms every side up, then runs rounds of one run per side (direct, via the proxy, via each of
// alongside), rotating which goes first so that no side always runs on a machine another has just heated
// up or slowed down.
func (b *bench) measure(ctx context.Context, w workload, alongside ...proxyAt) *result {
	d, p := w.sides()
	newSide := func(name, base string, r request, comps []component) *side {
		return &side{name: name, base: base, urls: urls(base, r.paths), id: r.id, accept: w.accept,
			comps: comps, cpu: make([]time.Duration, len(comps))}
	}
	res := &result{w: w, direct: newSide("direct", b.directURL, d, b.comps), proxy: newSide("proxy", b.proxyURL, p, b.comps)}
	sides := []*side{res.direct, res.proxy}
	for _, a := range alongside {
		comps := slices.Clone(b.comps)
		comps[proxyComp] = a.comp
		s := newSide(a.comp.name, a.url, p, comps)
		res.alongside = append(res.alongside, s)
		sides = append(sides, s)
	}
	if w.baseline != nil {
		br := request{paths: p.paths, id: *w.baseline}
		res.baselineDirect = newSide("base-direct", b.directURL, br, b.comps)
		res.baselineProxy = newSide("base-proxy", b.proxyURL, br, b.comps)
		sides = append(sides, res.baselineDirect, res.baselineProxy)
	}
	res.err = b.run(ctx, w, sides)
	return res
}

func (b *bench) run(ctx context.Context, w workload, sides []*side) error {
	for _, s := range sides {
		var err error
		creds := []credential{s.id.cred}
		if w.alternate != nil {
			creds = append(creds, w.alternate.cred)
		}
		if s.clients, err = newClients(w.clients, s.base, b.caPEM, creds...); err != nil {
			return err
		}
		defer closeClients(s.clients)
	}
	perClient := (warmUpRequests + w.clients - 1) / w.clients
	for _, s := range sides {
		if _, err := runLoad(ctx, s.clients, s.urls, s.accept, time.Now().Add(time.Minute), perClient); err != nil {
			return fmt.Errorf("warm-up %s: %w", s.name, err)
		}
	}
	for r := range b.rounds {
		for i := range sides {
			s := sides[(r+i)%len(sides)] // two sides alternate; more rotate
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
	before, err := cpuTimes(s.comps)
	if err != nil {
		return load{}, err
	}
	l, err := runLoad(ctx, s.clients, s.urls, s.accept, time.Now().Add(b.duration), 0)
	if err != nil {
		return load{}, err
	}
	after, err := cpuTimes(s.comps)
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
