package allnamespaces

import (
	"fmt"
	"slices"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// membershipSource follows which namespaces a caller's tenants have, for as long as a watch is open.
type membershipSource interface {
	Follow(u user.Info) (membership, error)
}

// membership is one caller's namespaces, followed.
type membership interface {
	// Changed has a value when the namespaces may have changed.
	Changed() <-chan struct{}
	// Namespaces are the caller's namespaces now, sorted; ok is false when the caller is no longer a
	// Capsule user.
	Namespaces() (names []string, ok bool)
	Stop()
}

// indexMembership follows the tenant index.
type indexMembership struct{ index *tenants.Index }

func (m indexMembership) Follow(u user.Info) (membership, error) {
	f, _, err := m.index.Follow(u, nil)
	if err != nil {
		return nil, fmt.Errorf("following the caller's namespaces: %w", err)
	}
	return followed{f}, nil
}

type followed struct{ f *tenants.Follower }

func (m followed) Changed() <-chan struct{} { return m.f.Changed() }

func (m followed) Namespaces() ([]string, bool) {
	_, _, _ = m.f.Take() // only the set matters here; Take clears what the follower has pending
	if !m.f.CapsuleUser() {
		return nil, false
	}
	visible := m.f.Visible()
	names := make([]string, 0, len(visible))
	for _, ns := range visible {
		names = append(names, ns.Name)
	}
	slices.Sort(names)
	return names, true
}

func (m followed) Stop() { m.f.Stop() }
