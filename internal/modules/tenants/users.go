package tenants

import (
	"maps"
	"slices"
	"strings"

	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
)

// kubeSystemServiceAccounts are never Capsule users, whatever the configuration says (Capsule issue 234).
const kubeSystemServiceAccounts = serviceaccount.ServiceAccountGroupPrefix + "kube-system"

// capsuleUsers is who the CapsuleConfiguration declares to be Capsule users.
type capsuleUsers struct {
	users           map[string]struct{} // kind User
	serviceAccounts map[string]struct{} // kind ServiceAccount, full user names
	groups          map[string]struct{}
	ignoredGroups   map[string]struct{}
}

func newCapsuleUsers() *capsuleUsers {
	return &capsuleUsers{
		users:           map[string]struct{}{},
		serviceAccounts: map[string]struct{}{},
		groups:          map[string]struct{}{},
		ignoredGroups:   map[string]struct{}{},
	}
}

func (c *capsuleUsers) add(s subject) {
	if s.Name == "" {
		return
	}
	switch s.Kind {
	case groupKind:
		c.groups[s.Name] = struct{}{}
	case serviceAccountKind:
		c.serviceAccounts[s.Name] = struct{}{}
	case userKind:
		// Capsule files service-account names given as plain user names under ServiceAccount.
		if _, _, err := serviceaccount.SplitUsername(s.Name); err == nil {
			c.serviceAccounts[s.Name] = struct{}{}
		} else {
			c.users[s.Name] = struct{}{}
		}
	}
}

// includes mirrors Capsule's IsCapsuleUser: listed service accounts first, then groups (unless the caller
// also has an ignored group), then user names. Capsule also counts any service account of a tenant
// namespace; the proxy does not, so such accounts keep plain RBAC.
func (c *capsuleUsers) includes(u user.Info) bool {
	if c == nil {
		return false
	}
	groups := u.GetGroups()
	if slices.Contains(groups, kubeSystemServiceAccounts) {
		return false
	}
	name := u.GetName()
	if slices.Contains(groups, serviceaccount.AllServiceAccountsGroup) && strings.HasPrefix(name, serviceaccount.ServiceAccountUsernamePrefix) {
		if _, ok := c.serviceAccounts[name]; ok {
			return true
		}
	}
	for _, g := range groups {
		if _, ok := c.groups[g]; ok {
			for _, ignored := range groups {
				if _, ok := c.ignoredGroups[ignored]; ok {
					return false
				}
			}
			return true
		}
	}
	_, ok := c.users[name]
	return ok
}

func (c *capsuleUsers) equal(o *capsuleUsers) bool {
	if c == nil || o == nil {
		return c == o
	}
	return maps.Equal(c.users, o.users) && maps.Equal(c.serviceAccounts, o.serviceAccounts) &&
		maps.Equal(c.groups, o.groups) && maps.Equal(c.ignoredGroups, o.ignoredGroups)
}
