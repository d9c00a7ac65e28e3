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

// workload is one row of the table: the same request by the same credential, directly and via the proxy.
type workload struct {
	key     string // what the targets refer to it by
	name    string
	path    string
	id      identity
	clients int
}

// side accumulates one side (direct or via the proxy) of a workload over all its rounds.
type side struct {
	name      string
	base      string // https://host:port of the API server or the proxy
	url       string // base + the workload's path
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
	caPEM               []byte
	comps               []component // kube-apiserver, etcd, tenant-proxy
	duration            time.Duration
	rounds              int
	log                 io.Writer
}

// measure warms both sides up, then runs rounds of one direct and one proxy run each, alternating which
// goes first so that neither side always runs on a machine the other has just heated up or slowed down.
func (b *bench) measure(ctx context.Context, w workload) *result {
	res := &result{
		w:      w,
		direct: &side{name: "direct", base: b.directURL, url: b.directURL + w.path, cpu: make([]time.Duration, len(b.comps))},
		proxy:  &side{name: "proxy", base: b.proxyURL, url: b.proxyURL + w.path, cpu: make([]time.Duration, len(b.comps))},
	}
	res.err = b.run(ctx, w, res.direct, res.proxy)
	return res
}

func (b *bench) run(ctx context.Context, w workload, direct, proxy *side) error {
	for _, s := range []*side{direct, proxy} {
		var err error
		if s.clients, err = newClients(w.clients, s.base, b.caPEM, w.id.cred); err != nil {
			return err
		}
		defer closeClients(s.clients)
	}
	perClient := (warmUpRequests + w.clients - 1) / w.clients
	for _, s := range []*side{direct, proxy} {
		if _, err := runLoad(ctx, s.clients, s.url, time.Now().Add(time.Minute), perClient); err != nil {
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
	l, err := runLoad(ctx, s.clients, s.url, time.Now().Add(b.duration), 0)
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
