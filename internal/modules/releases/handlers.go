package releases

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/releases/permissions"
)

// copyValues gives each Helm run its own values: Helm may coalesce into the map it is given.
func copyValues(v map[string]any) map[string]any { return runtime.DeepCopyJSON(v) }

// install: POST /v1/namespaces/{namespace}/releases.
func (m *Module) install(w http.ResponseWriter, r *http.Request) {
	m.serve("install", func(ctx context.Context, op *operation, w http.ResponseWriter, r *http.Request) (int, any, error) {
		req, values, err := decodeRequest(r, w)
		if err != nil {
			return 0, nil, err
		}
		op.release = req.ReleaseName
		if err := validateReleaseName(op.release); err != nil {
			return 0, nil, err
		}
		ch, err := m.chartFor(ctx, op, req)
		if err != nil {
			return 0, nil, err
		}
		unlock, err := m.lock(ctx, op)
		if err != nil {
			return 0, nil, err
		}
		defer unlock()
		err = m.authorizePlan(ctx, op, func() ([]permissions.Object, []permissions.Step, error) {
			rendered, err := renderOffline(ctx, op, ch, values, false)
			if err != nil {
				return nil, nil, err
			}
			crds, err := chartCRDs(ch)
			if err != nil {
				return nil, nil, err
			}
			steps, err := permissions.Install(op.namespace, rendered, crds)
			return crds, steps, err
		})
		if err != nil {
			return 0, nil, err
		}
		cfg, err := actionConfig(op.getter, op.namespace)
		if err != nil {
			return 0, nil, err
		}
		switch history, err := cfg.Releases.History(op.release); {
		case err == nil && len(history) > 0:
			return 0, nil, newError(http.StatusConflict, "release %s already exists in namespace %s", op.release, op.namespace)
		case err != nil && !errors.Is(err, driver.ErrReleaseNotFound):
			return 0, nil, clusterError("reading release "+op.release, err)
		}
		inst := action.NewInstall(cfg)
		inst.ReleaseName, inst.Namespace = op.release, op.namespace
		inst.WaitStrategy = kube.HookOnlyStrategy
		inst.Timeout = m.opts.Timeout
		out, runErr := inst.RunWithContext(ctx, ch, copyValues(values))
		var rel *release.Release
		if out != nil {
			rel, _ = v1Release(out)
		}
		if runErr != nil {
			if err := m.cleanUpFailedInstall(cfg, op, rel); err != nil {
				return 0, nil, newError(http.StatusUnprocessableEntity, "install failed: %v; removing what it left failed too: %v", runErr, err)
			}
			return 0, nil, newError(http.StatusUnprocessableEntity, "install failed and was undone: %v", runErr)
		}
		return http.StatusCreated, detailOf(rel), nil
	})(w, r)
}

// upgradeOrRollback: PUT /v1/namespaces/{namespace}/releases/{release}, ?action=rollback&revision=N rolls back.
func (m *Module) upgradeOrRollback(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	switch query.Get("action") {
	case "", "upgrade":
		m.serve("upgrade", m.upgrade)(w, r)
	case "rollback":
		m.serve("rollback", m.rollback)(w, r)
	default:
		writeError(w, newError(http.StatusBadRequest, "unknown action %q (upgrade or rollback)", query.Get("action")))
	}
}

