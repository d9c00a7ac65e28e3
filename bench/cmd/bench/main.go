// Command bench compares tenant-proxy with kube-apiserver directly (`make bench`): it starts a real local
// cluster and the proxy, runs the same requests with the same credentials against both in alternating rounds,
// and reports latency, throughput and CPU per request, then checks them against the project's targets.
package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

func main() {
	duration := flag.Duration("duration", 3*time.Second, "length of one round of one side (direct or via the proxy)")
	rounds := flag.Int("rounds", 4, "rounds per workload; each has one direct and one proxy run")
	out := flag.String("out", "bench/results.md", "where to write the results as Markdown")
	only := flag.String("only", "", "comma-separated workload keys to run (cert-1,cert-16,token-1,token-16,mixed-16,oidc-1,list-1,groups-1, "+
		"helm for the rows helm-install, helm-uninstall and helm-list); empty runs all")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the proxy, taken during the proxy rounds, to this file")
	flag.BoolVar(&floorRows, "floor", false, "also run the selected cert-1, cert-16, token-1 and token-16 through floorproxy, the least a Go proxy in tenant-proxy's place does (TLS, a kept TokenReview, impersonation, httputil.ReverseProxy; rows floor-*)")
	flag.StringVar(&candidateBin, "candidate", "", "also run the selected passthrough workloads through a second tenant-proxy started from this binary, in the same rounds as tenant-proxy (rows candidate-*): two builds compared on one machine in one run; with -rounds a multiple of 3, each side runs in each position of a round equally often")
	flag.BoolVar(&frontProxyRows, "front-proxy", false, "also run the selected cert-1, cert-16, token-1 and groups-1 through a second proxy that sends identity upstream as front-proxy headers instead of impersonation (rows fp-*)")
	flag.Parse()
	selected = map[string]bool{}
	for _, k := range strings.Split(*only, ",") {
		if k = strings.TrimSpace(k); k != "" {
			selected[k] = true
		}
	}
	profilePath = *cpuProfile
	if *duration <= 0 || *rounds <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -duration and -rounds must be positive")
		os.Exit(2)
	}
	// Ctrl-C cancels the context; run's deferred calls then stop the proxy and the cluster.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *duration, *rounds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, duration time.Duration, rounds int, out string) (err error) {
	binDir := testbed.DefaultBinDir()
	proxyBin := filepath.Join(binDir, "tenant-proxy")
	if _, err := os.Stat(proxyBin); err != nil {
		return fmt.Errorf("tenant-proxy binary (run `make build`): %w", err)
	}
	// Our own working directory, so that it (with every component's log) survives a failed run.
	dir, err := os.MkdirTemp("", "tenant-proxy-bench-")
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	defer func() {
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "bench: logs kept in %s\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()

	cluster, err := testbed.Start(ctx, testbed.Options{BinDir: binDir, Dir: dir, CapsuleCRDs: true, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer func() { _ = cluster.Stop() }()
	o := cluster.OIDC
	// Without --debug: the proxy runs as in production.
	proxyArgs := []string{
		"--oidc-issuer-url", o.URL, "--oidc-client-id", o.ClientID, "--oidc-ca-file", o.CAFile,
		"--oidc-username-claim", o.UsernameClaim, "--oidc-username-prefix", o.UsernamePrefix,
		"--oidc-groups-claim", o.GroupsClaim, "--oidc-groups-prefix", o.GroupsPrefix,
		"--profiling=" + strconv.FormatBool(profilePath != "" || *heapProfile != ""),
		// The helm workloads' chart repository is in this process, on loopback.
		"--allow-private-repositories",
	}
	proxy, err := cluster.StartProxy(ctx, proxyBin, "tenant-proxy", proxyArgs...)
	if err != nil {
		return err
	}
	defer proxy.Stop()

	fx, err := setUpFixture(ctx, cluster, proxy.URL)
	if err != nil {
		return err
	}
	prep := prepareScale(ctx, cluster)
	b := &bench{
		directURL: cluster.URL,
		proxyURL:  proxy.URL,
		caPEM:     cluster.CA.CertPEM,
		comps: []component{ // in the order of apiserverComp, etcdComp, proxyComp
			{"kube-apiserver", cluster.PID("kube-apiserver")},
			{"etcd", cluster.PID("etcd")},
			{"tenant-proxy", proxy.PID()},
		},
		duration: duration,
		rounds:   rounds,
		log:      os.Stderr,
	}
	var rows []row
	var failed []error
	if profilePath != "" {
		stopProfile := startProxyProfile(ctx, proxy.MetricsURL, profilePath)
		defer stopProfile()
	}
	for _, w := range workloads(fx) {
		if len(selected) > 0 && !selected[w.key] {
			continue
		}
		res := b.measure(ctx, w)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if res.err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", w.name, res.err))
			fmt.Fprintf(os.Stderr, "bench: %s FAILED: %v\n", w.name, res.err)
		}
		rows = append(rows, rowOf(res))
	}
	if helmSelected() {
		helmRows, err := runHelm(ctx, cluster, b, dir)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("helm: %w", err))
			fmt.Fprintf(os.Stderr, "bench: helm FAILED: %v\n", err)
		}
		rows = append(rows, helmRows...)
	}
	if frontProxyRows {
		fpRows, err := measureFrontProxy(ctx, cluster, proxyBin, proxyArgs, b, fx)
		if err != nil {
			return err
		}
		rows = append(rows, fpRows...)
	}
	if candidateBin != "" {
		candidate, err := measureCandidate(ctx, cluster, proxyArgs, b, fx)
		if err != nil {
			return err
		}
		rows = append(rows, candidate...)
	}
	if floorRows {
		floor, err := measureFloor(ctx, cluster, b, fx, dir)
		if err != nil {
			return err
		}
		rows = append(rows, floor...)
	}
	scale := runScale(ctx, cluster, proxy, b, out, prep)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	failed = append(failed, scale.failures()...)

	report := buildReport(rows, failed, b, proxy, duration, rounds, scale)
	fmt.Print(report)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: results written to %s\n", out)
	if len(failed) > 0 {
		return fmt.Errorf("%d workload(s) failed (proxy log %s): %w", len(failed), proxy.LogPath, errors.Join(failed...))
	}
	return nil
}

