package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/releases"
	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// The helm part: a tenant owner installs, uninstalls and lists releases through the proxy's release API,
// against the same operations with the Helm SDK as the same user directly. `-only helm` selects it.
const (
	helmKey        = "helm"
	helmWarmUps    = 3 // install+uninstall pairs per side: discovery, chart caches, connections
	helmListWarmUp = 20
	// helmStanding releases stay installed while everything is measured, so that a list has something to
	// return and an install lands in a namespace that already has releases.
	helmStanding = 5
)

var helmRowKeys = []string{"helm-install", "helm-uninstall", "helm-list"}

func helmSelected() bool {
	return len(selected) == 0 || selected[helmKey] || slices.ContainsFunc(helmRowKeys, func(k string) bool { return selected[k] })
}

// helmSide is one side's client and what it measured of each operation.
type helmSide struct {
	name                     string // direct or proxy
	client                   helmClient
	install, uninstall, list *side
	installed                int // releases installed so far, for fresh names
}

func (b *bench) newHelmSide(name string, c helmClient) *helmSide {
	s := &helmSide{name: name, client: c}
	for _, p := range []**side{&s.install, &s.uninstall, &s.list} {
		*p = &side{name: name, cpu: make([]time.Duration, len(b.comps))}
	}
	return s
}

// nextRelease is a name no release of this run has had: an install never meets an old record.
func (s *helmSide) nextRelease() string {
	s.installed++
	return fmt.Sprintf("bench-%s-%d", s.name, s.installed)
}

// runHelm sets up the chart repository, the owner and both sides, measures, and returns the rows
// helm-install, helm-uninstall and helm-list (all failed, and the error, if anything failed).
func runHelm(ctx context.Context, c *testbed.Cluster, b *bench, dir string) ([]row, error) {
	direct, proxy, err := b.measureHelm(ctx, c, dir)
	names := map[string]string{
		"helm-install":   "helm install (1 ConfigMap chart), certificate, 1 client",
		"helm-uninstall": "helm uninstall --purge, certificate, 1 client",
		"helm-list":      fmt.Sprintf("helm list (%d releases), certificate, 1 client", helmStanding),
	}
	pick := func(s *helmSide, key string) *side {
		if s == nil {
			return &side{cpu: make([]time.Duration, len(b.comps))}
		}
		return map[string]*side{"helm-install": s.install, "helm-uninstall": s.uninstall, "helm-list": s.list}[key]
	}
	rows := make([]row, 0, len(helmRowKeys))
	for _, key := range helmRowKeys {
		res := &result{w: workload{key: key, name: names[key], clients: 1}, direct: pick(direct, key), proxy: pick(proxy, key), err: err}
		rows = append(rows, rowOf(res))
	}
	return rows, err
}

