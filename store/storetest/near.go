package storetest

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// testFencesNear: the stores nearest a point come nearest first, as
// circles (a polygon as one enclosing it, not exact), at most limit of
// them, with how far the nearest one left out is; an unknown brand is
// ErrNotFound.
func testFencesNear(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	other := e.newBrand("o")
	// Along a meridian, 0.01° of latitude is 1,112 m: stores 1, 2, 3
	// and 4 km north of placeA, and one of the other brand at placeA.
	north := func(km float64) geo.Point { return geo.Point{Lat: placeA.Lat + km*0.01/1.112, Lon: placeA.Lon} }
	for i, id := range []string{"s1", "s2", "s3"} {
		e.putStore(circleStore(b.ID, id, north(float64(i+1))))
	}
	poly := hotzone.Store{ID: "s4", BrandID: b.ID, Name: "Store s4", Timezone: "UTC",
		Spec: hotzone.FenceSpec{Polygon: json.RawMessage(polygonAround(north(4), 0.001))}}
	f, err := poly.Spec.Build()
	if err != nil {
		t.Fatal(err)
	}
	poly.Fence = f
	e.putStore(poly)
	e.putStore(circleStore(other.ID, "mine", placeA))

	near, left, err := e.s.FencesNear(e.ctx, b.ID, placeA, 2)
	if err != nil {
		t.Fatalf("FencesNear: %v", err)
	}
	ids := make([]string, len(near))
	for i, n := range near {
		ids[i] = n.StoreID
	}
	if !slices.Equal(ids, []string{"s1", "s2"}) {
		t.Fatalf("FencesNear(limit 2) = %v, want s1, s2 (nearest first, the other brand's left out)", ids)
	}
	if n := near[0]; !n.Exact || n.RadiusM != 100 || n.Name != "Store s1" || math.Abs(n.DistanceM-900) > 5 {
		t.Errorf("s1 as near = %+v, want exact, 100 m, about 900 m to its edge", n)
	}
	if math.Abs(left-2900) > 5 {
		t.Errorf("the nearest left out is %.0f m away, want about 2,900 (s3's edge)", left)
	}
	all, left, err := e.s.FencesNear(e.ctx, b.ID, placeA, 10)
	if err != nil || len(all) != 4 || !math.IsInf(left, 1) {
		t.Fatalf("FencesNear(limit 10) = %d stores, left %v, %v; want all 4 and none left", len(all), left, err)
	}
	p := all[3]
	if p.StoreID != "s4" || p.Exact || p.RadiusM < 100 {
		t.Errorf("the polygon as near = %+v, want s4, not exact, a circle around it", p)
	}
	// The circle encloses the polygon: its corners are inside.
	for _, c := range [][2]float64{{-0.001, -0.001}, {0.001, 0.001}} {
		corner := geo.Point{Lat: north(4).Lat + c[0], Lon: north(4).Lon + c[1]}
		if d := geo.DistanceM(p.Center, corner); d > p.RadiusM {
			t.Errorf("a polygon corner is %.0f m from the circle's centre, outside its %.0f m", d, p.RadiusM)
		}
	}
	// Inside a fence, its distance is 0.
	if in, _, err := e.s.FencesNear(e.ctx, b.ID, north(1), 1); err != nil || len(in) != 1 || in[0].StoreID != "s1" || in[0].DistanceM != 0 {
		t.Errorf("FencesNear inside s1 = %+v, %v; want s1 at 0 m", in, err)
	}
	if _, _, err := e.s.FencesNear(e.ctx, "no-such-brand", placeA, 5); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("FencesNear of an unknown brand: %v, want ErrNotFound", err)
	}
}

// polygonAround is a GeoJSON square of half-side d degrees around p.
func polygonAround(p geo.Point, d float64) string {
	ring := [][2]float64{{p.Lon - d, p.Lat - d}, {p.Lon + d, p.Lat - d}, {p.Lon + d, p.Lat + d}, {p.Lon - d, p.Lat + d}, {p.Lon - d, p.Lat - d}}
	buf, _ := json.Marshal(map[string]any{"type": "Polygon", "coordinates": [][][2]float64{ring}})
	return string(buf)
}
