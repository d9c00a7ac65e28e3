// Command dynamic is built by the startuppages tests with cgo, so that it is linked dynamically and has
// mappings of its executable that the dynamic linker wrote (relocations, then made read-only). It releases
// its pages and then uses what those mappings hold: new threads and a resolver call, both through libc.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"github.com/tenant-proxy/tenant-proxy/internal/startuppages"
)

func main() {
	if _, _, err := startuppages.Release(); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	for range 8 { // each locked goroutine that exits takes its thread with it; new ones need pthread_create
		wg.Go(func() { runtime.LockOSThread() })
	}
	wg.Wait()
	resolver := &net.Resolver{PreferGo: false}
	if _, err := resolver.LookupHost(context.Background(), "localhost"); err != nil {
		fmt.Fprintln(os.Stderr, "lookup:", err)
		os.Exit(3)
	}
	fmt.Println("ok")
}