var frontProxyRows bool

// measureFrontProxy runs the fp-* rows against a second proxy in front-proxy mode (same flags otherwise),
// charging its CPU to the proxy column.
func measureFrontProxy(ctx context.Context, cluster *testbed.Cluster, bin string, args []string, b *bench, fx *fixture) ([]row, error) {
	fpArgs, err := cluster.UpstreamFrontProxyArgs("tenant-proxy-fp")
	if err != nil {
		return nil, err
	}
	fp, err := cluster.StartProxy(ctx, bin, "tenant-proxy-fp", append(slices.Clone(args), fpArgs...)...)
	if err != nil {
		return nil, err
	}
	defer fp.Stop()
	return measureThrough(ctx, b, fx, proxyAt{url: fp.URL, comp: component{"tenant-proxy-fp", fp.PID()}},
		[]string{"cert-1", "cert-16", "token-1", "groups-1"}, "fp-", ", front-proxy headers")
}

// measureThrough runs the selected workloads of keys through the proxy (instead of tenant-proxy) as rows
// prefix+key, named with suffix, and through alongside in the same rounds.
func measureThrough(ctx context.Context, b *bench, fx *fixture, proxy proxyAt, keys []string, prefix, suffix string, alongside ...proxyAt) ([]row, error) {
	pb := *b
	pb.proxyURL, pb.comps = proxy.url, slices.Clone(b.comps)
	pb.comps[proxyComp] = proxy.comp
	var rows []row
	for _, w := range workloads(fx) {
		if (len(selected) > 0 && !selected[w.key]) || !slices.Contains(keys, w.key) {
			continue
		}
		w.key, w.name = prefix+w.key, w.name+suffix
		res := pb.measure(ctx, w, alongside...)
		if res.err != nil {
			return nil, fmt.Errorf("%s: %w", w.name, res.err)
		}
		rows = append(rows, rowOf(res))
	}
	return rows, nil
}

var candidateBin string

const candidateKeyPrefix = "candidate-"

