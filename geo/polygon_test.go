package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// mustPolygon parses GeoJSON that the test expects to be valid.
func mustPolygon(t testing.TB, geojson string) *MultiPolygon {
	t.Helper()
	m, _, errs := ParsePolygon([]byte(geojson))
	if errs != nil {
		t.Fatalf("ParsePolygon(%s) = %v, want no errors", geojson, errs)
	}
	return m
}

const (
	squareWithHole = `{"type":"Polygon","coordinates":[
		[[0,0],[10,0],[10,10],[0,10],[0,0]],
		[[4,4],[4,6],[6,6],[6,4],[4,4]]]}`
	twoSquares = `{"type":"MultiPolygon","coordinates":[
		[[[0,0],[1,0],[1,1],[0,1],[0,0]]],
		[[[5,5],[6,5],[6,6],[5,6],[5,5]]]]}`
	// RFC 7946 §3.1.9: cut at the antimeridian into two parts.
	cutAtAntimeridian = `{"type":"MultiPolygon","coordinates":[
		[[[170,-10],[180,-10],[180,10],[170,10],[170,-10]]],
		[[[-180,-10],[-170,-10],[-170,10],[-180,10],[-180,-10]]]]}`
	// One ring whose edges jump across ±180 (the short way).
	jumpingRing = `{"type":"Polygon","coordinates":[
		[[170,-10],[-170,-10],[-170,10],[170,10],[170,-10]]]}`
	jumpingRingFromTheWest = `{"type":"Polygon","coordinates":[
		[[-170,10],[170,10],[170,-10],[-170,-10],[-170,10]]]}`
	// A jumping ring with a hole across the antimeridian and one wholly on
	// the western side, each unwrapped from its own first vertex.
	jumpingRingWithHoles = `{"type":"Polygon","coordinates":[
		[[170,-10],[-170,-10],[-170,10],[170,10],[170,-10]],
		[[-179,-1],[-179,1],[179,1],[179,-1],[-179,-1]],
		[[-175,-1],[-175,1],[-172,1],[-172,-1],[-175,-1]]]}`
)

func TestPolygonContains(t *testing.T) {
	type probe struct {
		name string
		p    Point
		want bool
	}
	tests := []struct {
		name   string
		geo    string
		probes []probe
	}{
		{"square with a hole", squareWithHole, []probe{
			{"inside", Point{2, 2}, true},
			{"in the hole", Point{5, 5}, false},
			{"on the hole's edge", Point{5, 4}, true},
			{"on a hole's vertex", Point{6, 6}, true},
			{"on the outer edge", Point{5, 0}, true},
			{"on an outer vertex", Point{10, 10}, true},
			{"just outside the outer edge", Point{5, -1e-12}, false},
			{"just inside the hole", Point{5, 4 + 1e-12}, false},
			{"outside", Point{5, 11}, false},
			{"NaN", Point{math.NaN(), 5}, false},
		}},
		{"MultiPolygon", twoSquares, []probe{
			{"first part", Point{0.5, 0.5}, true},
			{"second part", Point{5.5, 5.5}, true},
			{"between the parts", Point{3, 3}, false},
		}},
		{"cut at the antimeridian", cutAtAntimeridian, []probe{
			{"east side", Point{0, 175}, true},
			{"west side", Point{0, -175}, true},
			{"on the antimeridian as 180", Point{0, 180}, true},
			{"on the antimeridian as -180", Point{0, -180}, true},
			{"far side of the world", Point{0, 0}, false},
			{"just west of the fence", Point{0, 169.9}, false},
			{"just east of the fence", Point{0, -169.9}, false},
		}},
		{"jumping ring", jumpingRing, []probe{
			{"east side", Point{0, 175}, true},
			{"west side", Point{0, -175}, true},
			{"on the antimeridian as 180", Point{0, 180}, true},
			{"on the antimeridian as -180", Point{0, -180}, true},
			{"on the edge across it", Point{10, -180}, true},
			{"far side of the world", Point{0, 0}, false},
			{"north of it", Point{11, 180}, false},
		}},
		{"jumping ring from the west", jumpingRingFromTheWest, []probe{
			{"east side", Point{0, 175}, true},
			{"west side", Point{0, -175}, true},
			{"far side of the world", Point{0, 0}, false},
		}},
		{"jumping ring with holes", jumpingRingWithHoles, []probe{
			{"in the hole across the antimeridian", Point{0, 180}, false},
			{"in the hole across the antimeridian, west", Point{0, -179.5}, false},
			{"in the western hole", Point{0, -173.5}, false},
			{"between the holes", Point{0, -177}, true},
			{"east of the holes", Point{0, 175}, true},
		}},
	}
	for _, tt := range tests {
		m := mustPolygon(t, tt.geo)
		f := &Fence{Polygon: m}
		for _, pr := range tt.probes {
			t.Run(tt.name+"/"+pr.name, func(t *testing.T) {
				if got := f.Contains(pr.p); got != pr.want {
					t.Errorf("Contains(%v) = %v, want %v", pr.p, got, pr.want)
				}
			})
		}
	}
}

