package startuppages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Release drops this process's mappings of its own executable's read-only segments (code, read-only data)
// with madvise(MADV_DONTNEED) and returns their resident size before and after. These mappings are private
// and never written, so no content is lost: a later access reads the same bytes from the page cache. The
// writable data segment is left alone, because there the advice would discard the process's own writes;
// so is every read-only mapping that holds written (anonymous) pages: in a dynamically linked build the
// dynamic linker writes relocations (the GOT) and then makes them read-only (RELRO), and dropping those
// pages would put the file's unrelocated bytes back, so that the next call into libc jumps to address 0.
func Release() (before, after Usage, err error) {
	regions, err := executableRegions()
	if err != nil {
		return before, after, err
	}
	before = usage(regions)
	for _, r := range regions {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, r.start, r.end-r.start, syscall.MADV_DONTNEED); errno != 0 {
			return before, after, fmt.Errorf("madvise %#x-%#x: %w", r.start, r.end, errno)
		}
	}
	after, err = Resident()
	return before, after, err
}

// Resident reports the resident size of the executable's read-only mappings.
func Resident() (Usage, error) {
	regions, err := executableRegions()
	if err != nil {
		return Usage{}, err
	}
	return usage(regions), nil
}

// executableRegions lists the private, non-writable mappings of this process's executable.
func executableRegions() ([]region, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the executable: %w", err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/self/smaps: %w", err)
	}
	regions, err := parseRegions(data, exe)
	if err == nil && len(regions) == 0 {
		err = fmt.Errorf("no read-only mapping of %s in /proc/self/smaps", exe)
	}
	return regions, err
}

func usage(regions []region) Usage {
	var u Usage
	for _, r := range regions {
		u.Resident += r.resident
		u.Mapped += int64(r.end - r.start)
	}
	return u
}

type region struct {
	start, end uintptr
	resident   int64 // bytes
	// clean: smaps says the mapping has no anonymous pages (copies the process wrote, which the file does
	// not hold). Unknown counts as written.
	clean bool
}

// parseRegions reads the private, non-writable mappings of exe that hold no written pages from smaps
// content.
func parseRegions(data []byte, exe string) ([]region, error) {
	var regions []region
	current := -1 // index of the mapping whose fields follow
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's header: address perms offset dev inode path
			current = -1
			if len(fields) < 6 || strings.Join(fields[5:], " ") != exe || len(fields[1]) != 4 || fields[1][1] != '-' || fields[1][3] != 'p' {
				continue
			}
			start, end, ok := strings.Cut(fields[0], "-")
			if !ok {
				return nil, fmt.Errorf("malformed mapping %q", line)
			}
			s, err1 := strconv.ParseUint(start, 16, 64)
			e, err2 := strconv.ParseUint(end, 16, 64)
			if err1 != nil || err2 != nil || e <= s {
				return nil, fmt.Errorf("malformed mapping %q", line)
			}
			regions = append(regions, region{start: uintptr(s), end: uintptr(e)})
			current = len(regions) - 1
			continue
		}
		if current < 0 || len(fields) < 2 || (fields[0] != "Rss:" && fields[0] != "Anonymous:") {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("malformed %s in %q", strings.TrimSuffix(fields[0], ":"), line)
		}
		if fields[0] == "Rss:" {
			regions[current].resident = kb << 10
		} else {
			regions[current].clean = kb == 0
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scanning smaps: %w", err)
	}
	return slices.DeleteFunc(regions, func(r region) bool { return !r.clean }), nil
}
