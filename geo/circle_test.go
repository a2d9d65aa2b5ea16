package geo

import (
	"math"
	"testing"
)

// destination returns the point at distance d meters from p along the
// initial bearing (degrees clockwise from north), on the same sphere as
// DistanceM, with the longitude brought back into [-180, 180].
func destination(p Point, bearingDeg, d float64) Point {
	phi1 := p.Lat * degToRad
	lam1 := p.Lon * degToRad
	theta := bearingDeg * degToRad
	delta := d / EarthRadiusM
	phi2 := math.Asin(math.Sin(phi1)*math.Cos(delta) + math.Cos(phi1)*math.Sin(delta)*math.Cos(theta))
	lam2 := lam1 + math.Atan2(math.Sin(theta)*math.Sin(delta)*math.Cos(phi1), math.Cos(delta)-math.Sin(phi1)*math.Sin(phi2))
	return Point{Lat: phi2 / degToRad, Lon: wrapLon(lam2 / degToRad)}
}

func TestDistanceM(t *testing.T) {
	halfCircumference := math.Pi * EarthRadiusM
	tests := []struct {
		name string
		a, b Point
		want float64
		tol  float64
	}{
		{"same point", Point{40.7, -74}, Point{40.7, -74}, 0, 0},
		{"one degree of latitude", Point{0, 0}, Point{1, 0}, 111195.08, 0.005},
		{"one degree of latitude at 60N", Point{60, 10}, Point{61, 10}, 111195.08, 0.005},
		{"one degree of longitude at the equator", Point{0, 0}, Point{0, 1}, 111195.08, 0.005},
		{"quarter of the equator", Point{0, 0}, Point{0, 90}, halfCircumference / 2, 1e-6},
		{"antipodes on the equator", Point{0, 0}, Point{0, 180}, halfCircumference, 1e-6},
		{"pole to pole", Point{90, 0}, Point{-90, 0}, halfCircumference, 1e-6},
		{"nearly antipodal", Point{0, 0}, Point{1e-9, 180}, halfCircumference - 1e-9*degToRad*EarthRadiusM, 1e-3},
		{"across the antimeridian", Point{0, 179.999}, Point{0, -179.999}, 0.002 * degToRad * EarthRadiusM, 1e-6},
		{"pole, any longitude", Point{90, 0}, Point{90, 123}, 0, 1e-9},
		// 3983 km is the usual ellipsoidal figure; the sphere says 3974.3 km.
		{"JFK to LAX", Point{40.6413, -73.7781}, Point{33.9416, -118.4085}, 3974.34e3, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DistanceM(tt.a, tt.b)
			if math.Abs(got-tt.want) > tt.tol {
				t.Errorf("DistanceM(%v, %v) = %.6f, want %.6f ± %g", tt.a, tt.b, got, tt.want, tt.tol)
			}
			if back := DistanceM(tt.b, tt.a); math.Abs(back-got) > 1e-6 {
				t.Errorf("DistanceM(%v, %v) = %.6f, but the other way %.6f", tt.a, tt.b, got, back)
			}
		})
	}
}

func TestCircleContainsAtTheEdge(t *testing.T) {
	const cm = 0.01
	centres := []struct {
		name   string
		c      Point
		radius float64
	}{
		{"equator", Point{0, 10}, 1000},
		{"60N", Point{60, 25}, 5000},
		{"beside the antimeridian", Point{0, 179.9995}, 150},
		{"southern, large", Point{-33.87, 151.21}, 50000},
		{"near the north pole", Point{89.99, 0}, 2000},
	}
	for _, cc := range centres {
		c := &Circle{Center: cc.c, RadiusM: cc.radius}
		for bearing := 0.0; bearing < 360; bearing += 45 {
			for _, tt := range []struct {
				name string
				d    float64
				want bool
			}{
				{"just inside", cc.radius - cm, true},
				{"just outside", cc.radius + cm, false},
			} {
				p := destination(cc.c, bearing, tt.d)
				if got := c.Contains(p); got != tt.want {
					t.Errorf("%s, bearing %g, %s: Contains(%v) = %v, want %v (distance %.4f m, radius %g)",
						cc.name, bearing, tt.name, p, got, tt.want, DistanceM(cc.c, p), cc.radius)
				}
			}
		}
	}
}

