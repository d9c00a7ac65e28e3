package main

import (
	"cmp"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tenant-proxy/tenant-proxy/internal/kubeconfig"
)

func newKubeconfigCommand() *cobra.Command {
	var r kubeconfig.Request
	cmd := &cobra.Command{
		Use:   "kubeconfig --server https://PROXY [--certificate-authority FILE] [--merge] [--output FILE]",
		Short: "Write a kubeconfig context that reaches the API server through the proxy as yourself",
		Long: `Takes the current (or --context / --user) user of an existing kubeconfig and makes a context that sends the
same credentials to tenant-proxy instead of the API server, trusting the proxy's CA (embedded).

Without --merge a self-contained kubeconfig is printed, or written to --output. With --merge the cluster and
context are added to --output, or to the kubeconfig file that holds the user; every other entry stays, and an
earlier context of the same --context-name is replaced.`,
		Example: `  # Try it once
  tenant-proxy kubeconfig --server https://tenant-proxy.example.com --certificate-authority ca.crt > proxy.kubeconfig
  kubectl --kubeconfig proxy.kubeconfig auth whoami

  # Add it to ~/.kube/config and switch to it
  tenant-proxy kubeconfig --server https://tenant-proxy.example.com --certificate-authority ca.crt --merge --set-current`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			written, err := kubeconfig.Run(r, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if written != "" {
				name := cmp.Or(r.ContextName, kubeconfig.DefaultContextName)
				fmt.Fprintf(cmd.ErrOrStderr(), "Context %q written to %s; use it with: kubectl --kubeconfig %s --context %s\n",
					name, written, written, name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Kubeconfig, "kubeconfig", "", "Kubeconfig holding your credentials. Empty means $KUBECONFIG, else ~/.kube/config.")
	f.StringVar(&r.Context, "context", "", "Context whose user (and namespace) to use. Empty means the current context.")
	f.StringVar(&r.User, "user", "", "User of the kubeconfig to use instead of the context's.")
	f.StringVar(&r.Server, "server", "", "URL of tenant-proxy (https://host:port).")
	f.StringVar(&r.CAFile, "certificate-authority", "", "CA that signed the proxy's serving certificate; embedded into the kubeconfig. Empty means the system roots.")
	f.StringVar(&r.TLSServerName, "tls-server-name", "", "Name to check the proxy's certificate against, if not the --server host.")
	f.StringVar(&r.ContextName, "context-name", kubeconfig.DefaultContextName, "Name of the new cluster and context.")
	f.BoolVar(&r.Merge, "merge", false, "Add the context to an existing kubeconfig instead of writing a self-contained one.")
	f.BoolVar(&r.SetCurrent, "set-current", false, "With --merge, make the new context the current one.")
	f.StringVarP(&r.Output, "output", "o", "", "File to write (or with --merge, to add to). Empty means standard output, or with --merge the file that holds the user.")
	_ = cmd.MarkFlagRequired("server")
	return cmd
}
