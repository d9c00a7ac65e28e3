package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

var (
	scaleTenants = flag.Int("scale", 0, "tenants (of 10 namespaces each) at the largest fixture size; 0 means 200, "+
		"or 1,000 with BENCH_SCALE=large. The fixture grows in steps (a quarter, half, all) and the owner's namespace "+
		"list is measured at each. Scale workload keys for -only: scale-sweep, scale-ns-json, scale-ns-table, "+
		"scale-nodes, scale-sc, scale-all-cm, scale-watch")
	scaleWatches = flag.Int("watches", 500, "concurrent namespace watches on each side in scale-watch")
	heapProfile  = flag.String("heapprofile", "", "write a heap profile of the proxy, taken at the full fixture size with "+
		"the watches open, to this file")
)

// scaleKeys are the -only keys of the scale part.
var scaleKeys = []string{"scale-sweep", "scale-ns-json", "scale-ns-table", "scale-nodes", "scale-sc", "scale-all-cm", "scale-watch"}

func scaleSelected(key string) bool { return len(selected) == 0 || selected[key] }

// scalePlan is how far the fixture grows, in tenants, and where it is measured on the way.
type scalePlan struct {
	name    string
	sizes   []int // tenants at each measured size, increasing; the last is the full fixture
	watches int
}

func planScale() (scalePlan, error) {
	plan := scalePlan{watches: *scaleWatches}
	switch env := os.Getenv("BENCH_SCALE"); {
	case *scaleTenants > 0:
		n := *scaleTenants
		plan.name = fmt.Sprintf("custom (-scale %d)", n)
		for _, s := range []int{n / 4, n / 2, n} {
			if s > 0 && !slices.Contains(plan.sizes, s) {
				plan.sizes = append(plan.sizes, s)
			}
		}
	case env == "" || env == "default":
		plan.name, plan.sizes = "default", []int{50, 100, 200}
	case env == "large":
		plan.name, plan.sizes = "large (BENCH_SCALE=large)", []int{50, 200, 500, 1000}
	default:
		return plan, fmt.Errorf("BENCH_SCALE=%q: want default or large", env)
	}
	return plan, nil
}

// phase is one timed step of the scale part.
type phase struct {
	what string
	took time.Duration
}

// sizePoint is the owner's namespace list measured at one fixture size.
type sizePoint struct {
	namespaces, tenants int
	direct, proxy       stats
	proxyRSS            int64
	proxyMem            goMemory
	fromFull            bool // the full workload at the largest size, not a sweep measurement
}

// scaleResult is everything the scale part measured, for the report.
type scaleResult struct {
	plan       scalePlan
	phases     []phase
	points     []sizePoint
	rows       []row
	watch      *watchResult
	rssIdle    int64 // proxy RSS at the full size before the watches
	memIdle    goMemory
	apiRSS     int64
	chartPath  string
	chartError error
	err        error
}

func (sr *scaleResult) timed(what string, began time.Time) {
	took := time.Since(began)
	sr.phases = append(sr.phases, phase{what, took})
	fmt.Fprintf(os.Stderr, "bench: scale: %s took %s\n", what, took.Round(100*time.Millisecond))
}

// scaleIdentities are the callers of the scale workloads.
type scaleIdentities struct {
	admin identity // system:masters: the direct side of filtered lists and watches
	owner identity // the User owner of the first tenant: what the proxy filters for
}

func ownerIdentity(ca *testbed.CA, t *benchTenant) (identity, error) {
	cert, key, err := ca.IssueClientCert(t.owner, testbed.CapsuleUsersGroup)
	if err != nil {
		return identity{}, err
	}
	return identity{cred: credential{certPEM: cert, keyPEM: key}, user: t.owner}, nil
}

// scalePrep is the part of the fixture made before the passthrough workloads: nodes take kube-controller-
// manager about 90 s to give up on (no kubelet), which can pass while the passthrough workloads run.
type scalePrep struct {
	ty     *tenancy
	phases []phase
	err    error
}