// candidateRowKeys are the workloads run through the candidate too: the passthrough ones.
var candidateRowKeys = []string{"cert-1", "cert-16", "token-1", "token-16", "mixed-16", "oidc-1", "list-1", "groups-1"}

// measureCandidate runs the candidate-* rows through a second tenant-proxy from -candidate, with tenant-proxy's
// flags, rotating direct, candidate and tenant-proxy in the same rounds. Separate runs of the bench differ by
// more than most changes do (README, Performance); in one run's rounds both builds meet the same machine.
func measureCandidate(ctx context.Context, cluster *testbed.Cluster, args []string, b *bench, fx *fixture) ([]row, error) {
	c, err := cluster.StartProxy(ctx, candidateBin, "tenant-proxy-candidate", args...)
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	return measureThrough(ctx, b, fx, proxyAt{url: c.URL, comp: component{"candidate", c.PID()}},
		candidateRowKeys, candidateKeyPrefix, ", candidate", proxyAt{url: b.proxyURL, comp: b.comps[proxyComp]})
}

var floorRows bool

// floorRowKeys are the workloads run through floorproxy too, as rows floorKeyPrefix+key.
var floorRowKeys = []string{"cert-1", "cert-16", "token-1", "token-16"}

const floorKeyPrefix = "floor-"

// measureFloor builds bench/cmd/floorproxy and runs the floor-* rows through it: what is left of each row's
// ratio is the hop itself (a second TLS connection, HTTP/2 on both sides, impersonation in the API server),
// which no change to tenant-proxy's own code can remove.
func measureFloor(ctx context.Context, cluster *testbed.Cluster, b *bench, fx *fixture, dir string) ([]row, error) {
	bin := filepath.Join(dir, "floorproxy-bin", "floorproxy")
	// The floor gets tenant-proxy's linker flags too (the runtime's GODEBUG default, see the Makefile), so that
	// the two differ in code, not in runtime settings.
	ldflags, err := linkerFlags(filepath.Join(testbed.DefaultBinDir(), "tenant-proxy"))
	if err != nil {
		return nil, err
	}
	build := exec.CommandContext(ctx, "go", "build", "-ldflags", ldflags, "-o", bin, "./bench/cmd/floorproxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build floorproxy: %w: %s", err, out)
	}
	fp, err := cluster.StartProxy(ctx, bin, "floorproxy", "--client-ca-file", cluster.CAFile)
	if err != nil {
		return nil, err
	}
	defer fp.Stop()
	for _, id := range []identity{fx.cert, fx.token} {
		if err := checkIdentity(ctx, cluster, fp.URL, id); err != nil {
			return nil, fmt.Errorf("floorproxy: %w", err)
		}
	}
	return measureThrough(ctx, b, fx, proxyAt{url: fp.URL, comp: component{"floorproxy", fp.PID()}},
		floorRowKeys, floorKeyPrefix, ", floorproxy", proxyAt{url: b.proxyURL, comp: b.comps[proxyComp]})
}

// linkerFlags are the -ldflags the binary at path was built with, from its build information.
func linkerFlags(path string) (string, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("build information of %s: %w", path, err)
	}
	for _, s := range info.Settings {
		if s.Key == "-ldflags" {
			return s.Value, nil
		}
	}
	return "", nil
}

func workloads(fx *fixture) []workload {
	return []workload{
		{key: "cert-1", name: "GET, client certificate, 1 client", path: getPath, id: fx.cert, clients: 1},
		{key: "cert-16", name: "GET, client certificate, 16 clients", path: getPath, id: fx.cert, clients: 16},
		{key: "token-1", name: "GET, ServiceAccount token, 1 client", path: getPath, id: fx.token, clients: 1},
		{key: "token-16", name: "GET, ServiceAccount token, 16 clients", path: getPath, id: fx.token, clients: 16},
		{key: "mixed-16", name: "GET, 8 certificate and 8 token clients", path: getPath, id: fx.cert, alternate: &fx.token, clients: 16},
		{key: "oidc-1", name: "GET, OIDC token, 1 client", path: getPath, id: fx.oidc, clients: 1},
		{key: "list-1", name: "LIST 52 ConfigMaps, certificate, 1 client", path: listPath, id: fx.cert, clients: 1},
		{key: "groups-1", name: "GET, certificate with 200 groups, 1 client", path: getPath, id: fx.groups, clients: 1,
			baseline: &fx.cert, baselineName: "GET, client certificate (2 groups), 1 client, in the 200-group rows' rounds"},
	}
}

