package startuppages

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const smapsSample = `00400000-0278a000 r-xp 00000000 fe:00 10003957                           /opt/tenant proxy/bin
Size:              35368 kB
Rss:               27116 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
0278a000-05318000 r--p 0238a000 fe:00 10003957                           /opt/tenant proxy/bin
Rss:               26672 kB
Anonymous:             0 kB
05318000-05319000 r--p 04f18000 fe:00 10003957                           /opt/tenant proxy/bin
Rss:                   4 kB
Anonymous:             4 kB
05319000-05422000 rw-p 04f19000 fe:00 10003957                           /opt/tenant proxy/bin
Rss:                 872 kB
Anonymous:           100 kB
05422000-05423000 r--p 05022000 fe:00 10003957                           /opt/tenant proxy/bin
Rss:                   4 kB
7f0000000000-7f0000001000 r--s 00000000 fe:00 10003957                   /opt/tenant proxy/bin
Rss:                   4 kB
Anonymous:             0 kB
7f0000002000-7f0000003000 r--p 00000000 fe:00 42                         /usr/lib/other.so
Rss:                   4 kB
Anonymous:             0 kB
3b442800000-3b443800000 rw-p 00000000 00:00 0
Rss:               10880 kB
`

func TestParseRegions(t *testing.T) {
	tests := []struct {
		name, smaps, exe string
		want             []region
		wantErr          bool
	}{
		{
			// Not the writable data, not the read-only page the dynamic linker relocated (RELRO: it has
			// anonymous pages), not a mapping whose anonymous pages smaps does not report, not a shared one.
			name:  "code and read-only data of the executable only",
			smaps: smapsSample, exe: "/opt/tenant proxy/bin",
			want: []region{{0x400000, 0x278a000, 27116 << 10, true}, {0x278a000, 0x5318000, 26672 << 10, true}},
		},
		{name: "another executable", smaps: smapsSample, exe: "/usr/bin/other"},
		{name: "malformed address", smaps: "zz-0400000 r-xp 0 fe:00 1 /x\n", exe: "/x", wantErr: true},
		{name: "malformed Rss", smaps: "00400000-00401000 r-xp 0 fe:00 1 /x\nRss: lots kB\n", exe: "/x", wantErr: true},
		{name: "malformed Anonymous", smaps: "00400000-00401000 r-xp 0 fe:00 1 /x\nAnonymous: some kB\n", exe: "/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRegions([]byte(tt.smaps), tt.exe)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("regions = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestReleaseKeepsDynamicallyLinkedProgramsRunning builds a program with cgo and external linking, which
// has a relocated read-only mapping (RELRO), and runs it: it releases its pages and then calls into libc
// (new threads, the cgo resolver). Releasing the relocated page made that call jump to address 0.
func TestReleaseKeepsDynamicallyLinkedProgramsRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler for an externally linked build:", err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil { // go test does not put its own go on PATH
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	program := filepath.Join(t.TempDir(), "dynamic")
	build := exec.Command(goTool, "build", "-ldflags=-linkmode=external", "-o", program, "./testdata/dynamic")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command("readelf", "-lW", program).Output(); err == nil && !strings.Contains(string(out), "GNU_RELRO") {
		t.Fatalf("the test program has no RELRO segment, so it tests nothing:\n%s", out)
	}
	run := exec.Command(program)
	run.Env = append(os.Environ(), "GODEBUG=netdns=cgo")
	out, err := run.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("after releasing its pages the program failed: %v\n%.2000s", err, out)
	}
}

// TestReleaseDropsResidentPagesAndKeepsRunning releases the test binary's own pages: the resident size
// falls, and code and read-only data read afterwards are intact.
func TestReleaseDropsResidentPagesAndKeepsRunning(t *testing.T) {
	before, after, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if before.Resident == 0 || before.Mapped == 0 {
		t.Fatalf("before = %+v: the test binary has resident read-only pages", before)
	}
	if after.Resident >= before.Resident {
		t.Fatalf("resident %d bytes before, %d after: nothing was released", before.Resident, after.Resident)
	}
	if after.Mapped != before.Mapped {
		t.Fatalf("mapped %d bytes before, %d after: the mappings themselves must stay", before.Mapped, after.Mapped)
	}
	// Code and read-only data fault back in: this runs code that was dropped and reads constants.
	if got := strings.ToUpper(smapsSample[:8]); got != "00400000" {
		t.Fatalf("read-only data after release: %q", got)
	}
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		t.Fatal(err)
	}
	again, err := Resident()
	if err != nil {
		t.Fatal(err)
	}
	if again.Resident == 0 {
		t.Fatal("running after the release faults pages back in, so some are resident")
	}
}
