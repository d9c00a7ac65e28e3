package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The chart is a PNG of the size the report promises, whatever the numbers.
func TestWriteChart(t *testing.T) {
	tests := []struct {
		name   string
		points []sizePoint
	}{
		{"three sizes", []sizePoint{
			{namespaces: 500, direct: stats{p50: 4 * time.Millisecond, p99: 24 * time.Millisecond}, proxy: stats{p50: time.Millisecond, p99: 3 * time.Millisecond}},
			{namespaces: 1000, direct: stats{p50: 5 * time.Millisecond, p99: 33 * time.Millisecond}, proxy: stats{p50: time.Millisecond, p99: 7 * time.Millisecond}},
			{namespaces: 2000, direct: stats{p50: 6 * time.Millisecond, p99: 31 * time.Millisecond}, proxy: stats{p50: time.Millisecond, p99: 6 * time.Millisecond}},
		}},
		{"all zero", []sizePoint{{namespaces: 500}, {namespaces: 1000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "chart.png")
			if err := writeChart(path, tt.points); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 400 {
				t.Fatalf("chart is %dx%d", b.Dx(), b.Dy())
			}
			if os.Getenv("CHART_OUT") != "" {
				_ = os.WriteFile(os.Getenv("CHART_OUT"), mustRead(t, path), 0o644)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
