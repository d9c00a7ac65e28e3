package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chartPath is where the latency chart goes: next to the results.
func chartPath(out string) string { return filepath.Join(filepath.Dir(out), "latency-vs-size.png") }

// chartLink is the chart's path relative to the results file, which sits in the same directory.
func chartLink(path string) string { return filepath.Base(path) }

// writeChart draws the owner's namespace list latency against the number of namespaces in the cluster:
// p50 on the left, p99 on the right (on one axis the p99 would flatten the p50 lines), direct and proxy in
// each.
func writeChart(path string, points []sizePoint) error {
	blue := color.RGBA{R: 31, G: 119, B: 180, A: 255}
	red := color.RGBA{R: 214, G: 39, B: 40, A: 255}
	panel := func(title string, direct, proxy func(sizePoint) time.Duration) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "namespaces in the cluster (the owner has 10)"
		p.Y.Label.Text = "ms"
		p.Y.Min = 0
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = true, true
		for _, s := range []struct {
			name  string
			value func(sizePoint) time.Duration
			color color.RGBA
			shape draw.GlyphDrawer
		}{
			{"direct: admin, labelSelector=capsule.clastix.io/tenant", direct, blue, draw.SquareGlyph{}},
			{"proxy: the tenant owner", proxy, red, draw.CircleGlyph{}},
		} {
			xys := make(plotter.XYs, len(points))
			for i, pt := range points {
				xys[i].X, xys[i].Y = float64(pt.namespaces), float64(s.value(pt))/float64(time.Millisecond)
				p.Y.Max = max(p.Y.Max, xys[i].Y*1.25) // room for the legend
			}
			line, dots, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, err
			}
			line.Color, dots.Color, dots.Shape = s.color, s.color, s.shape
			line.Width = vg.Points(2)
			p.Add(line, dots)
			p.Legend.Add(s.name, line, dots)
		}
		ticks := make([]plot.Tick, len(points))
		for i, pt := range points {
			ticks[i] = plot.Tick{Value: float64(pt.namespaces), Label: fmt.Sprint(pt.namespaces)}
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		return p, nil
	}
	p50, err := panel("Owner's namespace list: p50", func(s sizePoint) time.Duration { return s.direct.p50 },
		func(s sizePoint) time.Duration { return s.proxy.p50 })
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	p99, err := panel("Owner's namespace list: p99", func(s sizePoint) time.Duration { return s.direct.p99 },
		func(s sizePoint) time.Duration { return s.proxy.p99 })
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	img := vgimg.New(13*vg.Inch, 5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 8, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 5}
	plots := [][]*plot.Plot{{p50, p99}}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots[0] {
		plots[0][j].Draw(canvases[0][j])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}
