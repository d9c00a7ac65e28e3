package testbed

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	capsuleNamespace      = "capsule-system"
	capsuleServiceAccount = "capsule"
	// CapsuleUsersGroup is the group the CapsuleConfiguration declares as Capsule users: tenant owners need it.
	CapsuleUsersGroup = "projectcapsule.dev"
	// CapsuleTenantLabel is the label Capsule puts on every namespace of a tenant.
	CapsuleTenantLabel = "capsule.clastix.io/tenant"
	// capsuleHealthPort is hard-coded in Capsule v0.13.11 (HealthProbeBindAddress ":10080", no flag), so only one
	// Capsule can run on a machine at a time.
	capsuleHealthPort = 10080
	capsuleTokenTTL   = 365 * 24 * time.Hour // outlives any `make run`
	// capsuleCertDir is controller-runtime's default webhook certificate directory, which Capsule checks (see
	// writeCapsuleCert).
	capsuleCertDir = "/tmp/k8s-webhook-server/serving-certs"
)

var (
	tenantsGVR = schema.GroupVersionResource{Group: "capsule.clastix.io", Version: "v1beta2", Resource: "tenants"}
	crdsGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// capsuleConfigurationYAML is the CapsuleConfiguration that Capsule's Helm chart v0.13.11 renders with its default
// values. The webhook list matters: Capsule registers only the webhooks listed there.
//
//go:embed capsule-configuration.yaml
var capsuleConfigurationYAML []byte

// capsuleRBAC makes Capsule's ServiceAccount a cluster administrator, as the chart does in effect.
const capsuleRBAC = `apiVersion: v1
kind: Namespace
metadata:
  name: capsule-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: capsule
  namespace: capsule-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: capsule-testbed-cluster-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- kind: ServiceAccount
  name: capsule
  namespace: capsule-system
`

// capsuleSetup carries what installCapsule prepared to the later Capsule steps.
type capsuleSetup struct {
	crds                     []*unstructured.Unstructured
	config                   *unstructured.Unstructured
	kubeconfig               string
	webhookPort, metricsPort int
}

// installCapsule applies Capsule's CRDs, RBAC and CapsuleConfiguration and writes its kubeconfig and certificate.
// It first takes the machine-wide Capsule lock (see lockCapsule).
func (c *Cluster) installCapsule(ctx context.Context) error {
	if err := c.lockCapsule(ctx); err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	setup := &capsuleSetup{webhookPort: ports[0], metricsPort: ports[1]}
	c.CapsuleWebhookURL = "https://127.0.0.1:" + strconv.Itoa(setup.webhookPort)
	if setup.crds, err = c.applyCapsuleCRDs(ctx); err != nil {
		return err
	}
	if err := c.ApplyYAML(ctx, []byte(capsuleRBAC)); err != nil {
		return err
	}
	if setup.kubeconfig, err = c.capsuleKubeconfig(ctx); err != nil {
		return err
	}
	if setup.config, err = c.capsuleConfiguration(); err != nil {
		return err
	}
	if err := c.applier.apply(ctx, setup.config); err != nil {
		return err
	}
	if err := c.writeCapsuleCert(); err != nil {
		return err
	}
	c.capsule = setup
	return nil
}

// startCapsule runs the controller out of cluster as its own ServiceAccount and waits for its webhooks.
func (c *Cluster) startCapsule(ctx context.Context) error {
	setup := c.capsule
	p, err := c.start("capsule", "capsule", []string{
		"--configuration-name=default",
		"--webhook-port=" + strconv.Itoa(setup.webhookPort),
		"--webhook-cert-path=" + capsuleCertDir,
		"--enable-leader-election=false",
		"--metrics-addr=127.0.0.1:" + strconv.Itoa(setup.metricsPort),
	}, []string{
		"NAMESPACE=" + capsuleNamespace,
		"SERVICE_ACCOUNT=" + capsuleServiceAccount,
		"KUBECONFIG=" + setup.kubeconfig, // Capsule's flag set does not include controller-runtime's --kubeconfig
	})
	if err != nil {
		return err
	}
	if err := c.waitCapsuleWebhooks(ctx, p, setup.config); err != nil {
		return err
	}
	return c.checkConversion(ctx, p, setup.crds)
}

// writeCapsuleCert writes the webhook serving certificate where Capsule looks for it. Capsule v0.13.11 registers
// its conversion webhook (/convert) only if /tmp/k8s-webhook-server/serving-certs/tls.crt exists, whatever
// --webhook-cert-path says, so the certificate goes there; the Capsule lock makes the fixed path safe.
func (c *Cluster) writeCapsuleCert() error {
	if err := os.MkdirAll(capsuleCertDir, 0o755); err != nil {
		return fmt.Errorf("capsule certificate: %w", err)
	}
	certPEM, keyPEM, err := c.CA.IssueServingCert("127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	return writePair(filepath.Join(capsuleCertDir, "tls"), certPEM, keyPEM)
}

// capsuleKubeconfig writes a kubeconfig with a TokenRequest token of Capsule's ServiceAccount: Capsule treats
// only its own ServiceAccount as itself, and its webhooks refuse its writes under any other identity.
func (c *Cluster) capsuleKubeconfig(ctx context.Context) (string, error) {
	token, err := c.ServiceAccountToken(ctx, capsuleNamespace, capsuleServiceAccount, capsuleTokenTTL)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, "capsule.kubeconfig")
	user := "system:serviceaccount:" + capsuleNamespace + ":" + capsuleServiceAccount
	return path, c.WriteKubeconfig(path, c.URL, c.CAFile, user, nil, nil, token)
}

// capsuleConfiguration is the chart's configuration pointed at the loopback webhook server and the test bed's CA.
func (c *Cluster) capsuleConfiguration() (*unstructured.Unstructured, error) {
	objs, err := decodeYAML(capsuleConfigurationYAML)
	if err != nil || len(objs) != 1 {
		return nil, fmt.Errorf("embedded CapsuleConfiguration: %d objects, %w", len(objs), err)
	}
	cfg := objs[0]
	cfg.SetName("default")
	cfg.SetNamespace("") // cluster-scoped, the chart sets it anyway
	cfg.SetLabels(nil)   // Helm's
	cfg.SetAnnotations(nil)
	for _, kind := range []string{"validating", "mutating"} {
		// cert-manager would inject the CA; there is none, and the client below carries the CA.
		unstructured.RemoveNestedField(cfg.Object, "spec", "admission", kind, "annotations")
	}
	client := map[string]any{"url": c.CapsuleWebhookURL, "caBundle": base64.StdEncoding.EncodeToString(c.CA.CertPEM)}
	sets := []struct {
		value any
		path  []string
	}{
		{[]any{map[string]any{"kind": "Group", "name": CapsuleUsersGroup}}, []string{"spec", "users"}},
		{false, []string{"spec", "enableTLSReconciler"}}, // our CA signs the webhook certificate
		{client, []string{"spec", "admission", "validating", "client"}},
		{client, []string{"spec", "admission", "mutating", "client"}},
	}
	for _, s := range sets {
		if err := unstructured.SetNestedField(cfg.Object, s.value, s.path...); err != nil {
			return nil, fmt.Errorf("CapsuleConfiguration %v: %w", s.path, err)
		}
	}
	return cfg, nil
}

// waitCapsuleWebhooks waits for the webhook configurations Capsule creates from the CapsuleConfiguration.
func (c *Cluster) waitCapsuleWebhooks(ctx context.Context, p *process, cfg *unstructured.Unstructured) error {
	validating, _, _ := unstructured.NestedString(cfg.Object, "spec", "admission", "validating", "name")
	mutating, _, _ := unstructured.NestedString(cfg.Object, "spec", "admission", "mutating", "name")
	admission := c.AdminClient.AdmissionregistrationV1()
	return waitFor(ctx, p, "Capsule's webhook configurations", func(ctx context.Context) (bool, error) {
		v, err := admission.ValidatingWebhookConfigurations().Get(ctx, validating, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		m, err := admission.MutatingWebhookConfigurations().Get(ctx, mutating, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(v.Webhooks) > 0 && len(m.Webhooks) > 0, nil
	})
}

// probeCapsule proves Capsule works end to end: a tenant owner creates a namespace and Capsule assigns it to the
// tenant. The probe tenant and its namespace are deleted afterwards, so tests start from no tenants.
func (c *Cluster) probeCapsule(ctx context.Context) error {
	p := c.proc("capsule")
	const tenant, owner = "testbed-probe", "testbed-probe-owner"
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "capsule.clastix.io/v1beta2",
		"kind":       "Tenant",
		"metadata":   map[string]any{"name": tenant},
		"spec":       map[string]any{"owners": []any{map[string]any{"kind": "User", "name": owner}}},
	}}
	if err := waitFor(ctx, p, "the probe tenant to be accepted", func(ctx context.Context) (bool, error) {
		err := c.applier.apply(ctx, probe)
		return err == nil, err
	}); err != nil {
		return err
	}
	ownerClient, err := c.impersonatedClient(owner, CapsuleUsersGroup, "system:authenticated")
	if err != nil {
		return err
	}
	tenants := c.applier.dynamic.Resource(tenantsGVR)
	var ns string // the probe namespace being waited for
	attempt := 0
	err = waitFor(ctx, p, "a tenant owner's namespace to join the tenant", func(ctx context.Context) (bool, error) {
		if ns == "" {
			attempt++
			created, err := ownerClient.CoreV1().Namespaces().Create(ctx,
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", tenant, attempt)}}, metav1.CreateOptions{})
			if err != nil {
				return false, err // e.g. forbidden until Capsule has bound its users to the provisioner role
			}
			if created.Labels[CapsuleTenantLabel] != tenant {
				// The API server had not seen the webhooks yet; try again with a new name.
				_ = c.AdminClient.CoreV1().Namespaces().Delete(ctx, created.Name, metav1.DeleteOptions{})
				return false, fmt.Errorf("namespace %s created without label %s", created.Name, CapsuleTenantLabel)
			}
			ns = created.Name
		}
		t, err := tenants.Get(ctx, tenant, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		namespaces, _, _ := unstructured.NestedStringSlice(t.Object, "status", "namespaces")
		return slices.Contains(namespaces, ns), fmt.Errorf("tenant status lists %v, not yet %s", namespaces, ns)
	})
	if err != nil {
		return err
	}
	if err := tenants.Delete(ctx, tenant, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete probe tenant: %w", err)
	}
	return waitFor(ctx, p, "the probe tenant to be deleted", func(ctx context.Context) (bool, error) {
		_, err := tenants.Get(ctx, tenant, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

// impersonatedClient is the admin impersonating user with groups, the way a front proxy acts for a user.
func (c *Cluster) impersonatedClient(user string, groups ...string) (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(c.Admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client impersonating %s: %w", user, err)
	}
	return client, nil
}

// lockCapsule takes a machine-wide lock for Capsule's fixed health port, waiting while another test bed (say, the
// test binary of another package) holds it. The lock goes with the open file, so a crashed holder releases it.
func (c *Cluster) lockCapsule(ctx context.Context) error {
	// Not os.TempDir(): the port and the certificate path are machine-wide, so the lock must be too.
	path := "/tmp/tenant-proxy-testbed-capsule.lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return fmt.Errorf("capsule lock: %w", err)
	}
	logged := false
	err = waitFor(ctx, nil, "another test bed's Capsule to stop", func(context.Context) (bool, error) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) && !logged {
			c.logf("waiting for another test bed's Capsule to stop (Capsule always binds port %d)", capsuleHealthPort)
			logged = true
		}
		return err == nil, err
	})
	if err != nil {
		f.Close()
		return err
	}
	c.capsuleLock = f
	return nil
}

// releaseCapsuleLock removes the certificate from the shared path and releases the lock; Capsule must have stopped.
func (c *Cluster) releaseCapsuleLock() {
	if c.capsuleLock != nil {
		for _, name := range []string{"tls.crt", "tls.key"} {
			_ = os.Remove(filepath.Join(capsuleCertDir, name))
		}
		c.capsuleLock.Close() // closing releases the flock
		c.capsuleLock = nil
	}
}
