package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// goMemory is what the proxy's Go runtime reports on /metrics: where its resident memory goes.
type goMemory struct {
	heapInuse, stackInuse float64 // bytes
	goroutines            float64
	gogc, memoryLimit     float64 // the runtime's GOGC and soft memory limit (bytes)
	ok                    bool
}

func (m goMemory) String() string {
	if !m.ok {
		return "runtime metrics unavailable"
	}
	return fmt.Sprintf("Go heap in use %.1f MiB, goroutine stacks %.1f MiB, %.0f goroutines; GOGC %.0f, soft memory limit %.0f MiB",
		m.heapInuse/(1<<20), m.stackInuse/(1<<20), m.goroutines, m.gogc, m.memoryLimit/(1<<20))
}

// readGoMemory scrapes the proxy's metrics address for the Go collector's gauges.
func readGoMemory(ctx context.Context, metricsURL string) goMemory {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL+"/metrics", nil)
	if err != nil {
		return goMemory{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return goMemory{}
	}
	defer resp.Body.Close()
	var m goMemory
	found := 0
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		var into *float64
		switch name {
		case "go_memstats_heap_inuse_bytes":
			into = &m.heapInuse
		case "go_memstats_stack_inuse_bytes":
			into = &m.stackInuse
		case "go_goroutines":
			into = &m.goroutines
		case "go_gc_gogc_percent":
			into = &m.gogc
		case "go_gc_gomemlimit_bytes":
			into = &m.memoryLimit
		default:
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			*into = v
			found++
		}
	}
	m.ok = found >= 3
	return m
}