func TestCircleContains(t *testing.T) {
	onEdge := Point{0.01, 0}
	tests := []struct {
		name string
		c    Circle
		p    Point
		want bool
	}{
		{"centre", Circle{Point{40, -74}, 10}, Point{40, -74}, true},
		{"exactly on the edge counts", Circle{Point{0, 0}, DistanceM(Point{0, 0}, onEdge)}, onEdge, true},
		{"antimeridian: point on the other side", Circle{Point{0, 179.999}, 300}, Point{0, -179.999}, true},
		{"antimeridian: other side, too far", Circle{Point{0, 179.999}, 200}, Point{0, -179.999}, false},
		{"pole inside, any longitude", Circle{Point{89.95, 10}, 10000}, Point{90, -170}, true},
		{"NaN is outside", Circle{Point{0, 0}, 50000}, Point{math.NaN(), 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Contains(tt.p); got != tt.want {
				t.Errorf("Contains(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestCircleBBox(t *testing.T) {
	dDeg := func(r float64) float64 { return r / EarthRadiusM / degToRad }
	tests := []struct {
		name string
		c    Circle
		want [4]float64
		tol  float64
	}{
		{"equator", Circle{Point{0, 10}, 1000}, [4]float64{10 - dDeg(1000), -dDeg(1000), 10 + dDeg(1000), dDeg(1000)}, 1e-12},
		{"centred on the north pole", Circle{Point{90, 0}, 1000}, [4]float64{-180, 90 - dDeg(1000), 180, 90}, 1e-12},
		{"holding the north pole", Circle{Point{89.9, 45}, 20000}, [4]float64{-180, 89.9 - dDeg(20000), 180, 90}, 1e-12},
		{"holding the south pole", Circle{Point{-89.95, 0}, 10000}, [4]float64{-180, -90, 180, -89.95 + dDeg(10000)}, 1e-12},
		{"across the antimeridian", Circle{Point{0, 179.9}, 50000},
			[4]float64{179.9 - dDeg(50000), -dDeg(50000), 179.9 + dDeg(50000) - 360, dDeg(50000)}, 1e-12},
		{"across the antimeridian from the west", Circle{Point{10, -179.95}, 20000},
			[4]float64{180.05 - math.Asin(math.Sin(20000/EarthRadiusM)/math.Cos(10*degToRad))/degToRad, 10 - dDeg(20000),
				-179.95 + math.Asin(math.Sin(20000/EarthRadiusM)/math.Cos(10*degToRad))/degToRad, 10 + dDeg(20000)}, 1e-12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.BBox()
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > tt.tol {
					t.Fatalf("BBox() = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestCircleBBoxHoldsTheCircle walks the edge of many circles: every edge
// point must be inside the box, and the box must be tight (some edge point
// comes within a few meters of each side that is not a clamp).
func TestCircleBBoxHoldsTheCircle(t *testing.T) {
	inLon := func(bb [4]float64, lon float64) bool {
		if bb[0] <= bb[2] {
			return lon >= bb[0] && lon <= bb[2]
		}
		return lon >= bb[0] || lon <= bb[2]
	}
	lonGap := func(a, b float64) float64 { return math.Abs(wrapLon(a - b)) }
	for _, lat := range []float64{-89.9, -75, -30, 0, 0.5, 45, 60, 80, 89.5, 89.99} {
		for _, lon := range []float64{-180, -179.99, -120, 0, 33.3, 179.8, 180} {
			for _, r := range []float64{MinRadiusM, 777, 12345, MaxRadiusM} {
				c := &Circle{Center: Point{lat, lon}, RadiusM: r}
				bb := c.BBox()
				if !(bb[1] <= bb[3]) || bb[1] < -90 || bb[3] > 90 || math.Abs(bb[0]) > 180 || math.Abs(bb[2]) > 180 {
					t.Fatalf("circle %v: BBox() = %v is malformed", c, bb)
				}
				near := [4]float64{math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)}
				for bearing := 0.0; bearing < 360; bearing += 0.25 {
					p := destination(c.Center, bearing, r)
					if p.Lat < bb[1]-1e-9 || p.Lat > bb[3]+1e-9 || !inLon(bb, p.Lon) && lonGap(p.Lon, bb[0]) > 1e-9 && lonGap(p.Lon, bb[2]) > 1e-9 {
						t.Fatalf("circle %v: edge point %v (bearing %g) is outside BBox() = %v", c, p, bearing, bb)
					}
					near[0] = min(near[0], lonGap(p.Lon, bb[0])*degToRad*EarthRadiusM*math.Cos(p.Lat*degToRad))
					near[1] = min(near[1], (p.Lat-bb[1])*degToRad*EarthRadiusM)
					near[2] = min(near[2], lonGap(p.Lon, bb[2])*degToRad*EarthRadiusM*math.Cos(p.Lat*degToRad))
					near[3] = min(near[3], (bb[3]-p.Lat)*degToRad*EarthRadiusM)
				}
				fullLon := bb[0] == -180 && bb[2] == 180
				for side, gap := range near {
					clamped := (side == 1 && bb[1] == -90) || (side == 3 && bb[3] == 90) || (side%2 == 0 && fullLon)
					// Bearings are 0.25° apart, so an edge point can miss a
					// side by up to r(1-cos 0.125°) plus a little.
					if !clamped && gap > 1+r*3e-6 {
						t.Errorf("circle %v: BBox() = %v is loose on side %d by %.2f m", c, bb, side, gap)
					}
				}
			}
		}
	}
}
