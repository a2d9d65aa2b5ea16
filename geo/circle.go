package geo

import (
	"fmt"
	"math"
)

// Radius limits for circle fences, fixed by the contract.
const (
	MinRadiusM = 10
	MaxRadiusM = 50000
)

// Circle is a fence of all points whose great-circle distance to Center is
// at most RadiusM.
type Circle struct {
	Center  Point
	RadiusM float64
}

// ParseCircle validates a circle fence: lat in [-90, 90], lon in
// [-180, 180], radiusM in [MinRadiusM, MaxRadiusM], none of them NaN or
// infinite. Errors name "lat", "lon" and "radius_m"; all of them are
// reported at once so a client can fix its request in one round.
func ParseCircle(lat, lon, radiusM float64) (*Circle, []FieldError) {
	var errs []FieldError
	if msg := rangeProblem(lat, -90, 90); msg != "" {
		errs = append(errs, FieldError{Field: "lat", Message: msg})
	}
	if msg := rangeProblem(lon, -180, 180); msg != "" {
		errs = append(errs, FieldError{Field: "lon", Message: msg})
	}
	if msg := rangeProblem(radiusM, MinRadiusM, MaxRadiusM); msg != "" {
		errs = append(errs, FieldError{Field: "radius_m", Message: msg})
	}
	if errs != nil {
		return nil, errs
	}
	return &Circle{Center: Point{Lat: lat, Lon: lon}, RadiusM: radiusM}, nil
}

// rangeProblem returns why v is not a finite number in [lo, hi], or "".
func rangeProblem(v, lo, hi float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "must be a finite number"
	}
	if v < lo || v > hi {
		return fmt.Sprintf("must be between %g and %g", lo, hi)
	}
	return ""
}

// Contains reports whether p lies in c: exactly DistanceM(c.Center, p) <=
// c.RadiusM, so that the distance an API reports and the inside/outside
// answer can never disagree.
func (c *Circle) Contains(p Point) bool {
	return DistanceM(c.Center, p) <= c.RadiusM
}

// BBox returns the smallest [west, south, east, north] box holding the
// spherical cap, with west > east when it crosses the antimeridian.
func (c *Circle) BBox() [4]float64 {
	d := c.RadiusM / EarthRadiusM // angular radius in radians
	dDeg := d / degToRad
	lat, lon := c.Center.Lat, c.Center.Lon
	south, north := lat-dDeg, lat+dDeg
	// A cap holding a pole reaches every meridian. The distance test is the
	// same rule Contains applies, so the box and the fence agree at the pole.
	northPole := north >= 90 || c.Contains(Point{Lat: 90, Lon: lon})
	southPole := south <= -90 || c.Contains(Point{Lat: -90, Lon: lon})
	if northPole || southPole {
		if northPole {
			north = 90
		}
		if southPole {
			south = -90
		}
		return [4]float64{-180, max(south, -90), 180, min(north, 90)}
	}
	// The meridians tangent to the cap are asin(sin d / cos lat) away from
	// the centre; they are not at the centre's latitude, which is why a
	// plain d / cos(lat) would be too narrow near the poles.
	ratio := math.Sin(d) / math.Cos(lat*degToRad)
	if ratio >= 1 {
		return [4]float64{-180, south, 180, north}
	}
	dLon := math.Asin(ratio) / degToRad
	west, east := lon-dLon, lon+dLon
	if west < -180 {
		west += 360
	}
	if east > 180 {
		east -= 360
	}
	return [4]float64{west, south, east, north}
}
