package geo

import "math"

// EarthRadiusM is the spherical Earth radius the contract fixes for every
// distance and circle test (the IUGG mean radius, R1).
const EarthRadiusM = 6371008.8

// Point is a WGS84 position in decimal degrees.
type Point struct{ Lat, Lon float64 }

// Valid reports whether p is finite with Lat in [-90, 90] and Lon in
// [-180, 180], the only points the indexes store or answer for.
func (p Point) Valid() bool {
	// The comparisons are false for NaN, so NaN is rejected with the ranges;
	// ±Inf falls outside them.
	return p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180
}

const degToRad = math.Pi / 180

// DistanceM returns the great-circle distance in meters between a and b on
// a sphere of radius EarthRadiusM.
//
// It is the haversine formula finished with atan2 instead of asin: asin of
// a value near 1 loses half its digits, so the atan2 form keeps nearly
// antipodal pairs accurate, and the clamp keeps rounding from ever leaving
// the domain near the poles.
func DistanceM(a, b Point) float64 {
	phi1 := a.Lat * degToRad
	phi2 := b.Lat * degToRad
	sdphi := math.Sin((phi2 - phi1) / 2)
	sdlam := math.Sin((b.Lon - a.Lon) * degToRad / 2)
	h := sdphi*sdphi + math.Cos(phi1)*math.Cos(phi2)*sdlam*sdlam
	h = min(max(h, 0), 1)
	return 2 * EarthRadiusM * math.Atan2(math.Sqrt(h), math.Sqrt(1-h))
}
