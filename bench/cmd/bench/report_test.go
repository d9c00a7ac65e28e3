package main

import (
	"strings"
	"testing"
	"time"
)

func testRow(key string, directP50, proxyP50 time.Duration, apiserverCPU, proxyCPU time.Duration) row {
	cpu := func(api, proxy time.Duration) []time.Duration { return []time.Duration{api, 0, proxy} }
	return row{
		res:    &result{w: workload{key: key}},
		direct: stats{p50: directP50, p99: 2 * directP50, rps: 1000, cpuPerReq: cpu(apiserverCPU, 0)},
		proxy:  stats{p50: proxyP50, p99: 2 * proxyP50, rps: 800, cpuPerReq: cpu(0, proxyCPU)},
	}
}

// withAlongside is r with tenant-proxy measured in its rounds too, at proxyP50 and proxyCPU.
func withAlongside(r row, proxyP50, proxyCPU time.Duration) row {
	r.alongside = []stats{{p50: proxyP50, p99: 2 * proxyP50, rps: 800, cpuPerReq: []time.Duration{0, 0, proxyCPU}}}
	return r
}

// Floor and candidate rows are compared with tenant-proxy as measured in the same rounds (INFO), not with
// its own rows, and are never tenant-proxy's own targets.
func TestTargetsWithComparedRows(t *testing.T) {
	ms := time.Millisecond
	const floorInfo, candidateInfo = "- **INFO** tenant-proxy against floorproxy", "- **INFO** candidate build against tenant-proxy"
	tests := []struct {
		name     string
		rows     []row
		info     string   // the start of the INFO line
		wantInfo []string // substrings of that INFO line
		wantNone []string // substrings no target line may contain
	}{
		{
			name: "cert-1 and its floor",
			info: floorInfo,
			rows: []row{
				testRow("cert-1", ms, 1500*time.Microsecond, 800*time.Microsecond, 400*time.Microsecond),
				withAlongside(testRow("floor-cert-1", ms, 1200*time.Microsecond, 800*time.Microsecond, 240*time.Microsecond),
					1300*time.Microsecond, 300*time.Microsecond),
			},
			wantInfo: []string{"tenant-proxy against floorproxy, the least a Go proxy does here, in the same rounds (no target): cert-1 — p50 1.30x vs 1.20x", "proxy CPU 0.300 vs 0.240 ms per request (0.38x vs 0.30x"},
			wantNone: []string{"API server's: floor-cert-1", "1.50x vs"},
		},
		{
			name: "a floor row without tenant-proxy in its rounds",
			info: floorInfo,
			rows: []row{
				testRow("cert-1", ms, 1500*time.Microsecond, 800*time.Microsecond, 400*time.Microsecond),
				testRow("floor-cert-1", ms, 1200*time.Microsecond, 800*time.Microsecond, 240*time.Microsecond),
			},
			wantNone: []string{"tenant-proxy against floorproxy"},
		},
		{
			name:     "no floor measured",
			info:     floorInfo,
			rows:     []row{testRow("cert-1", ms, 1300*time.Microsecond, 800*time.Microsecond, 300*time.Microsecond)},
			wantNone: []string{"floorproxy", "candidate"},
		},
		{
			name: "token-1 and a candidate build",
			info: candidateInfo,
			rows: []row{
				testRow("token-1", ms, 1500*time.Microsecond, 800*time.Microsecond, 400*time.Microsecond),
				withAlongside(testRow("candidate-token-1", ms, 1400*time.Microsecond, 800*time.Microsecond, 270*time.Microsecond),
					1600*time.Microsecond, 300*time.Microsecond),
			},
			wantInfo: []string{"(no target): token-1 — p50 1.40x vs 1.60x", "proxy CPU 0.270 vs 0.300 ms per request (0.90x of tenant-proxy's)"},
			wantNone: []string{"API server's: candidate-token-1", "1.50x vs"},
		},
		{
			name: "a candidate row without tenant-proxy in its rounds",
			info: candidateInfo,
			rows: []row{
				testRow("cert-1", ms, 1500*time.Microsecond, 800*time.Microsecond, 400*time.Microsecond),
				testRow("candidate-cert-1", ms, 1200*time.Microsecond, 800*time.Microsecond, 240*time.Microsecond),
			},
			wantNone: []string{"candidate build against tenant-proxy", "candidate-cert-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := targetsText(targets(tt.rows))
			var infoLine string
			for _, line := range strings.Split(text, "\n") {
				if strings.HasPrefix(line, tt.info) {
					infoLine = line
				}
			}
			for _, want := range tt.wantInfo {
				if !strings.Contains(infoLine, want) {
					t.Errorf("no INFO line with %q:\n%s", want, text)
				}
			}
			for _, unwanted := range tt.wantNone {
				if strings.Contains(text, unwanted) {
					t.Errorf("targets contain %q:\n%s", unwanted, text)
				}
			}
		})
	}
}

// The 200-group target compares the 200-group user with the 2-group user measured in the same rounds, never
// with the cert-1 row, which ran minutes earlier on another load.
func TestGroupsTargetUsesItsOwnRounds(t *testing.T) {
	us := time.Microsecond
	groups := testRow("groups-1", 1400*us, 2070*us, 900*us, 300*us)
	withBaseline := groups
	withBaseline.baseline = &row{res: &result{w: workload{key: "groups-1-baseline"}},
		direct: stats{p50: 1300 * us, cpuPerReq: []time.Duration{0, 0, 0}}, proxy: stats{p50: 1600 * us, cpuPerReq: []time.Duration{0, 0, 0}}}
	loadedCert := testRow("cert-1", 1730*us, 2380*us, 900*us, 300*us) // 2070/2380 would pass
	tests := []struct {
		name string
		rows []row
		want string
	}{
		{"baseline in the same rounds", []row{loadedCert, withBaseline},
			"- **MISS** 200 groups: proxy p50 <= 1.2x the 2-group certificate user's proxy p50 in the same rounds — 2.07 vs 1.60 ms (1.29x); directly 1.40 vs 1.30 ms (1.08x)"},
		{"no baseline", []row{loadedCert, groups},
			"- **MISS** 200 groups: proxy p50 <= 1.2x the 2-group certificate user's proxy p50 in the same rounds — the 2-group user was not measured in its rounds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if text := targetsText(targets(tt.rows)); !strings.Contains(text, tt.want) {
				t.Errorf("want %q in:\n%s", tt.want, text)
			}
		})
	}
}

// A workload's baseline is its own row in the results table, right after the workload's.
func TestResultsTableShowsBaseline(t *testing.T) {
	r := testRow("groups-1", time.Millisecond, 2*time.Millisecond, time.Millisecond, time.Millisecond)
	r.res.w.name = "200 groups"
	b := testRow("groups-1-baseline", time.Millisecond, 1500*time.Microsecond, time.Millisecond, time.Millisecond)
	b.res.w.name = "2 groups, same rounds"
	r.baseline = &b
	table := resultsTable([]row{r})
	i, j := strings.Index(table, "| 200 groups"), strings.Index(table, "| 2 groups, same rounds")
	if i < 0 || j < i {
		t.Fatalf("baseline row missing or before its workload:\n%s", table)
	}
	if !strings.Contains(table[j:], "1.50x") {
		t.Errorf("baseline row without its own ratio:\n%s", table)
	}
}
