package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const (
	namespace     = "bench"
	otherConfigs  = 50
	manyGroups    = 200
	credentialTTL = 2 * time.Hour // outlives any sensible run
)

const (
	getPath  = "/api/v1/namespaces/" + namespace + "/configmaps/target"
	listPath = "/api/v1/namespaces/" + namespace + "/configmaps"
)

// identity is one benchmark caller and who the API server must see it as, directly and through the proxy.
type identity struct {
	cred credential
	user string
}

// fixture holds the callers; every one of them may read namespace bench through ClusterRole view.
type fixture struct {
	cert, token, oidc, groups identity
}

// setUpFixture creates namespace bench with ConfigMap target and 50 others, the callers and their
// RoleBinding, and checks that each caller is the same user with the same groups directly and via the proxy.
func setUpFixture(ctx context.Context, c *testbed.Cluster, proxyURL string) (*fixture, error) {
	if err := createObjects(ctx, c.AdminClient); err != nil {
		return nil, err
	}
	var fx fixture
	var err error
	// Two groups: bench-group and system:authenticated, which the API server adds.
	if fx.cert.cred.certPEM, fx.cert.cred.keyPEM, err = c.CA.IssueClientCert("bencher", "bench-group"); err != nil {
		return nil, err
	}
	fx.cert.user = "bencher"
	if fx.token.cred.token, err = c.ServiceAccountToken(ctx, namespace, "bencher", credentialTTL); err != nil {
		return nil, err
	}
	fx.token.user = "system:serviceaccount:" + namespace + ":bencher"
	if fx.oidc.cred.token, err = c.OIDC.Token("oidc-bencher", []string{"bench"}, credentialTTL); err != nil {
		return nil, err
	}
	fx.oidc.user = c.OIDC.UsernamePrefix + "oidc-bencher"
	groups := make([]string, manyGroups)
	for i := range groups {
		groups[i] = fmt.Sprintf("bench-g%03d", i)
	}
	if fx.groups.cred.certPEM, fx.groups.cred.keyPEM, err = c.CA.IssueClientCert("bencher-groups", groups...); err != nil {
		return nil, err
	}
	fx.groups.user = "bencher-groups"

	subjects := []rbacv1.Subject{
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fx.cert.user},
		{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: "bencher"},
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fx.oidc.user},
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: groups[0]}, // the 200-group user, via one group
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-view", Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   subjects,
	}
	if _, err := c.AdminClient.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create RoleBinding: %w", err)
	}
	for _, id := range []identity{fx.cert, fx.token, fx.oidc, fx.groups} {
		if err := checkIdentity(ctx, c, proxyURL, id); err != nil {
			return nil, err
		}
	}
	return &fx, nil
}

func createObjects(ctx context.Context, admin kubernetes.Interface) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	// About 1 KiB of data each, a typical small ConfigMap.
	data := map[string]string{"config.yaml": strings.Repeat("key: value\n", 90)}
	names := []string{"target"}
	for i := range otherConfigs {
		names = append(names, fmt.Sprintf("other-%02d", i))
	}
	for _, name := range names {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
		if _, err := admin.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ConfigMap %s: %w", name, err)
		}
	}
	return nil
}

// checkIdentity waits until RBAC lets id read the target (the authorizer's cache lags behind the
// RoleBinding), then asks the API server who id is, directly and via the proxy, and compares.
func checkIdentity(ctx context.Context, c *testbed.Cluster, proxyURL string, id identity) error {
	direct, err := newClient(c.URL, c.CA.CertPEM, id.cred)
	if err != nil {
		return err
	}
	defer closeClients([]*client{direct})
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = direct.get(ctx, c.URL+getPath)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s cannot read the target: %w (last error: %v)", id.user, err, last)
	}
	directUser, err := whoami(ctx, c.URL, c.CA.CertPEM, id.cred)
	if err != nil {
		return fmt.Errorf("%s directly: %w", id.user, err)
	}
	proxyUser, err := whoami(ctx, proxyURL, c.CA.CertPEM, id.cred)
	if err != nil {
		return fmt.Errorf("%s via the proxy: %w", id.user, err)
	}
	if directUser.Username != id.user {
		return fmt.Errorf("the API server sees %q as %q", id.user, directUser.Username)
	}
	if proxyUser.Username != directUser.Username || !slices.Equal(sorted(proxyUser.Groups), sorted(directUser.Groups)) {
		return fmt.Errorf("identity differs via the proxy: direct %s %v, via the proxy %s %v",
			directUser.Username, directUser.Groups, proxyUser.Username, proxyUser.Groups)
	}
	return nil
}

// whoami is kubectl auth whoami: the user the API server authenticated the request as.
func whoami(ctx context.Context, host string, caPEM []byte, cred credential) (authenticationv1.UserInfo, error) {
	cs, err := kubernetes.NewForConfig(restConfig(host, caPEM, cred))
	if err != nil {
		return authenticationv1.UserInfo{}, fmt.Errorf("whoami client: %w", err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, fmt.Errorf("SelfSubjectReview: %w", err)
	}
	return review.Status.UserInfo, nil
}

func restConfig(host string, caPEM []byte, cred credential) *rest.Config {
	return &rest.Config{
		Host:            host,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: cred.certPEM, KeyData: cred.keyPEM},
		BearerToken:     cred.token,
		UserAgent:       "tenant-proxy-bench",
		QPS:             -1, // no client-side rate limiting
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
