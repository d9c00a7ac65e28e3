// Package testbed starts a real Kubernetes control plane on loopback (etcd, kube-apiserver,
// kube-controller-manager and, optionally, the Capsule controller) for end-to-end tests,
// benchmarks and `make run`. Every component is a real binary built from pinned modules
// into ./bin; nothing is mocked.
package testbed

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// startTimeout bounds Start when ctx has no earlier deadline; a healthy start takes about 20-30 s.
const startTimeout = 3 * time.Minute

// Options says where the binaries are and which optional parts to start.
type Options struct {
	// BinDir holds kube-apiserver, kube-controller-manager, kubectl, etcd, capsule and capsule-crds/.
	// Empty means $TENANT_PROXY_BIN, else <repository root>/bin.
	BinDir string
	// Dir is the working directory for certificates, kubeconfigs, data and logs. Empty means a new temp dir
	// that Stop removes.
	Dir string
	// Capsule starts the Capsule controller with its CRDs, webhooks and a CapsuleConfiguration named "default"
	// whose users are the group "projectcapsule.dev".
	Capsule bool
	// CapsuleCRDs, without Capsule, installs only Capsule's CRDs (serving v1beta2, no conversion webhook) and
	// the same CapsuleConfiguration, and starts no controller: Tenants are plain objects whose status and
	// namespace ownerReferences the caller writes as Capsule would. For large fixtures (benchmarks), where
	// waiting for the controller to reconcile takes the better part of an hour. Needs no Capsule lock.
	CapsuleCRDs bool
	// Log receives progress lines ("starting etcd", ...); nil discards them. Component output goes to files in Dir.
	Log io.Writer
}

// CA is the one certificate authority of the test bed: it signs the API server's serving certificate,
// client certificates of users, webhook serving certificates and the kubelet's certificates.
type CA struct {
	CertPEM []byte
	KeyPEM  []byte
	Cert    *x509.Certificate
	Key     crypto.Signer
}

// Cluster is a running test cluster.
type Cluster struct {
	Dir    string // working directory
	BinDir string // where the binaries are
	URL    string // https://127.0.0.1:<port> of kube-apiserver

	CA     *CA
	CAFile string // PEM of CA.Cert

	// FrontProxyCA signs the client certificate a trusted front proxy uses (--requestheader-client-ca-file).
	FrontProxyCA     *CA
	FrontProxyCAFile string

	AdminKubeconfig string       // kubeconfig of a system:masters user
	Admin           *rest.Config // same identity
	AdminClient     kubernetes.Interface

	OIDC *OIDCIssuer // an OIDC issuer on loopback that the API server trusts

	EtcdURL  string // http://127.0.0.1:<port>
	AuditLog string // kube-apiserver's audit log: JSON lines, level Request, one event per request

	// CapsuleWebhookURL is https://127.0.0.1:<port> of Capsule's webhook server; empty without Options.Capsule.
	CapsuleWebhookURL string

	log         io.Writer
	removeDir   bool
	procs       []*process // in start order
	saKeyFile   string
	applier     *applier
	capsule     *capsuleSetup
	capsuleLock *os.File

	stopOnce sync.Once
	stopErr  error
}

// OIDCIssuer is an https OIDC issuer on loopback (discovery and JWKS) whose tokens kube-apiserver accepts with
// username claim "sub" prefixed "oidc:" and groups claim "groups" prefixed "oidc:".
type OIDCIssuer struct {
	URL            string // issuer URL, https://127.0.0.1:<port>
	ClientID       string // audience
	CAFile         string // CA that signed the issuer's serving certificate
	UsernameClaim  string // "sub"
	UsernamePrefix string // "oidc:"
	GroupsClaim    string // "groups"
	GroupsPrefix   string // "oidc:"

	oidc *oidcServer
}