func buildReport(rows []row, failed []error, b *bench, proxy *testbed.Proxy, duration time.Duration, rounds int, scale *scaleResult) string {
	var s strings.Builder
	fmt.Fprintf(&s, "# tenant-proxy benchmark\n\n")
	fmt.Fprintf(&s, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&s, "- Machine: %d CPUs (nproc), %s, %s/%s, %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&s, "- Method: per workload, %d warm-up requests per side, then %d rounds of %s direct and %s via the proxy, "+
		"alternating which side goes first. Clients send back-to-back GETs (closed loop) over HTTP/2 with client-go's "+
		"transport (TLS, bearer token), one connection per client, no client-side rate limit, Accept: application/json. "+
		"kube-apiserver writes a blocking audit log on both sides; the proxy writes its own audit log.\n",
		warmUpRequests, rounds, duration, duration)
	if slices.ContainsFunc(rows, func(r row) bool { return slices.Contains(helmRowKeys, r.res.w.key) }) {
		s.WriteString(helmMethod(rounds, duration))
	}
	fmt.Fprintf(&s, "- Absolute numbers swing 20-40%% between runs on a shared machine (the bench client runs on the "+
		"same cores as the servers), so compare the ratios: both sides of a row are measured in alternating rounds.\n\n")
	fmt.Fprintf(&s, "## Results\n\n%s\n", resultsTable(rows))
	fmt.Fprintf(&s, "Latency percentiles are over every request of all rounds; req/s is requests over the wall time of that "+
		"side's rounds; CPU ms/req is the process's utime+stime (/proc/<pid>/stat, 10 ms resolution) during that side's "+
		"rounds over its requests. \"via proxy\" is the API server's cost when it serves the proxy's impersonated request; "+
		"proxy CPU / apiserver CPU divides the proxy's CPU per request by the API server's serving the same request directly.\n\n")
	if slices.ContainsFunc(rows, func(r row) bool { return strings.HasPrefix(r.res.w.key, floorKeyPrefix) }) {
		s.WriteString("Rows \"floorproxy\" run the same workload through `bench/cmd/floorproxy` instead of tenant-proxy: the " +
			"least a Go proxy in its place does (TLS with client certificates verified in the handshake, one TokenReview per " +
			"token kept for good, the same Impersonate-* headers, httputil.ReverseProxy over client-go's HTTP/2 transport, " +
			"x/net's HTTP/2 server, tenant-proxy's runtime settings), with no filter chain, audit log or metrics. What " +
			"remains of their ratios is the cost of the hop itself, which no change to tenant-proxy's own code removes. " +
			"Their rounds rotate through three sides, direct, floorproxy and tenant-proxy, and the Targets' INFO lines " +
			"compare the floor with tenant-proxy from those same rounds: the machine warms up over a run (direct p50 " +
			"falls by up to a third), so rows measured later would otherwise look cheaper.\n\n")
	}
	for _, c := range []component{b.comps[proxyComp], b.comps[apiserverComp]} {
		if rss, err := residentBytes(c.pid); err == nil {
			fmt.Fprintf(&s, "Resident memory (VmRSS) of %s at the end: %.1f MiB.\n", c.name, float64(rss)/(1<<20))
		} else {
			fmt.Fprintf(&s, "Resident memory of %s: %v.\n", c.name, err)
		}
	}
	s.WriteString(scaleReport(scale))
	if len(failed) > 0 {
		fmt.Fprintf(&s, "\n## Failures\n\n")
		for _, err := range failed {
			fmt.Fprintf(&s, "- %v\n", err)
		}
		fmt.Fprintf(&s, "\nProxy log: %s\n", proxy.LogPath)
	}
	fmt.Fprintf(&s, "\n## Targets\n\n%s", targetsText(append(targets(rows), scaleTargets(scale)...)))
	return s.String()
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