// prepareScale creates the nodes and storage classes if a scale workload is selected.
func prepareScale(ctx context.Context, c *testbed.Cluster) *scalePrep {
	if !slices.ContainsFunc(scaleKeys, scaleSelected) {
		return nil
	}
	p := &scalePrep{}
	if p.ty, p.err = newTenancy(c); p.err != nil {
		return p
	}
	began := time.Now()
	if p.err = p.ty.createNodesAndClasses(ctx); p.err == nil {
		p.phases = append(p.phases, phase{fmt.Sprintf("creating %d nodes and %d storage classes (before the passthrough workloads)",
			nodePools*nodesPerPool, classGroups*classesPerGroup), time.Since(began)})
	}
	return p
}

// runScale grows the tenancy fixture, measures the owner's namespace list at each size, then runs the
// filtered-list and watch workloads at the full size. It returns nil if no scale workload is selected.
func runScale(ctx context.Context, c *testbed.Cluster, proxy *testbed.Proxy, b *bench, out string, prep *scalePrep) *scaleResult {
	if prep == nil {
		return nil
	}
	plan, err := planScale()
	sr := &scaleResult{plan: plan, phases: prep.phases}
	if err == nil {
		err = prep.err
	}
	if err != nil {
		sr.err = err
		return sr
	}
	b.proxyMetricsURL = proxy.MetricsURL
	sr.err = sr.run(ctx, c, proxy, b, prep.ty)
	if len(sr.points) > 1 {
		sr.chartPath = chartPath(out)
		sr.chartError = writeChart(sr.chartPath, sr.points)
	}
	return sr
}

func (sr *scaleResult) run(ctx context.Context, c *testbed.Cluster, proxy *testbed.Proxy, b *bench, ty *tenancy) error {
	settle, err := newSettler(c, c.Admin.Username)
	if err != nil {
		return err
	}
	defer settle.close()
	var ids scaleIdentities
	adminCert, adminKey, err := c.CA.IssueClientCert("bench-admin", "system:masters")
	if err != nil {
		return err
	}
	ids.admin = identity{cred: credential{certPEM: adminCert, keyPEM: adminKey}, user: "bench-admin"}
	proxyPID := proxy.PID()

	var began time.Time
	for i, tenants := range sr.plan.sizes {
		last := i == len(sr.plan.sizes)-1
		from := ty.count()
		began = time.Now()
		if err := ty.grow(ctx, tenants); err != nil {
			return err
		}
		sr.timed(fmt.Sprintf("creating tenants %d-%d (%d namespaces, RoleBindings, status)", from, tenants-1,
			(tenants-from)*namespacesPerTenant), began)
		if i == 0 {
			if ids.owner, err = ownerIdentity(c.CA, ty.tenant(0)); err != nil {
				return err
			}
			began = time.Now()
			if err := ty.createConfigMaps(ctx, ty.tenant(0)); err != nil {
				return err
			}
			sr.timed(fmt.Sprintf("creating %d ConfigMaps in the measured tenant", namespacesPerTenant*configMapsPerNS), began)
		}
		began = time.Now()
		if err := settle.wait(ctx, nodePools*nodesPerPool); err != nil {
			return err
		}
		sr.timed(fmt.Sprintf("waiting for kube-controller-manager to settle at %d namespaces", tenants*namespacesPerTenant), began)
		began = time.Now()
		if err := checkIndex(ctx, c, b.proxyURL, ty, []int{0, tenants - 1}); err != nil {
			return err
		}
		sr.timed("checking the proxy's tenant index", began)
		if last {
			break
		}
		if !scaleSelected("scale-sweep") {
			continue
		}
		began = time.Now()
		sweep := *b
		sweep.rounds = max(1, b.rounds/2)
		w := nsListWorkload(ty.tenant(0), ids, tenants, false)
		if err := checkParity(ctx, b, w, expectedNames(w.key, ty.tenant(0))); err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		res := sweep.measure(ctx, w)
		if res.err != nil {
			return fmt.Errorf("%s: %w", w.name, res.err)
		}
		rss, _ := residentBytes(proxyPID)
		sr.points = append(sr.points, sizePoint{namespaces: tenants * namespacesPerTenant, tenants: tenants,
			direct: summarize(res.direct), proxy: summarize(res.proxy), proxyRSS: rss, proxyMem: readGoMemory(ctx, proxy.MetricsURL)})
		sr.timed(fmt.Sprintf("measuring the owner's namespace list at %d namespaces", tenants*namespacesPerTenant), began)
	}

	tenants := ty.count()
	owner := ty.tenant(0)
	for _, w := range scaleWorkloads(owner, ids, tenants) {
		if !scaleSelected(w.key) {
			continue
		}
		began = time.Now()
		if err := checkParity(ctx, b, w, expectedNames(w.key, owner)); err != nil {
			sr.rows = append(sr.rows, row{res: &result{w: w, err: err, direct: &side{}, proxy: &side{}}})
			fmt.Fprintf(os.Stderr, "bench: %s FAILED: %v\n", w.name, err)
			continue
		}
		res := b.measure(ctx, w)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s FAILED: %v\n", w.name, res.err)
		}
		r := rowOf(res)
		sr.rows = append(sr.rows, r)
		if w.key == "scale-ns-json" && res.err == nil {
			rss, _ := residentBytes(proxyPID)
			sr.points = append(sr.points, sizePoint{namespaces: tenants * namespacesPerTenant, tenants: tenants,
				direct: r.direct, proxy: r.proxy, proxyRSS: rss, proxyMem: readGoMemory(ctx, proxy.MetricsURL), fromFull: true})
		}
		sr.timed(w.name, began)
	}
	sr.rssIdle, _ = residentBytes(proxyPID)
	sr.memIdle = readGoMemory(ctx, proxy.MetricsURL)
	if scaleSelected("scale-watch") {
		began = time.Now()
		sr.watch = runWatches(ctx, c, b, ty, ids, sr.plan.watches, proxyPID, func() { writeHeapProfile(ctx, proxy.MetricsURL) })
		sr.timed(fmt.Sprintf("%d watches on each side", sr.plan.watches), began)
	}
	sr.apiRSS, _ = residentBytes(c.PID("kube-apiserver"))
	return nil
}