// Start builds nothing: it starts the binaries found in Options.BinDir and returns when the API server is ready,
// the controller-manager has filled the aggregated admin/edit ClusterRoles and, with Options.Capsule, Capsule's
// webhooks answer. Capsule is proven to work by a probe: tenant "testbed-probe" gets a namespace created by its
// owner; the probe tenant and its namespace are deleted again before Start returns.
//
// Every Start is a new cluster with new keys, also in a reused Dir. On failure Start stops what it started and
// keeps Dir, whose logs the error points to. Only one test bed with Capsule runs on a machine at a time (Capsule
// binds a fixed port); Start waits for another one to stop.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c := &Cluster{BinDir: opts.BinDir, Dir: opts.Dir, log: opts.Log}
	if c.BinDir == "" {
		c.BinDir = DefaultBinDir()
	}
	if err := CheckBinaries(c.BinDir, opts.Capsule); err != nil {
		return nil, err
	}
	if err := c.makeDir(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.stopProcesses()
			err = fmt.Errorf("testbed: %w (logs kept in %s)", err, c.Dir)
		}
	}()

	began := time.Now()
	steps := []step{
		{"creating certificates and the OIDC issuer", c.initPKI},
		{"starting etcd", c.startEtcd},
		{"starting kube-apiserver", c.startAPIServer},
		{"starting kube-controller-manager", c.startControllerManager},
	}
	if opts.CapsuleCRDs && !opts.Capsule {
		steps = append(steps, step{"installing Capsule's CRDs and configuration (no controller)", c.installCapsuleCRDs})
	}
	if opts.Capsule {
		steps = append(steps,
			step{"installing Capsule's CRDs and configuration", c.installCapsule},
			step{"starting Capsule", c.startCapsule},
			step{"probing Capsule: a tenant owner creates a namespace", c.probeCapsule},
		)
	}
	steps = append(steps,
		step{"waiting for kube-controller-manager to aggregate ClusterRoles", c.waitControllerManager},
		step{"waiting for kube-apiserver to accept OIDC tokens", c.waitOIDC},
	)
	for _, step := range steps {
		stepBegan := time.Now()
		c.logf("%s", step.name)
		if err := step.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", step.name, err)
		}
		c.logf("%s: done in %s", step.name, time.Since(stepBegan).Round(time.Millisecond))
	}
	c.logf("cluster ready at %s in %s (dir %s)", c.URL, time.Since(began).Round(time.Millisecond), c.Dir)
	return c, nil
}

// step is one stage of Start, timed and logged.
type step struct {
	name string
	run  func(context.Context) error
}

// Stop ends every process and removes the working directory if Start created it. It may be called more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopProcesses()
		if c.removeDir {
			if err := os.RemoveAll(c.Dir); err != nil {
				c.stopErr = fmt.Errorf("testbed: remove %s: %w", c.Dir, err)
			}
		}
	})
	return c.stopErr
}

// stopProcesses stops components in reverse start order, so none sees its dependencies vanish first.
func (c *Cluster) stopProcesses() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		began := time.Now()
		how := "stopped"
		if c.procs[i].stop() {
			how = "killed"
		}
		c.logf("%s %s in %s", how, c.procs[i].name, time.Since(began).Round(time.Millisecond))
	}
	c.OIDC.close()
	c.releaseCapsuleLock()
}

// DefaultBinDir is $TENANT_PROXY_BIN, else bin/ in the nearest directory above the working directory that
// holds go.mod (the repository root when run by go test).
func DefaultBinDir() string {
	if dir := os.Getenv("TENANT_PROXY_BIN"); dir != "" {
		return dir
	}
	dir, err := os.Getwd()
	if err != nil {
		return "bin"
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "bin")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "bin")
		}
	}
}

// CheckBinaries reports the binaries missing from binDir (those of Capsule only if capsule is set), so tests can
// skip with a helpful message instead of failing.
func CheckBinaries(binDir string, capsule bool) error {
	names := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}
	if capsule {
		names = append(names, "capsule", "capsule-crds")
	}
	var missing []error
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			missing = append(missing, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("testbed: binaries missing (run `make cluster-bins`): %w", errors.Join(missing...))
	}
	return nil
}

func (c *Cluster) makeDir() error {
	if c.Dir == "" {
		dir, err := os.MkdirTemp("", "testbed-")
		if err != nil {
			return fmt.Errorf("testbed: create working directory: %w", err)
		}
		c.Dir, c.removeDir = dir, true
	}
	dir, err := filepath.Abs(c.Dir) // processes run with their own working directory
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	c.Dir = dir
	// Every Start makes new keys, so data of an earlier cluster in a reused Dir would be unreadable garbage.
	for _, old := range []string{"etcd", "apiserver-audit.log"} {
		if err := os.RemoveAll(filepath.Join(c.Dir, old)); err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
	}
	for _, sub := range []string{"pki", "apiserver"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("testbed: %w", err)
		}
	}
	return nil
}

// start starts BinDir/bin as component name and remembers it for Stop.
func (c *Cluster) start(name, bin string, args, env []string) (*process, error) {
	p, err := startProcess(c.Dir, name, filepath.Join(c.BinDir, bin), args, env)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

func (c *Cluster) proc(name string) *process {
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (c *Cluster) logf(format string, args ...any) {
	if c.log != nil {
		fmt.Fprintf(c.log, "testbed: "+format+"\n", args...)
	}
}
