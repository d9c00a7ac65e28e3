// Command tenant-proxy is a multi-tenant, impersonating proxy in front of the Kubernetes API server.
package main

import (
	"os"
	"runtime/debug"

	"github.com/google/uuid"
	"k8s.io/component-base/cli"
)

func main() {
	tuneRuntime()
	os.Exit(cli.Run(newRootCommand()))
}

// tuneRuntime trades a little memory for CPU on the request path, unless the operator chose otherwise with
// GOGC or GOMEMLIMIT: the proxy's live heap is small, so the default GOGC=100 collects very often under
// load (about a tenth of its CPU in profiles), and a soft memory limit keeps the larger target bounded. The
// limit sits above the live heap at 10,000 namespaces with 500 open watches (about 80 MB with stacks, see
// bench/results.md) and low enough that resident memory stays under 150 MiB there; below it GOGC=400 rules.
// Audit-IDs come from a pool of random bytes instead of one getrandom call per request.
func tuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(112 << 20)
	}
	uuid.EnableRandPool()
}
