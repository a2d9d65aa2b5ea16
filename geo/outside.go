package geo

import "math"

// OutsideM returns how far p lies outside the fence, in metres: 0 when
// the fence contains p, else the distance to its nearest edge. Presence
// uses it for its hysteresis band: a ping just outside a fence, by less
// than the ping's own accuracy, may well have come from inside.
//
// For a circle it is exact on the sphere. For a polygon it is measured
// in a plane tangent at p (equirectangular), which is within a fraction
// of a percent over the few kilometres the band ever spans; an edge far
// away is overestimated at worst, never brought closer, so nothing far
// is taken for near.
func (f *Fence) OutsideM(p Point) float64 {
	switch {
	case f == nil:
		return math.Inf(1)
	case f.Contains(p):
		return 0
	case f.Circle != nil:
		return max(DistanceM(f.Circle.Center, p)-f.Circle.RadiusM, 0)
	case f.Polygon != nil:
		return f.Polygon.edgeDistanceM(p)
	}
	return math.Inf(1)
}

// edgeDistanceM is the distance from p to the nearest edge of any ring.
func (m *MultiPolygon) edgeDistanceM(p Point) float64 {
	// Metres per degree at p: y along the meridian, x along the
	// parallel (shrinking towards the poles, never to zero so that a
	// point at a pole still measures latitude).
	my := EarthRadiusM * degToRad
	mx := max(my*math.Cos(p.Lat*degToRad), 1e-9)
	best := math.Inf(1)
	for i := range m.parts {
		for j := range m.parts[i].rings {
			pts := m.parts[i].rings[j].pts
			for k := 0; k+1 < len(pts); k++ {
				a, b := pts[k], pts[k+1]
				// Longitudes are unwrapped per ring: bring the edge to
				// the point's side of the antimeridian.
				shift := math.Round((p.Lon-(a.x+b.x)/2)/360) * 360
				ax, ay := (a.x+shift-p.Lon)*mx, (a.y-p.Lat)*my
				bx, by := (b.x+shift-p.Lon)*mx, (b.y-p.Lat)*my
				best = min(best, segmentDistance(ax, ay, bx, by))
			}
		}
	}
	return best
}

// segmentDistance is the distance from the origin to the segment a–b.
func segmentDistance(ax, ay, bx, by float64) float64 {
	dx, dy := bx-ax, by-ay
	t := 0.0
	if l := dx*dx + dy*dy; l > 0 {
		t = min(max(-(ax*dx+ay*dy)/l, 0), 1)
	}
	return math.Hypot(ax+t*dx, ay+t*dy)
}