func (b *bench) measureHelm(ctx context.Context, c *testbed.Cluster, dir string) (direct, proxy *helmSide, err error) {
	dir = filepath.Join(dir, "helm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("helm directory: %w", err)
	}
	repo, err := startChartRepo(dir)
	if err != nil {
		return nil, nil, err
	}
	defer repo.stop()
	owner, err := setUpHelmOwner(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	getter := releases.NewRESTClientGetter(restConfig(b.directURL, b.caPEM, owner.cred), helmNamespace)
	sdk, err := newSDKHelm(getter, helmNamespace, repo.URL, dir)
	if err != nil {
		return nil, nil, err
	}
	pc, err := newClient(b.proxyURL, b.caPEM, owner.cred)
	if err != nil {
		return nil, nil, err
	}
	defer closeClients([]*client{pc})
	direct = b.newHelmSide("direct", sdk)
	proxy = b.newHelmSide("proxy", &proxyHelm{c: pc, base: b.proxyURL, namespace: helmNamespace, repoURL: repo.URL})

	standing, err := installStanding(ctx, sdk)
	defer func() { err = errors.Join(err, uninstallAll(context.WithoutCancel(ctx), sdk, standing)) }()
	if err != nil {
		return nil, nil, err
	}
	for _, s := range []*helmSide{direct, proxy} {
		if err := b.helmWarmUp(ctx, s, standing); err != nil {
			return nil, nil, fmt.Errorf("warm-up %s: %w", s.name, err)
		}
	}
	// The warm-up's operations are not part of the results.
	direct, proxy = b.newHelmSide("direct", direct.client), b.newHelmSide("proxy", proxy.client)
	direct.installed, proxy.installed = helmWarmUps, helmWarmUps
	for r := range b.rounds {
		order := []*helmSide{direct, proxy}
		if r%2 == 1 {
			order = []*helmSide{proxy, direct}
		}
		for _, s := range order {
			n, err := b.installRound(ctx, s)
			if err != nil {
				return nil, nil, fmt.Errorf("round %d %s install: %w", r+1, s.name, err)
			}
			b.logHelmRound("helm install+uninstall", r, s.name, n, s.install)
		}
		for _, s := range order {
			n, err := b.listRound(ctx, s, standing)
			if err != nil {
				return nil, nil, fmt.Errorf("round %d %s list: %w", r+1, s.name, err)
			}
			b.logHelmRound("helm list", r, s.name, n, s.list)
		}
	}
	return direct, proxy, nil
}

func (b *bench) logHelmRound(what string, r int, sideName string, n int, s *side) {
	fmt.Fprintf(b.log, "bench: %-44s round %d/%d %-6s %6d operations, p50 so far %s ms\n",
		what, r+1, b.rounds, sideName, n, fmtMs(percentile(s.latencies, 50)))
}

// installStanding installs the standing releases with the SDK (they are fixture, not measured).
func installStanding(ctx context.Context, sdk *sdkHelm) ([]string, error) {
	var names []string
	for i := range helmStanding {
		name := fmt.Sprintf("standing-%d", i)
		if err := sdk.install(ctx, name); err != nil {
			return names, fmt.Errorf("standing release: %w", err)
		}
		names = append(names, name)
	}
	return names, nil
}

func uninstallAll(ctx context.Context, c helmClient, releases []string) error {
	var errs []error
	for _, name := range releases {
		errs = append(errs, c.uninstall(ctx, name))
	}
	return errors.Join(errs...)
}

// helmWarmUp installs and uninstalls a few releases and lists a few times, checking that the list is
// exactly the standing releases: a side that lists something else would measure another operation.
func (b *bench) helmWarmUp(ctx context.Context, s *helmSide, standing []string) error {
	for range helmWarmUps {
		name := s.nextRelease()
		if err := s.client.install(ctx, name); err != nil {
			return errors.Join(err, s.client.uninstall(context.WithoutCancel(ctx), name))
		}
		if err := s.client.uninstall(ctx, name); err != nil {
			return err
		}
	}
	for range helmListWarmUp {
		if err := checkList(ctx, s.client, standing); err != nil {
			return err
		}
	}
	return nil
}

func checkList(ctx context.Context, c helmClient, want []string) error {
	got, err := c.list(ctx)
	if err != nil {
		return err
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("list returned %v, want %v", got, want)
	}
	return nil
}

// installRound installs fresh releases back to back for b.duration, uninstalling each right after. Install
// and uninstall are timed (and charged CPU) separately, so neither includes the other.
func (b *bench) installRound(ctx context.Context, s *helmSide) (int, error) {
	n := 0
	for deadline := time.Now().Add(b.duration); time.Now().Before(deadline); n++ {
		name := s.nextRelease()
		if err := b.timeOp(ctx, s.install, func(ctx context.Context) error { return s.client.install(ctx, name) }); err != nil {
			// Whatever a failed install left must not stay behind; its error may be "not found".
			_ = s.client.uninstall(context.WithoutCancel(ctx), name)
			return n, err
		}
		if err := b.timeOp(ctx, s.uninstall, func(ctx context.Context) error { return s.client.uninstall(ctx, name) }); err != nil {
			return n, err
		}
	}
	return n, nil
}

// listRound lists the namespace's releases back to back for b.duration.
func (b *bench) listRound(ctx context.Context, s *helmSide, standing []string) (int, error) {
	n := 0
	for deadline := time.Now().Add(b.duration); time.Now().Before(deadline); n++ {
		if err := b.timeOp(ctx, s.list, func(ctx context.Context) error { return checkList(ctx, s.client, standing) }); err != nil {
			return n, err
		}
	}
	return n, nil
}

// timeOp runs op once and adds its latency (also as wall time: operations run one at a time) and the CPU
// time every component spent meanwhile to s.
func (b *bench) timeOp(ctx context.Context, s *side, op func(context.Context) error) error {
	before, err := cpuTimes(b.comps)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := op(ctx); err != nil {
		return err
	}
	took := time.Since(start)
	after, err := cpuTimes(b.comps)
	if err != nil {
		return err
	}
	s.latencies = append(s.latencies, took)
	s.wall += took
	for i := range s.cpu {
		s.cpu[i] += after[i] - before[i]
	}
	return nil
}

// helmMethod says in the report what the helm rows measure.
func helmMethod(rounds int, duration time.Duration) string {
	return fmt.Sprintf("- Helm rows (helm-install, helm-uninstall, helm-list): a tenant owner (client certificate; User owner of "+
		"a Capsule tenant with one namespace) installs chart %s %s (one ConfigMap) from a chart repository served by the "+
		"bench process on loopback (the proxy runs with --allow-private-repositories). Via the proxy: POST "+
		"/v1/namespaces/{ns}/releases with repoUrl, DELETE /v1/namespaces/{ns}/releases/{name}?purge=true and GET "+
		"/v1/namespaces/{ns}/releases over HTTPS with the owner's certificate; the proxy fetches the chart (index cached "+
		"for a minute, archive per install), checks the rendered manifest with SubjectAccessReviews and runs Helm "+
		"impersonating the owner. Directly: the Helm v4 SDK in the bench process with the owner's certificate against the "+
		"API server: LocateChart as `helm install --repo` does (index per install, archive from Helm's content cache), "+
		"Install and Uninstall with the hook-only wait strategy, List; one discovery cache for all operations. Every "+
		"install is of a fresh release name and is uninstalled (timed separately: helm-uninstall) before the next; %d "+
		"standing releases stay installed and are what the list returns. Per side %d warm-up install/uninstall pairs "+
		"and %d lists, then %d rounds of %s of installs, then of lists, per side, alternating which side goes first; "+
		"one operation at a time, so req/s is operations per second of operation time. The direct side's Helm CPU is "+
		"the bench process's and is in no CPU column; the proxy's includes its Helm work.\n",
		benchChartName, benchChartVersion, helmStanding, helmWarmUps, helmListWarmUp, rounds, duration)
}
