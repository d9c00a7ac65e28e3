package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartPath is where the latency chart goes: next to the results.
func chartPath(out string) string { return filepath.Join(filepath.Dir(out), "latency-vs-size.png") }

// chartLink is the chart's path relative to the results file, which sits in the same directory.
func chartLink(path string) string { return filepath.Base(path) }

// writeChart draws the owner's namespace list latency (p50 and p99, direct and via the proxy) against the
// number of namespaces in the cluster.
func writeChart(path string, points []sizePoint) error {
	p := plot.New()
	p.Title.Text = "Owner's namespace list (10 namespaces) against cluster size"
	p.X.Label.Text = "namespaces in the cluster"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true

	series := []struct {
		name  string
		value func(sizePoint) float64
		color color.RGBA
		dash  bool
	}{
		{"direct p50 (admin, label selector)", func(s sizePoint) float64 { return ms(s.direct.p50) }, color.RGBA{R: 31, G: 119, B: 180, A: 255}, false},
		{"direct p99", func(s sizePoint) float64 { return ms(s.direct.p99) }, color.RGBA{R: 31, G: 119, B: 180, A: 255}, true},
		{"proxy p50 (owner)", func(s sizePoint) float64 { return ms(s.proxy.p50) }, color.RGBA{R: 214, G: 39, B: 40, A: 255}, false},
		{"proxy p99", func(s sizePoint) float64 { return ms(s.proxy.p99) }, color.RGBA{R: 214, G: 39, B: 40, A: 255}, true},
	}
	for _, s := range series {
		xys := make(plotter.XYs, len(points))
		for i, pt := range points {
			xys[i].X, xys[i].Y = float64(pt.namespaces), s.value(pt)
		}
		line, dots, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		line.Color, dots.Color = s.color, s.color
		line.Width = vg.Points(2)
		dots.Shape = draw.CircleGlyph{}
		if s.dash {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
			dots.Shape = draw.SquareGlyph{}
		}
		p.Add(line, dots)
		p.Legend.Add(s.name, line, dots)
	}
	ticks := make([]plot.Tick, len(points))
	for i, pt := range points {
		ticks[i] = plot.Tick{Value: float64(pt.namespaces), Label: fmt.Sprint(pt.namespaces)}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := p.Save(9*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

func ms(d interface{ Seconds() float64 }) float64 { return d.Seconds() * 1000 }
