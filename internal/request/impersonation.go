package request

import (
	"slices"

	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
)

// ImpersonationGroups are the groups to send upstream in Impersonate-Group for u: all of them, except for a
// ServiceAccount whose groups are exactly those the API server's impersonation sets when none are asked
// for (serviceaccount.MakeGroupNames of its namespace, then system:authenticated, which it adds when
// missing); then none. Leaving those to the API server means the proxy needs no right to impersonate groups
// in legacy impersonation, which it uses only for ServiceAccounts: users are impersonated in constrained
// mode user-info, which refuses system:masters (see the chart's ClusterRole).
func ImpersonationGroups(u user.Info) []string {
	groups := u.GetGroups()
	namespace, _, err := serviceaccount.SplitUsername(u.GetName())
	if err != nil {
		return groups
	}
	derived := serviceaccount.MakeGroupNames(namespace)
	own := groups
	if len(own) == len(derived)+1 && own[len(derived)] == user.AllAuthenticated {
		own = own[:len(derived)]
	}
	if slices.Equal(own, derived) {
		return nil
	}
	return groups
}
