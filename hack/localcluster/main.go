// Command localcluster is `make run`: a real local cluster (etcd, kube-apiserver, kube-controller-manager,
// Capsule) with demo tenants, and tenant-proxy in front of it, until Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const demoTenants = `
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: oil
spec:
  owners:
  - kind: User
    name: alice
---
apiVersion: capsule.clastix.io/v1beta2
kind: Tenant
metadata:
  name: gas
spec:
  owners:
  - kind: Group
    name: gas-owners
`

func main() {
	binDir := flag.String("bin", testbed.DefaultBinDir(), "directory with the cluster binaries")
	proxyBin := flag.String("proxy", filepath.Join(testbed.DefaultBinDir(), "tenant-proxy"), "tenant-proxy binary")
	flag.Parse()
	if err := run(*binDir, *proxyBin); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(binDir, proxyBin string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	cluster, err := testbed.Start(startCtx, testbed.Options{BinDir: binDir, Capsule: true, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer func() { _ = cluster.Stop() }()
	fmt.Fprintln(os.Stderr, "localcluster: creating demo tenants oil (owner: user alice) and gas (owner: group gas-owners)")
	if err := cluster.ApplyYAML(startCtx, []byte(demoTenants)); err != nil {
		return err
	}
	proxy, err := cluster.StartProxy(startCtx, proxyBin, "tenant-proxy")
	if err != nil {
		return err
	}
	defer proxy.Stop()

	users := []struct{ name, group, namespace string }{{"alice", "oil-team", "oil-dev"}, {"bob", "gas-owners", "gas-dev"}}
	fmt.Printf("\ntenant-proxy is serving %s in front of kube-apiserver %s\n\n", proxy.URL, cluster.URL)
	for _, u := range users {
		certPEM, keyPEM, err := cluster.CA.IssueClientCert(u.name, u.group, "projectcapsule.dev")
		if err != nil {
			return err
		}
		path := filepath.Join(cluster.Dir, u.name+".kubeconfig")
		if err := cluster.WriteKubeconfig(path, proxy.URL, proxy.CAFile, u.name, certPEM, keyPEM, ""); err != nil {
			return err
		}
		fmt.Printf("  %s (owner of a tenant, groups %s):\n    export KUBECONFIG=%s\n    %s/kubectl create namespace %s && %s/kubectl get namespaces   # only the tenant's own\n\n",
			u.name, u.group, path, binDir, u.namespace, binDir)
	}
	fmt.Printf("  cluster admin (direct): export KUBECONFIG=%s\n", cluster.AdminKubeconfig)
	fmt.Printf("  proxy log: %s\n  proxy audit log: %s\n  metrics: %s/metrics\n\nPress Ctrl-C to stop everything.\n", proxy.LogPath, proxy.AuditPath, proxy.MetricsURL)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nlocalcluster: stopping")
	return nil
}
