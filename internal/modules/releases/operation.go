package releases

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/kube"
	ri "helm.sh/helm/v4/pkg/release"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/apprepositories"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/releases/permissions"
)

// maxChecks bounds the SubjectAccessReviews one operation may cause (one per verb, resource and namespace).
const maxChecks = 1000

// operation is one API call: who asks, about which release, with clients acting as them.
type operation struct {
	caller    user.Info
	config    *rest.Config // the proxy's configuration impersonating the caller
	namespace string
	release   string
	getter    *clientGetter
}

// handler does one API call and returns the status and data of a success, or an error (an *apiError says
// which status).
type handler func(ctx context.Context, op *operation, w http.ResponseWriter, r *http.Request) (int, any, error)

// serve runs h for the route's namespace and release, bounded by --helm-operation-timeout, writes its
// answer and counts it.
func (m *Module) serve(actionName string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), m.opts.OperationTimeout)
		defer cancel()
		code, data, err := m.prepareAndRun(ctx, h, w, r)
		if err != nil {
			var api *apiError
			if !errors.As(err, &api) {
				api = newError(http.StatusInternalServerError, "%v", err)
			}
			code = api.Code
			writeError(w, api)
		} else {
			writeData(w, code, data)
		}
		m.metrics.observe(actionName, code, start)
	}
}

func (m *Module) prepareAndRun(ctx context.Context, h handler, w http.ResponseWriter, r *http.Request) (int, any, error) {
	caller := callerFrom(ctx)
	if caller == nil || caller.GetName() == "" {
		return 0, nil, newError(http.StatusUnauthorized, "Unauthorized")
	}
	vars := mux.Vars(r)
	op := &operation{caller: caller, namespace: vars["namespace"], release: vars["release"],
		config: apprepositories.CallerConfig(m.base, caller, w.Header().Get("Audit-Id"))}
	if op.namespace != "" {
		if errs := validation.IsDNS1123Label(op.namespace); len(errs) > 0 {
			return 0, nil, newError(http.StatusBadRequest, "invalid namespace %q: %s", op.namespace, errs[0])
		}
	}
	if op.release != "" {
		if err := validateReleaseName(op.release); err != nil {
			return 0, nil, err
		}
	}
	op.getter = newClientGetter(op.config, op.namespace)
	return h(ctx, op, w, r)
}

func validateReleaseName(name string) error {
	if err := chartutil.ValidateReleaseName(name); err != nil {
		return newError(http.StatusBadRequest, "invalid release name %q: %v", name, err)
	}
	return nil
}

// authorize checks steps as the caller unless --disable-auth; a missing permission is a 403 listing them all.
func (m *Module) authorize(ctx context.Context, op *operation, definitions []permissions.Object, steps ...permissions.Step) error {
	if m.opts.DisableAuth {
		return nil
	}
	mapper, err := op.getter.ToRESTMapper()
	if err != nil {
		return newError(http.StatusInternalServerError, "discovery: %v", err)
	}
	checks, err := permissions.Plan(mapper, op.namespace, definitions, steps...)
	if err != nil {
		return newError(http.StatusUnprocessableEntity, "the release cannot be checked: %v", err)
	}
	if len(checks) > maxChecks {
		return newError(http.StatusUnprocessableEntity, "the release needs %d permission checks, more than the %d allowed", len(checks), maxChecks)
	}
	missing, err := m.reviewer.Missing(ctx, op.caller, checks)
	if err != nil {
		return newError(http.StatusInternalServerError, "authorisation check failed: %v", err)
	}
	if len(missing) > 0 {
		return forbidden(permissions.Group(missing))
	}
	return nil
}

// authorizePlan checks what plan says the action applies (its steps, and CRDs defining kinds the cluster
// does not serve yet), unless --disable-auth; plan runs only when checking. A plan that cannot be made is a
// failed operation: what cannot be read cannot be checked.
func (m *Module) authorizePlan(ctx context.Context, op *operation, plan func() ([]permissions.Object, []permissions.Step, error)) error {
	if m.opts.DisableAuth {
		return nil
	}
	definitions, steps, err := plan()
	if err != nil {
		var api *apiError
		if errors.As(err, &api) {
			return api
		}
		return newError(http.StatusUnprocessableEntity, "reading what the release applies: %v", err)
	}
	return m.authorize(ctx, op, definitions, steps...)
}

// authorizeStorage checks only the release records' part of an action, before the release is read.
func (m *Module) authorizeStorage(ctx context.Context, op *operation, actionName string) error {
	step, err := permissions.Storage(op.namespace, actionName)
	if err != nil {
		return err
	}
	return m.authorize(ctx, op, nil, step)
}

// lock serialises operations on op's release.
func (m *Module) lock(ctx context.Context, op *operation) (func(), error) {
	unlock, err := m.locks.Lock(ctx, op.namespace+"/"+op.release)
	if err != nil {
		return nil, newError(http.StatusConflict, "another operation on release %s is still running", op.release)
	}
	return unlock, nil
}

// lockRelease serialises operations on op's release and reads its latest revision as the caller; the
// returned function unlocks.
func (m *Module) lockRelease(ctx context.Context, op *operation) (*action.Configuration, *release.Release, func(), error) {
	unlock, err := m.lock(ctx, op)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := actionConfig(op.getter, op.namespace)
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	current, err := lastRelease(cfg, op)
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	return cfg, current, unlock, nil
}

