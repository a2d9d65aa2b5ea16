package geo

import (
	"math"
	"testing"
)

func TestOutsideM(t *testing.T) {
	circle := &Fence{Circle: &Circle{Center: Point{Lat: 52.37, Lon: 4.89}, RadiusM: 100}}
	// A 0.01° square at the equator: sides of about 1,112 m.
	square, _, errs := ParsePolygon([]byte(`{"type":"Polygon","coordinates":[[[0,0],[0.01,0],[0.01,0.01],[0,0.01],[0,0]]]}`))
	if errs != nil {
		t.Fatal(errs)
	}
	poly := &Fence{Polygon: square}
	// Across the antimeridian: from 179.99 to -179.99.
	wrap, _, errs := ParsePolygon([]byte(`{"type":"Polygon","coordinates":[[[179.99,0],[-179.99,0],[-179.99,0.01],[179.99,0.01],[179.99,0]]]}`))
	if errs != nil {
		t.Fatal(errs)
	}
	across := &Fence{Polygon: wrap}
	m := EarthRadiusM * degToRad // metres per degree of latitude
	for _, c := range []struct {
		name string
		f    *Fence
		p    Point
		want float64
	}{
		{"circle centre", circle, Point{52.37, 4.89}, 0},
		{"circle 50 m beyond the edge", circle, Point{52.37 + 150/m, 4.89}, 50},
		{"inside the square", poly, Point{0.005, 0.005}, 0},
		{"south of the square", poly, Point{-20 / m, 0.005}, 20},
		{"off a corner", poly, Point{-30 / m, -40 / m}, 50},
		{"east of the square", poly, Point{0.005, 0.01 + 10/m}, 10},
		{"inside across the antimeridian", across, Point{0.005, 180}, 0},
		{"west of it, across", across, Point{0.005, 179.99 - 25/m}, 25},
		{"east of it, across", across, Point{0.005, -179.99 + 25/m}, 25},
	} {
		got := c.f.OutsideM(c.p)
		if math.Abs(got-c.want) > 0.01*c.want+0.05 {
			t.Errorf("%s: %.3f m, want %.3f", c.name, got, c.want)
		}
	}
	var none *Fence
	if !math.IsInf(none.OutsideM(Point{}), 1) {
		t.Error("a nil fence should be infinitely far")
	}
}
