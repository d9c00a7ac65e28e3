package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is sysconf(_SC_CLK_TCK), the unit of utime and stime in /proc/<pid>/stat. It is 100 on every
// Linux architecture Go supports, and reading it would need cgo.
const clockTicks = 100

// component is a process whose CPU time a round is charged with.
type component struct {
	name string
	pid  int
}

// cpuTime is the user plus system CPU time pid has used so far, all threads included.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// Field 2, the command name, is in parentheses and may hold spaces: count fields after the last ')'.
	// What remains starts at field 3 (state), so utime (14) and stime (15) are at indexes 11 and 12.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("cpu time: /proc/%d/stat has %d fields after the name", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuTimes samples every component at once, in the order given.
func cpuTimes(comps []component) ([]time.Duration, error) {
	out := make([]time.Duration, len(comps))
	for i, c := range comps {
		t, err := cpuTime(c.pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		out[i] = t
	}
	return out, nil
}

// residentBytes is VmRSS of pid.
func residentBytes(pid int) (int64, error) { return statusBytes(pid, "VmRSS") }

// fileBackedBytes is RssFile of pid: the pages of the executable (and other mapped files) it has touched, which
// VmRSS counts but the Go runtime's memory limit does not.
func fileBackedBytes(pid int) (int64, error) { return statusBytes(pid, "RssFile") }

// statusBytes reads one "<field>: <n> kB" line of /proc/<pid>/status.
func statusBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		value, ok := strings.CutPrefix(s.Text(), field+":")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
		}
		return kib << 10, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