// chartFor fetches the request's chart from its repository (an AppRepository is read as the caller).
func (m *Module) chartFor(ctx context.Context, op *operation, req *releaseRequest) (*chart.Chart, error) {
	repo := helmrepo.Repository{URL: req.RepoURL}
	if req.AppRepositoryResourceName != "" {
		if m.resolveRepo == nil {
			return nil, newError(http.StatusBadRequest, "AppRepositories are not available on this proxy; use repoUrl")
		}
		ns := req.AppRepositoryResourceNamespace
		if ns == "" {
			ns = op.namespace
		}
		var err error
		repo, err = m.resolveRepo(ctx, op.config, ns, req.AppRepositoryResourceName)
		if err != nil {
			// Absent and not readable by the caller answer alike (no oracle).
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				return nil, newError(http.StatusNotFound, "AppRepository %s/%s not found", ns, req.AppRepositoryResourceName)
			}
			return nil, newError(http.StatusUnprocessableEntity, "AppRepository %s/%s: %v", ns, req.AppRepositoryResourceName, err)
		}
	}
	ch, err := m.charts.Chart(ctx, repo, req.ChartName, req.Version)
	switch {
	case err == nil:
		return ch, nil
	case errors.Is(err, helmrepo.ErrNotFound):
		return nil, newError(http.StatusNotFound, "chart %s version %q not found", req.ChartName, req.Version)
	case errors.Is(err, helmrepo.ErrForbiddenAddress), errors.Is(err, helmrepo.ErrInvalidURL):
		return nil, newError(http.StatusBadRequest, "chart repository: %v", err)
	default:
		return nil, newError(http.StatusUnprocessableEntity, "fetching chart %s: %v", req.ChartName, err)
	}
}

// renderOffline renders ch as an install (or, with isUpgrade, an upgrade) of op's release without touching
// the cluster: Helm's client-only dry run, with the capabilities the caller's discovery reports. `lookup`
// finds nothing here; the real action renders again as the caller, and the API server judges what it sends.
func renderOffline(ctx context.Context, op *operation, ch *chart.Chart, values map[string]any, isUpgrade bool) (permissions.Rendered, error) {
	kubeVersion, apiVersions, err := capabilities(ctx, op.getter)
	if err != nil {
		return permissions.Rendered{}, newError(http.StatusInternalServerError, "discovery: %v", err)
	}
	inst := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName, inst.Namespace = op.release, op.namespace
	inst.KubeVersion, inst.APIVersions = kubeVersion, apiVersions
	inst.IsUpgrade = isUpgrade
	inst.Replace = true // a dry run never reads the history anyway
	out, err := inst.RunWithContext(ctx, ch, copyValues(values))
	if err != nil {
		return permissions.Rendered{}, newError(http.StatusUnprocessableEntity, "rendering chart %s: %v", ch.Name(), err)
	}
	rel, err := v1Release(out)
	if err != nil {
		return permissions.Rendered{}, err
	}
	return renderedOf(rel), nil
}

// chartCRDs are the objects of the chart's (and its subcharts') crds/ directories.
func chartCRDs(ch *chart.Chart) ([]permissions.Object, error) {
	var files [][]byte
	for _, crd := range ch.CRDObjects() {
		if crd.File != nil {
			files = append(files, crd.File.Data)
		}
	}
	objects, err := permissions.ParseAll(files...)
	if err != nil {
		return nil, newError(http.StatusUnprocessableEntity, "chart CRDs: %v", err)
	}
	return objects, nil
}

func renderedOf(r *release.Release) permissions.Rendered {
	return permissions.Rendered{Manifest: r.Manifest, Hooks: r.Hooks}
}

// lastRelease reads the release's latest revision as the caller. Absent and unreadable answer alike.
func lastRelease(cfg *action.Configuration, op *operation) (*release.Release, error) {
	return releaseRevision(cfg, op, 0)
}

func releaseRevision(cfg *action.Configuration, op *operation, revision int) (*release.Release, error) {
	var out ri.Releaser
	var err error
	if revision <= 0 {
		out, err = cfg.Releases.Last(op.release)
	} else {
		out, err = cfg.Releases.Get(op.release, revision)
	}
	if err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) || apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			if revision > 0 {
				return nil, newError(http.StatusNotFound, "release %s revision %d not found", op.release, revision)
			}
			return nil, newError(http.StatusNotFound, "release %s not found", op.release)
		}
		return nil, clusterError("reading release "+op.release, err)
	}
	return v1Release(out)
}

func v1Release(r ri.Releaser) (*release.Release, error) {
	switch rel := r.(type) {
	case *release.Release:
		return rel, nil
	case release.Release:
		return &rel, nil
	default:
		return nil, newError(http.StatusInternalServerError, "unsupported release record %T", r)
	}
}

// cleanUpFailedInstall removes what a failed install left: the applied objects and the release records
// (Helm's uninstall as the caller, without running delete hooks for a release that never ran), and the hook
// objects that did run.
func (m *Module) cleanUpFailedInstall(cfg *action.Configuration, op *operation, rel *release.Release) error {
	if _, err := cfg.Releases.History(op.release); err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil // nothing was recorded, so nothing was applied
		}
		return err
	}
	un := action.NewUninstall(cfg)
	un.DisableHooks = true
	un.WaitStrategy = kube.HookOnlyStrategy
	un.Timeout = m.opts.Timeout
	var errs []error
	if _, err := un.Run(op.release); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		errs = append(errs, err)
	}
	if rel != nil {
		for _, h := range rel.Hooks {
			resources, err := cfg.KubeClient.Build(strings.NewReader(h.Manifest), false)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if _, delErrs := cfg.KubeClient.Delete(resources, metav1.DeletePropagationBackground); len(delErrs) > 0 {
				for _, e := range delErrs {
					if !apierrors.IsNotFound(e) && !errors.Is(e, kube.ErrNoObjectsVisited) {
						errs = append(errs, e)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