const (
	tableAccept  = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	nsListPath   = "/api/v1/namespaces"
	nodeListPath = "/api/v1/nodes"
	scListPath   = "/apis/storage.k8s.io/v1/storageclasses"
	allCMPath    = "/api/v1/configmaps"
)

func selector(key, value string) string { return "?labelSelector=" + url.QueryEscape(key+"="+value) }

// nsListWorkload is the owner's `kubectl get ns` through the proxy against an administrator's list of the
// same namespaces by the tenant label.
func nsListWorkload(t *benchTenant, ids scaleIdentities, tenants int, table bool) workload {
	w := workload{
		key:     "scale-ns-json",
		name:    fmt.Sprintf("Owner's namespaces (10 of %d), JSON", tenants*namespacesPerTenant),
		path:    nsListPath,
		id:      ids.owner,
		clients: 1,
		direct:  &request{paths: []string{nsListPath + selector(testbed.CapsuleTenantLabel, t.name)}, id: ids.admin},
	}
	if table {
		w.key, w.accept = "scale-ns-table", tableAccept
		w.name = fmt.Sprintf("Owner's namespaces (10 of %d), Table", tenants*namespacesPerTenant)
	}
	return w
}

// scaleWorkloads are the filtered lists at the full fixture size. Direct, an administrator lists with the
// label selector that selects what the tenant allows; for -A, the owner itself lists each of its namespaces
// in turn, which is what it must do without the proxy and what the proxy does on its behalf.
func scaleWorkloads(t *benchTenant, ids scaleIdentities, tenants int) []workload {
	var perNamespace []string
	for _, ns := range t.namespaces {
		perNamespace = append(perNamespace, "/api/v1/namespaces/"+ns+"/configmaps")
	}
	return []workload{
		nsListWorkload(t, ids, tenants, false),
		nsListWorkload(t, ids, tenants, true),
		{key: "scale-nodes", name: fmt.Sprintf("Owner's nodes (%d of %d), Table", nodesPerPool, nodePools*nodesPerPool),
			path: nodeListPath, id: ids.owner, clients: 1, accept: tableAccept,
			direct: &request{paths: []string{nodeListPath + selector(poolLabel, t.pool)}, id: ids.admin}},
		{key: "scale-sc", name: fmt.Sprintf("Owner's storage classes (%d of %d), Table", classesPerGroup, classGroups*classesPerGroup),
			path: scListPath, id: ids.owner, clients: 1, accept: tableAccept,
			direct: &request{paths: []string{scListPath + selector(classGroupLabel, t.classGroup)}, id: ids.admin}},
		{key: "scale-all-cm", name: fmt.Sprintf("Owner's ConfigMaps -A (%d namespaces), JSON", len(t.namespaces)),
			path: allCMPath, id: ids.owner, clients: 1,
			direct: &request{paths: perNamespace, id: ids.owner}},
	}
}

