package geo

import (
	"math"
	"slices"
	"testing"
)

// FuzzParsePolygon: ParsePolygon never panics; it either fails with at
// least one error or accepts, and then its canonical form parses again to
// the same bytes, its box is finite and ordered, and every vertex of the
// input (which lies on the boundary) is inside the fence and found by the
// Index at that vertex.
func FuzzParsePolygon(f *testing.F) {
	for _, seed := range []string{
		`{"type":"Polygon","coordinates":[` + unitSquare + `]}`,
		squareWithHole, twoSquares, cutAtAntimeridian, jumpingRing, jumpingRingFromTheWest, jumpingRingWithHoles,
		`{"type":"Polygon","coordinates":[[[0,0],[2,2],[4,0],[4,4],[2,2],[0,4],[0,0]]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[2,2],[4,4],[4,0],[2,2],[0,4],[0,0]]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[10,10],[10,0],[0,10],[0,0]]]}`,
		`{"type":"Polygon","coordinates":[` + unitSquare + `,[[0,5],[1,6],[0,7],[-1,6],[0,5]]]}`,
		`{"type":"Polygon","coordinates":[` + unitSquare + `,[[0,5],[3,4],[3,6],[0,5]]]}`,
		`{"type":"Polygon","coordinates":[[[0,80],[120,80],[-120,80],[0,80]]]}`,
		`{"type":"Polygon","coordinates":[[[-180,80],[0,80],[180,80],[180,85],[0,85],[-180,85],[-180,80]]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1e-300,0],[1e-300,1e-300],[0,0]]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,0],[1e400,1],[0,0]]]}`,
		`{"typ\u0065":"Polygon","Coordinates":[],"bbox":[1,2]}`,
		`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[]]}`,
		`{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]} x`,
		`[1,2,3]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, canon, errs := ParsePolygon(raw)
		if m == nil {
			if len(errs) == 0 || canon != nil {
				t.Fatalf("ParsePolygon(%q) = nil, %q, %v: a rejection needs errors and no GeoJSON", raw, canon, errs)
			}
			return
		}
		if errs != nil {
			t.Fatalf("ParsePolygon(%q) returned a polygon and errors %v", raw, errs)
		}
		m2, canon2, errs := ParsePolygon(canon)
		if errs != nil || string(canon2) != string(canon) {
			t.Fatalf("ParsePolygon(%s) = %s, %v, want the canonical form back", canon, canon2, errs)
		}
		bb := m.BBox()
		for _, v := range bb {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("BBox() = %v is not finite", bb)
			}
		}
		if !(bb[1] <= bb[3]) || bb[1] < -90 || bb[3] > 90 || bb[0] < -180 || bb[0] > 180 || bb[2] < -180 || bb[2] > 180 {
			t.Fatalf("BBox() = %v is out of order or range", bb)
		}
		if m2.BBox() != bb {
			t.Fatalf("BBox() = %v, but %v after a round trip", bb, m2.BBox())
		}
		ix := NewIndex()
		fence := &Fence{Polygon: m}
		ix.Set("f", fence)
		checked := 0
		for _, pt := range m.parts {
			for _, r := range pt.rings {
				for _, v := range r.pts {
					if checked++; checked > 64 {
						return
					}
					p := Point{Lat: v.y, Lon: wrapLon(v.x)}
					if !fence.Contains(p) {
						t.Fatalf("%s: Contains(%v) = false, want true (a vertex)", canon, p)
					}
					if got := ix.Search(p, nil); !slices.Equal(got, []string{"f"}) {
						t.Fatalf("%s: Search(%v) = %v, want [f] (a vertex)", canon, p, got)
					}
				}
			}
		}
	})
}

// FuzzCircle: ParseCircle never panics and accepts exactly the contract's
// ranges; an accepted circle contains its centre, has an ordered finite
// box, and any point it contains lies in that box and is found by the
// Index, while a point it does not contain is not.
func FuzzCircle(f *testing.F) {
	f.Add(40.7128, -74.0060, 800.0, 40.7130, -74.0050)
	f.Add(0.0, 179.999, 300.0, 0.0, -179.999)
	f.Add(89.95, 10.0, 10000.0, 90.0, -170.0)
	f.Add(-90.0, 0.0, 50000.0, -89.7, 45.0)
	f.Add(0.0, -180.0, 10.0, 0.0, 180.0)
	f.Add(math.NaN(), 0.0, 100.0, 0.0, 0.0)
	f.Add(0.0, 0.0, 9.99, 0.0, 0.0)
	f.Add(91.0, 181.0, 50001.0, 0.0, 0.0)
	f.Fuzz(func(t *testing.T, lat, lon, r, plat, plon float64) {
		c, errs := ParseCircle(lat, lon, r)
		valid := lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 && r >= MinRadiusM && r <= MaxRadiusM
		if (c != nil) != valid || (errs == nil) != valid {
			t.Fatalf("ParseCircle(%v, %v, %v) = %v, %v, want accepted = %v", lat, lon, r, c, errs, valid)
		}
		if c == nil {
			return
		}
		if !c.Contains(c.Center) {
			t.Fatalf("Contains(%v) = false for the centre", c.Center)
		}
		bb := c.BBox()
		if !(bb[1] <= bb[3]) || bb[1] < -90 || bb[3] > 90 || !(bb[0] >= -180 && bb[0] <= 180 && bb[2] >= -180 && bb[2] <= 180) {
			t.Fatalf("BBox() = %v is out of order or range", bb)
		}
		// Probe near the circle as often as far from it.
		p := Point{Lat: plat, Lon: plon}
		if !p.Valid() {
			p = destination(c.Center, math.Mod(math.Abs(plat), 360), math.Mod(math.Abs(plon), 2*r))
		}
		if !p.Valid() {
			return
		}
		ix := NewIndex()
		ix.Set("c", &Fence{Circle: c})
		got := ix.Search(p, nil)
		if want := c.Contains(p); want != (len(got) == 1) {
			t.Fatalf("circle %v: Search(%v) = %v, but Contains = %v (distance %v)", c, p, got, want, DistanceM(c.Center, p))
		}
	})
}

// FuzzRingCrossings builds a ring, or an outer ring and a hole, from small
// integer coordinates, where collinear edges, touching vertices and
// crossings through vertices are the rule rather than the exception, and
// checks every accepted polygon against independent properties on a fine
// grid of points: a ring that does not cross itself winds around every
// point off it at most once, and always the same way; the hole's points
// are in the outer ring; and Contains agrees with the winding numbers.
func FuzzRingCrossings(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 0, 4, 4, 0, 4})
	f.Add([]byte{0, 0, 0, 2, 2, 4, 0, 4, 4, 2, 2, 0, 4})
	f.Add([]byte{0, 0, 0, 2, 2, 4, 4, 4, 0, 2, 2, 0, 4})
	f.Add([]byte{0, 0, 0, 4, 4, 4, 0, 0, 4})
	f.Add([]byte{0, 0, 0, 3, 0, 3, 3, 1, 3, 1, 1, 2, 1, 2, 2, 0, 2})
	// An outer square and a hole touching it, then one crossing it.
	f.Add([]byte{3, 0, 0, 5, 0, 5, 5, 0, 5, 0, 2, 2, 1, 2, 3})
	f.Add([]byte{3, 0, 0, 4, 0, 4, 4, 0, 4, 3, 1, 5, 1, 5, 2, 3, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 7 || len(data) > 33 {
			return
		}
		// The first byte, if odd, splits the rest into an outer ring and a
		// hole, so crossings between rings get exercised too.
		split := len(data)
		if data[0]%2 == 1 && len(data) >= 13 {
			split = 1 + 2*(3+int(data[0]/2)%((len(data)-1)/2-5))
		}
		var rings [][][2]float64
		for _, part := range [][]byte{data[1:split], data[split:]} {
			var ring [][2]float64
			for i := 0; i+1 < len(part); i += 2 {
				ring = append(ring, [2]float64{float64(part[i] % 6), float64(part[i+1] % 6)})
			}
			if len(ring) >= 3 {
				rings = append(rings, append(ring, ring[0]))
			}
		}
		if len(rings) == 0 {
			return
		}
		m, _, errs := ParsePolygon([]byte(ringJSON(rings...)))
		if errs != nil {
			return
		}
		rs := m.parts[0].rings
		for i := range 48 {
			for j := range 48 {
				// Off the integer lattice and off every line through two
				// lattice points, so never on a ring.
				p := vec{(float64(i) + 0.3719) / 8, (float64(j) + 0.6173) / 8}
				for k, r := range rs {
					if w := winding(r.pts, p); w < -1 || w > 1 {
						t.Fatalf("accepted rings %v: ring %d winds %d times around %v: it crosses itself", rings, k, w, p)
					}
				}
				if len(rs) > 1 && winding(rs[1].pts, p) != 0 && winding(rs[0].pts, p) == 0 {
					t.Fatalf("accepted rings %v: %v is in the hole but not in the outer ring", rings, p)
				}
				if in := winding(rs[0].pts, p) != 0 && (len(rs) == 1 || winding(rs[1].pts, p) == 0); m.Contains(Point{p.y, p.x}) != in {
					t.Fatalf("accepted rings %v: Contains(%v) = %v, want %v by winding numbers", rings, p, !in, in)
				}
			}
		}
		for k, r := range rs {
			signs := map[int]bool{}
			for i := range 48 {
				for j := range 48 {
					signs[winding(r.pts, vec{(float64(i) + 0.3719) / 8, (float64(j) + 0.6173) / 8})] = true
				}
			}
			if signs[1] && signs[-1] {
				t.Fatalf("accepted rings %v: ring %d winds both ways: it crosses itself", rings, k)
			}
		}
	})
}

// winding returns how many times the closed ring pts winds around p.
func winding(pts []vec, p vec) int {
	w := 0
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		if a.y <= p.y {
			if b.y > p.y && orient(a, b, p) > 0 {
				w++
			}
		} else if b.y <= p.y && orient(a, b, p) < 0 {
			w--
		}
	}
	return w
}
