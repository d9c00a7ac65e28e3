// Package e2e tests tenant-proxy end to end: a real kube-apiserver, etcd, kube-controller-manager and Capsule
// on loopback, the real tenant-proxy binary, and the real kubectl.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// env is the shared cluster and proxy of the whole suite; tests use their own namespaces and names.
var env *environment

type environment struct {
	cluster *testbed.Cluster
	proxy   *testbed.Proxy // the proxy tests talk to; forEachUpstreamMode points it at each mode's in turn
	dir     string
	users   map[string]*identity
	// modes are the proxies under test: the same binary and flags, telling the API server who the caller is
	// by impersonation (env's default) or by front-proxy headers.
	modes []upstreamMode
	// secrets are every credential the suite used; none may appear in the proxy's logs or audit records.
	secrets map[string]string
}

// identity is one caller, reachable directly or through the proxy.
type identity struct {
	name             string   // Kubernetes user name
	groups           []string // groups the API server reports (besides system:authenticated)
	namespace        string   // where RBAC lets it edit
	proxyKubeconfig  string
	directKubeconfig string
	proxyConfig      *rest.Config
	directConfig     *rest.Config
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	binDir := testbed.DefaultBinDir()
	if err := testbed.CheckBinaries(binDir, true); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		if os.Getenv("CI") != "" {
			return 1 // CI must never silently skip the end-to-end suite
		}
		fmt.Fprintln(os.Stderr, "e2e: skipping (run `make test`)")
		return 0
	}
	if _, err := os.Stat(filepath.Join(binDir, "tenant-proxy")); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: tenant-proxy binary missing: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := setUp(ctx, binDir)
	if e != nil && e.cluster != nil {
		defer func() {
			for _, m := range e.modes {
				m.proxy.Stop()
			}
			_ = e.cluster.Stop()
		}()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: set-up failed: %v\n", err)
		return 1
	}
	env = e
	return m.Run()
}

func setUp(ctx context.Context, binDir string) (*environment, error) {
	start := time.Now()
	cluster, err := testbed.Start(ctx, testbed.Options{BinDir: binDir, Capsule: true, Log: os.Stderr})
	if err != nil {
		return nil, err
	}
	e := &environment{cluster: cluster, dir: cluster.Dir, users: map[string]*identity{}, secrets: map[string]string{}}
	fmt.Fprintf(os.Stderr, "e2e: cluster up in %s\n", time.Since(start).Round(time.Millisecond))

	o := cluster.OIDC
	args := []string{
		"--oidc-issuer-url", o.URL, "--oidc-client-id", o.ClientID, "--oidc-ca-file", o.CAFile,
		"--oidc-username-claim", o.UsernameClaim, "--oidc-username-prefix", o.UsernamePrefix,
		"--oidc-groups-claim", o.GroupsClaim, "--oidc-groups-prefix", o.GroupsPrefix,
		"--requestheader-client-ca-file", cluster.FrontProxyCAFile, "--requestheader-allowed-names", "front-proxy-client",
		"--authentication-token-webhook-cache-ttl", "5m",
		// The test chart repositories are on loopback.
		"--allow-private-repositories",
		"--debug", "-v", "10", // highest verbosity: the secret scan must find nothing even here
	}
	e.proxy, err = cluster.StartProxy(ctx, filepath.Join(binDir, "tenant-proxy"), "tenant-proxy", args...)
	if err != nil {
		return e, err
	}
	e.modes = append(e.modes, upstreamMode{name: "impersonation", proxy: e.proxy, users: e.users})
	fpArgs, err := cluster.UpstreamFrontProxyArgs("tenant-proxy-fp")
	if err != nil {
		return e, err
	}
	fp, err := cluster.StartProxy(ctx, filepath.Join(binDir, "tenant-proxy"), "tenant-proxy-fp", append(args, fpArgs...)...)
	if err != nil {
		return e, err
	}
	e.modes = append(e.modes, upstreamMode{name: "front-proxy", frontProxy: true, proxy: fp, users: map[string]*identity{}})
	e.secrets["upstream front-proxy key"] = mustRead(fpArgs[3])
	if err := e.createIdentities(ctx); err != nil {
		return e, err
	}
	fmt.Fprintf(os.Stderr, "e2e: environment ready in %s\n", time.Since(start).Round(time.Millisecond))
	return e, nil
}