// expectedNames is what the owner must see in a scale workload.
func expectedNames(key string, t *benchTenant) []string {
	var names []string
	switch key {
	case "scale-ns-json", "scale-ns-table":
		names = slices.Clone(t.namespaces)
	case "scale-nodes":
		for k := range nodesPerPool {
			names = append(names, fmt.Sprintf("node-%s-%02d", t.pool, k))
		}
	case "scale-sc":
		for k := range classesPerGroup {
			names = append(names, className(t.classGroup, k))
		}
	case "scale-all-cm":
		for _, ns := range t.namespaces {
			names = append(names, ns+"/kube-root-ca.crt")
			for k := range configMapsPerNS {
				names = append(names, fmt.Sprintf("%s/app-%02d", ns, k))
			}
		}
	}
	slices.Sort(names)
	return names
}

// checkParity fetches both sides of w once and fails unless each shows exactly want: a benchmark of a filter
// that lets too much or too little through would measure the wrong thing.
func checkParity(ctx context.Context, b *bench, w workload, want []string) error {
	d, p := w.sides()
	for _, s := range []struct {
		name string
		base string
		req  request
	}{{"direct", b.directURL, d}, {"proxy", b.proxyURL, p}} {
		cl, err := newClient(s.base, b.caPEM, s.req.id.cred)
		if err != nil {
			return err
		}
		var got []string
		for _, u := range urls(s.base, s.req.paths) {
			body, _, err := cl.fetch(ctx, u, w.accept, true)
			if err != nil {
				closeClients([]*client{cl})
				return fmt.Errorf("%s: %w", s.name, err)
			}
			names, err := listedNames(body)
			if err != nil {
				closeClients([]*client{cl})
				return fmt.Errorf("%s: %s: %w", s.name, u, err)
			}
			got = append(got, names...)
		}
		closeClients([]*client{cl})
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s answered %d objects %v, want %d %v", s.name, len(got), abbreviate(got), len(want), abbreviate(want))
		}
	}
	return nil
}

func abbreviate(names []string) []string {
	if len(names) > 6 {
		return append(slices.Clone(names[:6]), "...")
	}
	return names
}

