package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Set from flags: which workloads run, and where the proxy's CPU profile goes.
var (
	selected    map[string]bool
	profilePath string
)

// startProxyProfile asks the proxy's pprof endpoint for a CPU profile covering the next 60 s (or until the
// returned function is called) and writes it to path, so `go tool pprof` can say where the proxy's time goes.
func startProxyProfile(ctx context.Context, metricsURL, path string) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL+"/debug/pprof/profile?seconds=60", nil)
		if err != nil {
			return
		}
		resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: profile: %v\n", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: profile: %v\n", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err == nil {
			fmt.Fprintf(os.Stderr, "bench: proxy CPU profile written to %s\n", path)
		}
	}()
	return func() { <-done; cancel() }
}

// writeHeapProfile saves the proxy's heap profile (after a GC) to -heapprofile, if set, for `go tool pprof`.
func writeHeapProfile(ctx context.Context, metricsURL string) {
	if *heapProfile == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: heap profile: %v\n", err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, data)
	}
	if err == nil {
		err = os.WriteFile(*heapProfile, data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: heap profile: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "bench: proxy heap profile written to %s\n", *heapProfile)
	// And what the goroutines are doing: their stacks are memory the heap profile does not show.
	if resp, err := http.Get(metricsURL + "/debug/pprof/goroutine?debug=1"); err == nil {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = os.WriteFile(*heapProfile+".goroutines.txt", data, 0o644)
	}
}
