package main

import (
	goflag "flag"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tenant-proxy",
		Short: "A multi-tenant, impersonating proxy in front of the Kubernetes API server",
		Long: `tenant-proxy authenticates every caller (client certificate, ServiceAccount or OIDC token, trusted
front-proxy headers) and forwards each request to the Kubernetes API server as that same user, so kubectl,
client-go, Helm and dashboards work unchanged through a kubeconfig context that points at it.`,
		SilenceUsage: true,
	}
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	root.PersistentFlags().AddGoFlagSet(klogFlags)
	root.AddCommand(newServeCommand())
	root.AddCommand(newKubeconfigCommand())
	return root
}
