package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// The helm workloads' tenant: one namespace, owned by a User with a client certificate. It is not one of
// the scale fixture's tenants (t0000...), so the scale part's checks and counts do not include it.
const (
	helmTenantName = "helm-bench"
	helmNamespace  = "helm-bench-releases"
	helmOwnerName  = "owner-helm-bench"
)

// setUpHelmOwner writes the tenant as Capsule would (see tenancy.createTenant) and waits until RBAC lets
// its owner read release records (Secrets) in the namespace directly.
func setUpHelmOwner(ctx context.Context, c *testbed.Cluster) (identity, error) {
	ty, err := newTenancy(c)
	if err != nil {
		return identity{}, err
	}
	t := &benchTenant{name: helmTenantName, owner: helmOwnerName, namespaces: []string{helmNamespace},
		pool: "pool-helm", classGroup: "helm"}
	if err := ty.createTenant(ctx, t); err != nil {
		return identity{}, err
	}
	owner, err := ownerIdentity(c.CA, t)
	if err != nil {
		return identity{}, err
	}
	cs, err := kubernetes.NewForConfig(restConfig(c.URL, c.CA.CertPEM, owner.cred))
	if err != nil {
		return identity{}, fmt.Errorf("owner client: %w", err)
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = cs.CoreV1().Secrets(helmNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		return last == nil, nil
	})
	if err != nil {
		return identity{}, fmt.Errorf("%s cannot list Secrets in %s: %w (last error: %v)", owner.user, helmNamespace, err, last)
	}
	return owner, nil
}
