package main

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProxyProcs(t *testing.T) {
	for _, c := range []struct{ available, want int }{
		{1, 1}, {2, 1}, {4, 1}, {7, 1}, {8, 2}, {16, 4}, {64, 16},
	} {
		if got := proxyProcs(c.available); got != c.want {
			t.Errorf("proxyProcs(%d) = %d, want %d", c.available, got, c.want)
		}
	}
}

// TestBuiltBinaryKeepsSysmonAwake checks that the binary `make build` links (the one `make run`, the e2e tests
// and the bench start) carries the runtime's GODEBUG default from the Makefile, and that cmd/go has no default
// of its own for it (compatibility settings for an older go line in go.mod): ours, linked after it, would
// silently drop those.
func TestBuiltBinaryKeepsSysmonAwake(t *testing.T) {
	dir := os.Getenv("TENANT_PROXY_BIN")
	if dir == "" {
		t.Skip("TENANT_PROXY_BIN is not set: run through `make test`, which builds the binary")
	}
	info, err := buildinfo.ReadFile(filepath.Join(dir, "tenant-proxy"))
	if err != nil {
		t.Fatalf("build information: %v", err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if want := "-X runtime.godebugDefault=schedtrace=2147483647"; !strings.Contains(settings["-ldflags"], want) {
		t.Errorf("-ldflags = %q, want it to contain %q", settings["-ldflags"], want)
	}
	if d, ok := settings["DefaultGODEBUG"]; ok {
		t.Errorf("cmd/go has a GODEBUG default %q, which the Makefile's -X replaces: add it to PROXY_LDFLAGS", d)
	}
}