func TestPolygonBBox(t *testing.T) {
	tests := []struct {
		name string
		geo  string
		want [4]float64
	}{
		{"square with a hole", squareWithHole, [4]float64{0, 0, 10, 10}},
		{"MultiPolygon", twoSquares, [4]float64{0, 0, 6, 6}},
		{"cut at the antimeridian", cutAtAntimeridian, [4]float64{170, -10, -170, 10}},
		{"jumping ring", jumpingRing, [4]float64{170, -10, -170, 10}},
		{"jumping ring from the west", jumpingRingFromTheWest, [4]float64{170, -10, -170, 10}},
		{"jumping ring with holes", jumpingRingWithHoles, [4]float64{170, -10, -170, 10}},
		{"parts on both sides, one jumping further", `{"type":"MultiPolygon","coordinates":[
			[[[-180,0],[-170,0],[-170,1],[-180,1],[-180,0]]],
			[[[170,0],[-165,0],[-165,1],[170,1],[170,0]]]]}`, [4]float64{170, 0, -165, 1}},
		{"parts far apart, widest gap across the antimeridian", `{"type":"MultiPolygon","coordinates":[
			[[[-60,0],[-50,0],[-50,1],[-60,1],[-60,0]]],
			[[[50,0],[60,0],[60,1],[50,1],[50,0]]]]}`, [4]float64{-60, 0, 60, 1}},
		{"parts far apart, widest gap at Greenwich by a little", `{"type":"MultiPolygon","coordinates":[
			[[[-100,0],[-90,0],[-90,1],[-100,1],[-100,0]]],
			[[[90,0],[100,0],[100,1],[90,1],[90,0]]]]}`, [4]float64{90, 0, -90, 1}},
		{"parts far apart, widest gap at Greenwich", `{"type":"MultiPolygon","coordinates":[
			[[[-150,0],[-140,0],[-140,1],[-150,1],[-150,0]]],
			[[[140,0],[150,0],[150,1],[140,1],[140,0]]]]}`, [4]float64{140, 0, -140, 1}},
		{"a band around the world", `{"type":"Polygon","coordinates":[
			[[-180,80],[0,80],[180,80],[180,85],[0,85],[-180,85],[-180,80]]]}`, [4]float64{-180, 80, 180, 85}},
		{"touching 180 only", `{"type":"Polygon","coordinates":[
			[[170,0],[180,0],[180,1],[170,1],[170,0]]]}`, [4]float64{170, 0, 180, 1}},
		{"touching -180 only", `{"type":"Polygon","coordinates":[
			[[-180,0],[-170,0],[-170,1],[-180,1],[-180,0]]]}`, [4]float64{-180, 0, -170, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fence{Polygon: mustPolygon(t, tt.geo)}
			if got := f.BBox(); got != tt.want {
				t.Errorf("BBox() = %v, want %v", got, tt.want)
			}
		})
	}
}

