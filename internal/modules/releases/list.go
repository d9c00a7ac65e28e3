package releases

import (
	"context"
	"net/http"

	"helm.sh/helm/v4/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// listAll: GET /v1/releases. A Capsule tenant owner gets the releases of their tenants' namespaces, each
// listed as them; anyone else what a cluster-wide list as them returns. Namespaces the caller may not list
// Secrets in contribute nothing. At most --list-max releases.
func (m *Module) listAll(w http.ResponseWriter, r *http.Request) {
	m.serve("list", func(ctx context.Context, op *operation, _ http.ResponseWriter, _ *http.Request) (int, any, error) {
		if m.index != nil && m.index.Synced() && m.index.CapsuleUser(op.caller) {
			visible, _ := m.index.Namespaces(op.caller)
			out := []summary{}
			for _, ns := range visible {
				if len(out) >= m.opts.ListMax || ctx.Err() != nil {
					break
				}
				found, err := m.listIn(op, ns.Name, m.opts.ListMax-len(out))
				if err != nil {
					return 0, nil, err
				}
				out = append(out, found...)
			}
			sortReleases(out)
			return http.StatusOK, out, nil
		}
		out, err := m.listIn(op, "", m.opts.ListMax)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, out, nil
	})(w, r)
}

// listNamespace: GET /v1/namespaces/{namespace}/releases.
func (m *Module) listNamespace(w http.ResponseWriter, r *http.Request) {
	m.serve("list", func(ctx context.Context, op *operation, _ http.ResponseWriter, _ *http.Request) (int, any, error) {
		out, err := m.listIn(op, op.namespace, m.opts.ListMax)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, out, nil
	})(w, r)
}

// listIn lists the latest revision of each release in namespace ("" = every namespace) as the caller, at
// most limit. A refused list is an empty one: it looks like a namespace without releases.
func (m *Module) listIn(op *operation, namespace string, limit int) ([]summary, error) {
	cfg, err := actionConfig(newClientGetter(op.config, namespace), namespace)
	if err != nil {
		return nil, err
	}
	list := action.NewList(cfg)
	list.AllNamespaces = namespace == ""
	list.Limit = limit
	found, err := list.Run()
	if err != nil {
		if apierrors.IsForbidden(err) {
			return []summary{}, nil
		}
		return nil, clusterError("listing releases", err)
	}
	out := make([]summary, 0, len(found))
	for _, f := range found {
		rel, err := v1Release(f)
		if err != nil {
			return nil, err
		}
		out = append(out, summarize(rel))
	}
	sortReleases(out)
	return out, nil
}