func (m *Module) upgrade(ctx context.Context, op *operation, w http.ResponseWriter, r *http.Request) (int, any, error) {
	req, values, err := decodeRequest(r, w)
	if err != nil {
		return 0, nil, err
	}
	if req.ReleaseName != op.release {
		return 0, nil, newError(http.StatusBadRequest, "releaseName %q differs from the release %q of the path", req.ReleaseName, op.release)
	}
	if err := m.authorizeStorage(ctx, op, "upgrade"); err != nil {
		return 0, nil, err
	}
	ch, err := m.chartFor(ctx, op, req)
	if err != nil {
		return 0, nil, err
	}
	cfg, current, unlock, err := m.lockRelease(ctx, op)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	err = m.authorizePlan(ctx, op, func() ([]permissions.Object, []permissions.Step, error) {
		next, err := renderOffline(ctx, op, ch, values, true)
		if err != nil {
			return nil, nil, err
		}
		steps, err := permissions.Upgrade(op.namespace, renderedOf(current), next)
		return nil, steps, err
	})
	if err != nil {
		return 0, nil, err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = op.namespace
	up.WaitStrategy = kube.HookOnlyStrategy
	up.Timeout = m.opts.Timeout
	up.ResetValues = true // the body's values are the release's values, as the pre-check rendered them
	out, err := up.RunWithContext(ctx, op.release, ch, copyValues(values))
	if err != nil {
		return 0, nil, clusterError("upgrade failed", err)
	}
	rel, err := v1Release(out)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, detailOf(rel), nil
}

func (m *Module) rollback(ctx context.Context, op *operation, _ http.ResponseWriter, r *http.Request) (int, any, error) {
	revision, err := strconv.Atoi(r.URL.Query().Get("revision"))
	if err != nil || revision <= 0 {
		return 0, nil, newError(http.StatusBadRequest, "rollback needs a positive revision")
	}
	if err := m.authorizeStorage(ctx, op, "rollback"); err != nil {
		return 0, nil, err
	}
	cfg, current, unlock, err := m.lockRelease(ctx, op)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	target, err := releaseRevision(cfg, op, revision)
	if err != nil {
		return 0, nil, err
	}
	err = m.authorizePlan(ctx, op, func() ([]permissions.Object, []permissions.Step, error) {
		steps, err := permissions.Rollback(op.namespace, renderedOf(current), renderedOf(target))
		return nil, steps, err
	})
	if err != nil {
		return 0, nil, err
	}
	rb := action.NewRollback(cfg)
	rb.Version = revision
	rb.WaitStrategy = kube.HookOnlyStrategy
	rb.Timeout = m.opts.Timeout
	if err := rb.Run(op.release); err != nil {
		return 0, nil, clusterError("rollback failed", err)
	}
	rel, err := lastRelease(cfg, op)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, detailOf(rel), nil
}

// uninstall: DELETE /v1/namespaces/{namespace}/releases/{release}; ?purge=true also drops the history.
func (m *Module) uninstall(w http.ResponseWriter, r *http.Request) {
	m.serve("uninstall", func(ctx context.Context, op *operation, _ http.ResponseWriter, r *http.Request) (int, any, error) {
		purge, err := boolParam(r, "purge")
		if err != nil {
			return 0, nil, err
		}
		storageAction := "uninstall-keep-history"
		if purge {
			storageAction = "uninstall"
		}
		if err := m.authorizeStorage(ctx, op, storageAction); err != nil {
			return 0, nil, err
		}
		cfg, current, unlock, err := m.lockRelease(ctx, op)
		if err != nil {
			return 0, nil, err
		}
		defer unlock()
		err = m.authorizePlan(ctx, op, func() ([]permissions.Object, []permissions.Step, error) {
			steps, err := permissions.Uninstall(op.namespace, renderedOf(current), !purge)
			return nil, steps, err
		})
		if err != nil {
			return 0, nil, err
		}
		un := action.NewUninstall(cfg)
		un.KeepHistory = !purge
		un.WaitStrategy = kube.HookOnlyStrategy
		un.Timeout = m.opts.Timeout
		res, err := un.Run(op.release)
		if err != nil {
			if errors.Is(err, driver.ErrReleaseNotFound) {
				return 0, nil, newError(http.StatusNotFound, "release %s not found", op.release)
			}
			return 0, nil, clusterError("uninstall failed", err)
		}
		out := summarize(current)
		if res != nil && res.Release != nil {
			if rel, err := v1Release(res.Release); err == nil {
				out = summarize(rel)
			}
		}
		return http.StatusOK, out, nil
	})(w, r)
}

// get: GET /v1/namespaces/{namespace}/releases/{release}: the latest revision, read as the caller.
func (m *Module) get(w http.ResponseWriter, r *http.Request) {
	m.serve("get", func(ctx context.Context, op *operation, _ http.ResponseWriter, _ *http.Request) (int, any, error) {
		cfg, err := actionConfig(op.getter, op.namespace)
		if err != nil {
			return 0, nil, err
		}
		rel, err := lastRelease(cfg, op)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, detailOf(rel), nil
	})(w, r)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, newError(http.StatusBadRequest, "%s must be true or false", name)
	}
	return b, nil
}

// sortReleases orders by namespace, then name.
func sortReleases(s []summary) {
	slices.SortFunc(s, func(a, b summary) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}
