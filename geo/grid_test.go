package geo

import (
	"math/rand/v2"
	"testing"
)

// TestCellsCoverEveryPoint: every point inside a fence falls in a cell
// that CellsCovering names for the fence's box, across the antimeridian
// and near the poles too.
func TestCellsCoverEveryPoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fences := []*Fence{
		{Circle: &Circle{Center: Point{40.7128, -74.006}, RadiusM: 5000}},
		{Circle: &Circle{Center: Point{0.5, 179.995}, RadiusM: 3000}}, // across ±180
		{Circle: &Circle{Center: Point{-12, -179.999}, RadiusM: 800}}, // reaching −180
		{Circle: &Circle{Center: Point{89.99, 10}, RadiusM: 5000}},    // holding the pole
		{Circle: &Circle{Center: Point{-89.995, -60}, RadiusM: 2000}}, // the south pole
		{Circle: &Circle{Center: Point{0.005, 0.005}, RadiusM: 10}},   // inside one cell
		{Circle: &Circle{Center: Point{10.0, 20.0}, RadiusM: 2000}},   // on cell edges
	}
	for i, f := range fences {
		cells := map[Cell]bool{}
		CellsCovering(f.BBox(), 0, func(c Cell) bool {
			if cells[c] {
				t.Fatalf("fence %d: cell %x named twice", i, c)
			}
			cells[c] = true
			return true
		})
		bb := f.BBox()
		found := 0
		for range 20000 {
			// Points drawn around the fence's box; those inside must be
			// in a named cell.
			p := Point{Lat: bb[1] - 0.01 + rng.Float64()*(bb[3]-bb[1]+0.02), Lon: bb[0] - 0.01 + rng.Float64()*0.02}
			if bb[0] <= bb[2] {
				p.Lon = bb[0] - 0.01 + rng.Float64()*(bb[2]-bb[0]+0.02)
			} else {
				p.Lon = bb[0] - 0.01 + rng.Float64()*(bb[2]+360-bb[0]+0.02)
			}
			if p.Lon > 180 {
				p.Lon -= 360
			}
			p.Lat = min(max(p.Lat, -90), 90)
			if !p.Valid() || !f.Contains(p) {
				continue
			}
			found++
			if !cells[CellOf(p)] {
				t.Fatalf("fence %d: %+v is inside but its cell %x is not covered (%d cells)", i, p, CellOf(p), len(cells))
			}
		}
		if found == 0 {
			t.Errorf("fence %d: no point drawn inside; the test proves nothing", i)
		}
	}
	// The antimeridian is one line: −180 and +180 share a cell.
	if CellOf(Point{Lat: 3, Lon: -180}) != CellOf(Point{Lat: 3, Lon: 180}) {
		t.Error("−180 and +180 fall in different cells")
	}
	// A box too big to walk says so instead.
	if n := CellsCovering([4]float64{-10, -10, 10, 10}, 1000, func(Cell) bool { t.Fatal("walked a box over the limit"); return false }); n <= 1000 {
		t.Errorf("CellsCovering over the limit answered %d", n)
	}
}