// listedNames reads the [namespace/]names of a JSON list or Table.
func listedNames(body []byte) ([]string, error) {
	type objectMeta struct {
		Metadata struct{ Name, Namespace string } `json:"metadata"`
	}
	var list struct {
		Kind  string       `json:"kind"`
		Items []objectMeta `json:"items"`
		Rows  []struct {
			Object objectMeta `json:"object"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	objs := list.Items
	if list.Kind == "Table" {
		for _, r := range list.Rows {
			objs = append(objs, r.Object)
		}
	}
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		if o.Metadata.Namespace != "" {
			names = append(names, o.Metadata.Namespace+"/"+o.Metadata.Name)
		} else {
			names = append(names, o.Metadata.Name)
		}
	}
	return names, nil
}

// checkIndex waits until the owners of the given tenants see exactly their namespaces through the proxy,
// which proves the proxy's tenant index has picked up the fixture.
func checkIndex(ctx context.Context, c *testbed.Cluster, proxyURL string, ty *tenancy, which []int) error {
	for _, i := range which {
		t := ty.tenant(i)
		id, err := ownerIdentity(c.CA, t)
		if err != nil {
			return err
		}
		cl, err := newClient(proxyURL, c.CA.CertPEM, id.cred)
		if err != nil {
			return err
		}
		want := slices.Clone(t.namespaces)
		slices.Sort(want)
		var got []string
		var last error
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			var body []byte
			body, _, last = cl.fetch(ctx, proxyURL+nsListPath, "", true)
			if last != nil {
				return false, nil
			}
			got, last = listedNames(body)
			slices.Sort(got)
			return last == nil && slices.Equal(got, want), nil
		})
		closeClients([]*client{cl})
		if err != nil {
			return fmt.Errorf("the proxy's tenant index: %s sees %v, want %v (last error: %v): %w", t.owner, abbreviate(got), want, last, err)
		}
	}
	return nil
}

// scaleReport is the scale part of bench/results.md.
func scaleReport(sr *scaleResult) string {
	if sr == nil {
		return ""
	}
	var s strings.Builder
	fmt.Fprintf(&s, "\n## Scale (%s)\n\n", sr.plan.name)
	fmt.Fprintf(&s, "Fixture, written with an administrator's credentials exactly as Capsule v0.13.11 leaves it (the Capsule "+
		"controller does not run: at this size it needs most of an hour to reconcile): %d tenants, each with a User owner "+
		"(every %dth also a Group owner) allowed to list nodes and storage classes, %d namespaces each (label "+
		"capsule.clastix.io/tenant, ownerReference to the Tenant), the owners' admin RoleBinding in each namespace, and the "+
		"Tenant status (owners, namespaces, spaces, classes, conditions) written through the status subresource; %d nodes "+
		"in %d pools (a tenant's nodeSelector selects one pool); %d storage classes in %d groups of %d (a tenant allows "+
		"2 by name, 3 by regular expression and 5 by labels: exactly its group). kube-controller-manager runs and adds a "+
		"ServiceAccount and a ConfigMap to every namespace and marks the kubelet-less nodes unreachable; every "+
		"measurement starts after it has settled (all of that done and no write but the bench's for %s, read from "+
		"the API server's audit log).\n\n",
		sr.plan.sizes[len(sr.plan.sizes)-1], groupOwnerEvery, namespacesPerTenant, nodePools*nodesPerPool, nodePools,
		classGroups*classesPerGroup, classGroups, classesPerGroup, quietWindow)
	if sr.err != nil {
		fmt.Fprintf(&s, "**The scale part failed:** %v\n\n", sr.err)
	}
	fmt.Fprintf(&s, "### Phases\n\n")
	var cells [][]string
	for _, p := range sr.phases {
		cells = append(cells, []string{p.what, fmt.Sprintf("%.1f", p.took.Seconds())})
	}
	s.WriteString(markdownTable([]string{"phase", "seconds"}, cells))

	if len(sr.points) > 0 {
		fmt.Fprintf(&s, "\n### Owner's namespace list against cluster size\n\n"+
			"The owner of one tenant (10 namespaces at every size) lists namespaces through the proxy; directly, an "+
			"administrator lists them with labelSelector=capsule.clastix.io/tenant=<tenant>. JSON, one client, "+
			"alternating rounds (half as many at the smaller sizes).\n\n")
		cells = nil
		for _, p := range sr.points {
			cells = append(cells, []string{fmt.Sprint(p.namespaces), fmt.Sprint(p.tenants),
				fmtMs(p.direct.p50), fmtMs(p.direct.p99), fmtMs(p.proxy.p50), fmtMs(p.proxy.p99),
				fmtX(ratio(p.proxy.p50, p.direct.p50)), fmtX(ratio(p.proxy.p99, p.direct.p99)), fmt.Sprintf("%.1f", mib(p.proxyRSS)),
				fmt.Sprintf("%.1f", p.proxyMem.heapInuse/(1<<20))})
		}
		s.WriteString(markdownTable([]string{"namespaces", "tenants", "direct p50 ms", "direct p99 ms", "proxy p50 ms",
			"proxy p99 ms", "p50 ratio", "p99 ratio", "proxy RSS MiB", "proxy Go heap in use MiB"}, cells))
		s.WriteString("\nMemory is read right after that size's measurement (RSS from /proc, heap from the proxy's /metrics).\n")
		switch {
		case sr.chartError != nil:
			fmt.Fprintf(&s, "\nChart: %v\n", sr.chartError)
		case sr.chartPath != "":
			fmt.Fprintf(&s, "\n![latency against cluster size](%s)\n", chartLink(sr.chartPath))
		}
	}
	if len(sr.rows) > 0 {
		fmt.Fprintf(&s, "\n### Filtered lists at %d namespaces\n\n%s\n", sr.plan.sizes[len(sr.plan.sizes)-1]*namespacesPerTenant, resultsTable(sr.rows))
		fmt.Fprintf(&s, "Direct side: the administrator (system:masters) with the equivalent label selector (tenant label, "+
			"node pool, storage-class group); for -A, the owner itself listing ConfigMaps in each of its namespaces one after "+
			"the other (one sample is the sum); the proxy, as the owner, lists the first namespace and then the others 4 at a time. Each side's answer was "+
			"checked once to hold exactly the owner's objects before measuring.\n")
	}
	if sr.rssIdle > 0 {
		fmt.Fprintf(&s, "\nProxy RSS at the full size after the filtered lists, no watches open: %.1f MiB (%s).\n", mib(sr.rssIdle), sr.memIdle)
	}
	if sr.watch != nil {
		s.WriteString(watchReport(sr.watch))
	}
	if sr.apiRSS > 0 {
		fmt.Fprintf(&s, "kube-apiserver RSS at the end of the scale part: %.1f MiB.\n", mib(sr.apiRSS))
	}
	return s.String()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// scaleTargets are the issue's targets for filtered lists, growth and memory.
func scaleTargets(sr *scaleResult) []target {
	if sr == nil {
		return nil
	}
	var out []target
	for _, r := range sr.rows {
		if !r.ok() || (r.res.w.key != "scale-ns-json" && r.res.w.key != "scale-ns-table") {
			continue
		}
		out = append(out, target{pass: r.p50x() <= 1.2, what: "owner's namespace list <= 1.2x the equivalent direct list: " + r.res.w.key,
			detail: fmt.Sprintf("p50 %s vs %s ms (%s), p99 %s", fmtMs(r.proxy.p50), fmtMs(r.direct.p50), fmtX(r.p50x()), fmtX(r.p99x()))})
	}
	if n := len(sr.points); n > 1 {
		first, last := sr.points[0], sr.points[n-1]
		x := ratio(last.proxy.p50, first.proxy.p50)
		out = append(out, target{pass: x <= 1.2,
			what: fmt.Sprintf("owner's namespace list flat as the cluster grows (%d -> %d namespaces): proxy p50 grows <= 1.2x", first.namespaces, last.namespaces),
			detail: fmt.Sprintf("%s -> %s ms (%s); directly %s -> %s ms (%s)", fmtMs(first.proxy.p50), fmtMs(last.proxy.p50), fmtX(x),
				fmtMs(first.direct.p50), fmtMs(last.direct.p50), fmtX(ratio(last.direct.p50, first.direct.p50)))})
	}
	if w := sr.watch; w != nil && w.err == nil {
		ns := sr.plan.sizes[len(sr.plan.sizes)-1] * namespacesPerTenant
		out = append(out, target{pass: mib(w.rssWith) <= 150,
			what: fmt.Sprintf("proxy resident memory <= 150 MiB at %d namespaces with %d watches open", ns, w.watches),
			detail: fmt.Sprintf("%.1f MiB (%.1f MiB before the watches), %.1f MiB of it file-backed; %s",
				mib(w.rssWith), mib(w.rssBefore), mib(w.fileWith), w.memWith)})
	}
	return out
}

// failures are the scale part's failed workloads, for the report and the exit status.
func (sr *scaleResult) failures() []error {
	if sr == nil {
		return nil
	}
	var out []error
	if sr.err != nil {
		out = append(out, fmt.Errorf("scale: %w", sr.err))
	}
	for _, r := range sr.rows {
		if r.res.err != nil {
			out = append(out, fmt.Errorf("%s: %w", r.res.w.name, r.res.err))
		}
	}
	if sr.watch != nil && sr.watch.err != nil {
		out = append(out, fmt.Errorf("watches: %w", sr.watch.err))
	}
	if sr.chartError != nil {
		out = append(out, sr.chartError)
	}
	return out
}
