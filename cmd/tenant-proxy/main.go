// Command tenant-proxy is a multi-tenant, impersonating proxy in front of the Kubernetes API server.
package main

import (
	"os"

	"k8s.io/component-base/cli"
)

func main() {
	os.Exit(cli.Run(newRootCommand()))
}
