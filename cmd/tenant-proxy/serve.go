package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
	"github.com/tenant-proxy/tenant-proxy/internal/logredact"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/allnamespaces"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/apprepositories"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/clusterscoped"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/namespaces"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/releases"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/selfreviews"
	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
	"github.com/tenant-proxy/tenant-proxy/internal/webserver"
)

func newServeCommand() *cobra.Command {
	opts := webserver.NewOptions()
	var repoOpts helmrepo.Options // one chart repository fetcher (limits, address guard, index cache) for all modules
	var appRepoOpts apprepositories.Options
	releaseOpts := releases.NewOptions()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the proxy on the secure port",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// --debug means at least -v=4; an explicit -v (higher or lower) wins.
			if opts.Debug && !cmd.Flags().Changed("v") {
				_ = cmd.Flags().Set("v", "4")
			}
			logredact.Install() // client-go's -v=8 body logs would show the Secrets Helm writes and reads
			restConfig, err := webserver.RESTConfig(opts.Kubeconfig, opts.KubeContext)
			if err != nil {
				return err
			}
			// SIGTERM (pod shutdown) and Ctrl-C end the server gracefully, so the audit log is flushed.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tenantIndex, err := tenants.NewForConfig(restConfig, tenants.Options{ConfigurationName: opts.CapsuleConfigurationName})
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(restConfig)
			if err != nil {
				return fmt.Errorf("cluster-scoped resources client: %w", err)
			}
			// Granted Update/Delete of nodes and classes are written with the proxy's own identity.
			writes, err := clusterscoped.NewProxyUpstream(restConfig)
			if err != nil {
				return err
			}
			clusterScoped := clusterscoped.New(tenantIndex, client, clusterscoped.AllResources...).EnableWrites(writes)
			fetcher := helmrepo.New(repoOpts)
			releaseAPI, err := releases.New(*releaseOpts, restConfig, tenantIndex, fetcher, apprepositories.Resolve)
			if err != nil {
				return fmt.Errorf("release API: %w", err)
			}
			server, err := webserver.New(ctx, opts, restConfig,
				namespaces.New(tenantIndex),
				selfreviews.New(tenantIndex, clusterScoped),
				clusterScoped,
				allnamespaces.New(tenantIndex, restConfig),
				apprepositories.New(appRepoOpts, restConfig, fetcher),
				releaseAPI)
			if err != nil {
				return err
			}
			klog.InfoS("Starting tenant-proxy", "upstream", restConfig.Host)
			return server.Run(ctx)
		},
	}
	opts.AddFlags(cmd.Flags())
	repoOpts.AddFlags(cmd.Flags())
	appRepoOpts.AddFlags(cmd.Flags())
	releaseOpts.AddFlags(cmd.Flags())
	return cmd
}