// createIdentities makes the suite's callers: alice (client certificate), robot (ServiceAccount token) and
// carol (OIDC ID token), each allowed to edit exactly one namespace.
func (e *environment) createIdentities(ctx context.Context) error {
	aliceCert, aliceKey, err := e.cluster.CA.IssueClientCert("alice", "dev")
	if err != nil {
		return err
	}
	e.secrets["alice private key"] = string(aliceKey)
	if err := e.addIdentity(&identity{name: "alice", groups: []string{"dev"}, namespace: "team-a"}, aliceCert, aliceKey, ""); err != nil {
		return err
	}

	robotToken, err := e.cluster.ServiceAccountToken(ctx, "apps", "robot", time.Hour)
	if err != nil {
		return err
	}
	e.secrets["robot token"] = robotToken
	robot := &identity{name: "system:serviceaccount:apps:robot", groups: []string{"system:serviceaccounts", "system:serviceaccounts:apps"}, namespace: "apps"}
	if err := e.addIdentity(robot, nil, nil, robotToken); err != nil {
		return err
	}

	carolToken, err := e.cluster.OIDC.Token("carol", []string{"ops"}, time.Hour)
	if err != nil {
		return err
	}
	e.secrets["carol id token"] = carolToken
	carol := &identity{name: "oidc:carol", groups: []string{"oidc:ops"}, namespace: "ops"}
	if err := e.addIdentity(carol, nil, nil, carolToken); err != nil {
		return err
	}
	e.secrets["proxy serving key"] = mustRead(filepath.Join(e.dir, "tenant-proxy", "serving.key"))

	for _, id := range e.users {
		if err := e.grantEdit(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// addIdentity registers id in every mode's users, with kubeconfigs and configs for that mode's proxy.
func (e *environment) addIdentity(base *identity, certPEM, keyPEM []byte, token string) error {
	short := base.name[len(base.name)-min(len(base.name), 5):]
	base.directKubeconfig = filepath.Join(e.dir, "kubeconfig-direct-"+short)
	if err := e.cluster.WriteKubeconfig(base.directKubeconfig, e.cluster.URL, e.cluster.CAFile, base.name, certPEM, keyPEM, token); err != nil {
		return err
	}
	base.directConfig = &rest.Config{Host: e.cluster.URL, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: e.cluster.CAFile, CertData: certPEM, KeyData: keyPEM}}
	for i, m := range e.modes {
		id := base
		if i > 0 {
			copied := *base
			id = &copied
		}
		id.proxyKubeconfig = filepath.Join(e.dir, "kubeconfig-"+m.name+"-"+short)
		if err := e.cluster.WriteKubeconfig(id.proxyKubeconfig, m.proxy.URL, m.proxy.CAFile, id.name, certPEM, keyPEM, token); err != nil {
			return err
		}
		id.proxyConfig = &rest.Config{Host: m.proxy.URL, BearerToken: token,
			TLSClientConfig: rest.TLSClientConfig{CAFile: m.proxy.CAFile, CertData: certPEM, KeyData: keyPEM}}
		m.users[short] = id
	}
	return nil
}

// grantEdit lets id edit its namespace through the aggregated "edit" ClusterRole.
func (e *environment) grantEdit(ctx context.Context, id *identity) error {
	client := e.cluster.AdminClient
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: id.namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", id.namespace, err)
	}
	subject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: id.name}
	if id.name == "oidc:carol" {
		subject = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "oidc:ops"} // by group, to prove groups arrive
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "edit", Namespace: id.namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{subject},
	}
	if _, err := client.RbacV1().RoleBindings(id.namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("binding in %s: %w", id.namespace, err)
	}
	return nil
}

func mustRead(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(data)
}
