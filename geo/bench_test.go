package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

const metersPerDegree = EarthRadiusM * degToRad

// area is a lat/lon rectangle that benchmarks scatter fences and points in.
type area struct{ lat0, lon0, dLat, dLon float64 }

// areaFor returns a square area around 40°N whose size grows with the
// fence count, about 5 km² per fence: 70 km across (a metro) for 1,000
// fences, 700 km (a country) for 100,000. With the fence sizes below that
// puts a point in 0 to 3 candidate boxes, as in real deployments.
func areaFor(fences int) area {
	sideM := math.Sqrt(float64(fences) * 5e6)
	dLat := sideM / metersPerDegree
	return area{lat0: 40 - dLat/2, lon0: -80 - dLat/2/math.Cos(40*degToRad), dLat: dLat, dLon: dLat / math.Cos(40*degToRad)}
}

func (a area) point(rng *rand.Rand) Point {
	return Point{Lat: a.lat0 + rng.Float64()*a.dLat, Lon: a.lon0 + rng.Float64()*a.dLon}
}

// benchFence returns a realistic fence at c: nine in ten are circles of
// 100–2000 m, the rest polygons of 8–40 vertices about 200–1500 m across.
func benchFence(tb testing.TB, rng *rand.Rand, c Point) *Fence {
	if rng.IntN(10) > 0 {
		return circleFence(c.Lat, c.Lon, 100+rng.Float64()*1900)
	}
	rDeg := (100 + rng.Float64()*650) / metersPerDegree
	ring := starRing(rng, [2]float64{c.Lon, c.Lat}, 8+rng.IntN(33), rDeg*0.6, rDeg)
	for i := range ring {
		// Stretch east-west so the polygon is as wide in meters as tall.
		ring[i][0] = c.Lon + (ring[i][0]-c.Lon)/math.Cos(c.Lat*degToRad)
	}
	return polygonFence(tb, ringJSON(ring))
}

func BenchmarkIndexSearch(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("fences=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			ar := areaFor(n)
			ids := make([]string, n)
			fences := make([]*Fence, n)
			for i := range n {
				ids[i], fences[i] = fmt.Sprintf("store-%d", i), benchFence(b, rng, ar.point(rng))
			}
			ix := NewIndex()
			ix.SetMany(ids, fences)
			pts := make([]Point, 4096)
			for i := range pts {
				pts[i] = ar.point(rng)
			}
			dst := make([]string, 0, 16)
			hits := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = ix.Search(pts[i&4095], dst[:0])
				hits += len(dst)
				i++
			}
			b.ReportMetric(float64(hits)/float64(i), "hits/op")
		})
	}
}

func BenchmarkParsePolygon(b *testing.B) {
	for _, bc := range []struct{ name, geo string }{
		{"circle10000", `{"type":"Polygon","coordinates":[` + circleRing(Point{40.7, -74}, 0.05, MaxPolygonPositions) + `]}`},
		{"serpentine10000", serpentine(MaxPolygonPositions)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			raw := []byte(bc.geo)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, errs := ParsePolygon(raw); errs != nil {
					b.Fatal(errs)
				}
			}
		})
	}
}

// BenchmarkPolygonContains measures the exact test against orb's, on the
// same 40-vertex polygon and points: the figure doc.go quotes.
func BenchmarkPolygonContains(b *testing.B) {
	rng := rand.New(rand.NewPCG(13, 14))
	c := [2]float64{-74, 40.7}
	ring := starRing(rng, c, 40, 0.006, 0.01)
	m := mustPolygon(b, ringJSON(ring))
	op := orb.Polygon{toOrbRing(ring)}
	pts := make([]Point, 1024)
	for i := range pts {
		pts[i] = Point{Lat: c[1] + rng.Float64()*0.02 - 0.01, Lon: c[0] + rng.Float64()*0.02 - 0.01}
	}
	b.Run("geo", func(b *testing.B) {
		i := 0
		for b.Loop() {
			m.Contains(pts[i&1023])
			i++
		}
	})
	b.Run("orb", func(b *testing.B) {
		i := 0
		for b.Loop() {
			p := pts[i&1023]
			planar.PolygonContains(op, orb.Point{p.Lon, p.Lat})
			i++
		}
	})
}
