// Command tenant-proxy is a multi-tenant, impersonating proxy in front of the Kubernetes API server.
package main

import (
	"os"
	"runtime"
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
// load (about a tenth of its CPU in profiles), and a soft memory limit keeps the larger target bounded. Under
// steady load the heap grows to the limit, so resident memory is about the limit plus the executable's pages
// in use (RssFile, 40-58 MiB in bench runs once the start-up pages are released), which no runtime setting
// bounds: 96 MiB keeps the sum under 150 MiB in both the full bench (141.7 MiB at 2,000 namespaces after
// every row; 104 MiB measured 156.0 there) and at 10,000 namespaces with 500 watches (143.7 MiB). The
// price is there: live heap and stacks are about 72 MiB, and the collector runs so often that namespace
// events reach watches later (p50 66 ms against 44 ms at 104 MiB and 7 ms directly).
// Audit-IDs come from a pool of random bytes instead of one getrandom call per request.
//
// Unless GOMAXPROCS is set, the proxy runs on a quarter of the CPUs Go would use (at least one). Each request
// hops between several goroutines (connection readers, handler, HTTP/2 writers); with idle Ps the scheduler
// wakes and spins another thread at every hop, which cost more than the parallelism gave: on 2 cores shared
// with the API server, one P cut the proxy's CPU per request from 0.75 to 0.47 ms at one client and raised
// its 16-client throughput (bench/results.md). One P serves thousands of requests per second; scale out
// with replicas, or set GOMAXPROCS.
//
// One setting cannot be made here, because the runtime reads it before main: the Makefile links the binary with
// the GODEBUG default schedtrace=2147483647 (PROXY_LDFLAGS; $GODEBUG overrides it). Its trace, one line per
// period of 24.8 days, is not what it is for: it is that the runtime's sysmon thread then never
// parks in its deep sleep when every P is idle. Parked, it was woken with a futex at the first system call of
// every burst of work and polled every 20 µs until the proxy idled again: at one client that is twice a request
// (the request, then the API server's answer), and 12% of the proxy's CPU in a perf profile. Awake, it backs off
// to one poll every 10 ms when there is nothing to retake, about 0.4% of a core when the proxy is idle. In
// alternating bench pairs the proxy's CPU per request at one client fell from 0.40-0.48x of the API server's
// to 0.30-0.35x (README, Performance).
func tuneRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(proxyProcs(runtime.GOMAXPROCS(0)))
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(96 << 20)
	}
	uuid.EnableRandPool()
}

// proxyProcs is the number of Ps the proxy uses when Go would use available.
func proxyProcs(available int) int {
	return max(1, available/4)
}