// starRing returns a closed ring of n vertices at sorted angles around c,
// each at a random radius between rMin and rMax (degrees): star-shaped
// about c, so never self-crossing.
func starRing(rng *rand.Rand, c [2]float64, n int, rMin, rMax float64) [][2]float64 {
	ring := make([][2]float64, 0, n+1)
	for i := range n {
		a := (float64(i) + 0.2 + 0.6*rng.Float64()) * 2 * math.Pi / float64(n)
		r := rMin + (rMax-rMin)*rng.Float64()
		ring = append(ring, [2]float64{c[0] + r*math.Cos(a), c[1] + r*math.Sin(a)})
	}
	return append(ring, ring[0])
}

func ringJSON(rings ...[][2]float64) string {
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[`)
	for i, r := range rings {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j, p := range r {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "[%v,%v]", p[0], p[1])
		}
		b.WriteByte(']')
	}
	b.WriteString(`]}`)
	return b.String()
}

// TestPolygonContainsAgreesWithOrb checks the hand-written crossing-number
// test against orb's planar.PolygonContains on random star polygons with a
// hole, at random points (which are never exactly on an edge, where the two
// deliberately differ: see doc.go).
func TestPolygonContainsAgreesWithOrb(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		c := [2]float64{rng.Float64()*300 - 150, rng.Float64()*140 - 70}
		// Eight or more outer vertices keep every outer edge further than
		// 0.6 from c, clear of the hole.
		outer := starRing(rng, c, 8+rng.IntN(33), 0.8, 1)
		hole := starRing(rng, c, 3+rng.IntN(10), 0.1, 0.3)
		m := mustPolygon(t, ringJSON(outer, hole))
		op := orb.Polygon{toOrbRing(outer), toOrbRing(hole)}
		for range 500 {
			p := Point{Lat: c[1] + rng.Float64()*2.2 - 1.1, Lon: c[0] + rng.Float64()*2.2 - 1.1}
			want := planar.PolygonContains(op, orb.Point{p.Lon, p.Lat})
			if got := m.Contains(p); got != want {
				t.Fatalf("polygon %v: Contains(%v) = %v, want %v (orb)", ringJSON(outer, hole), p, got, want)
			}
		}
	}
}

func toOrbRing(r [][2]float64) orb.Ring {
	out := make(orb.Ring, len(r))
	for i, p := range r {
		out[i] = orb.Point(p)
	}
	return out
}

// TestPolygonContainsItsVertices: every vertex lies on the boundary, which
// counts as inside, also for vertices of holes and across the antimeridian.
func TestPolygonContainsItsVertices(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, geo := range []string{squareWithHole, twoSquares, cutAtAntimeridian, jumpingRing, jumpingRingWithHoles} {
		m := mustPolygon(t, geo)
		for _, pt := range m.parts {
			for _, r := range pt.rings {
				for _, v := range r.pts {
					p := Point{Lat: v.y, Lon: wrapLon(v.x)}
					if !m.Contains(p) {
						t.Errorf("%s: Contains(%v) = false, want true (a vertex)", geo, p)
					}
				}
			}
		}
	}
	for range 100 {
		c := [2]float64{rng.Float64()*360 - 180, rng.Float64()*160 - 80}
		outer := starRing(rng, c, 3+rng.IntN(30), 0.5, 1)
		for i := range outer {
			outer[i][0] = wrapLon(outer[i][0])
		}
		m := mustPolygon(t, ringJSON(outer))
		for _, v := range outer {
			if p := (Point{Lat: v[1], Lon: v[0]}); !m.Contains(p) {
				t.Errorf("%s: Contains(%v) = false, want true (a vertex)", ringJSON(outer), p)
			}
		}
	}
}
