package clusterscoped

import (
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// ServesAccess answers a SelfSubjectAccessReview the way Intercept serves the request it describes
// (selfreviews.AccessReviewer): reads for owners granted List, update and patch for owners granted Update,
// delete for owners granted Delete (when granted writes are enabled). With a name, the object must be in
// the caller's allowed set (as the cache has it). Anything the module would forward as the caller
// (subresources, other verbs, selectors in the review, callers without the grant) is not answered here,
// so the API server, which would judge the forwarded request, also judges the review.
func (m *Module) ServesAccess(u user.Info, attrs *authorizationv1.ResourceAttributes) bool {
	if attrs == nil || attrs.Subresource != "" || attrs.FieldSelector != nil || attrs.LabelSelector != nil || !m.synced() {
		return false
	}
	// attrs.Namespace is not checked: these resources are cluster-scoped, and kubectl fills in its current
	// namespace anyway.
	var s *served
	for _, candidate := range m.resources {
		gvr := candidate.resource.Resource
		if attrs.Group == gvr.Group && attrs.Resource == gvr.Resource &&
			(attrs.Version == "" || attrs.Version == "*" || attrs.Version == gvr.Version) {
			s = candidate
			break
		}
	}
	if s == nil || !m.index.CapsuleUser(u) {
		return false
	}
	var op tenants.Operation
	switch attrs.Verb {
	case "get", "list", "watch":
		op = tenants.List
	case "update", "patch":
		op = tenants.Update
	case "delete":
		op = tenants.Delete
	default:
		return false
	}
	if op != tenants.List && (m.upstream == nil || !writable(s.resource)) {
		return false
	}
	selections := m.index.Selections(u, s.resource.Grant, op)
	if len(selections) == 0 {
		return false
	}
	if attrs.Name == "" {
		return true
	}
	item, exists, err := s.informer.GetStore().GetByKey(attrs.Name)
	obj, ok := item.(runtime.Object)
	if err != nil || !exists || !ok {
		return false
	}
	for _, sel := range selections {
		if sel.Selects(obj) {
			return true
		}
	}
	return false
}
