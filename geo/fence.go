package geo

// Fence is a validated geofence: exactly one of Circle or Polygon is
// non-nil. A Fence and what it points to must not be modified once it has
// been handed to an Index, which reads it without locks.
type Fence struct {
	Circle  *Circle
	Polygon *MultiPolygon
}

// Contains reports whether p lies in the fence, boundary included. A fence
// with neither shape contains nothing.
func (f *Fence) Contains(p Point) bool {
	switch {
	case f.Circle != nil:
		return f.Circle.Contains(p)
	case f.Polygon != nil:
		return f.Polygon.Contains(p)
	}
	return false
}

// BBox returns the fence's bounding box as [west, south, east, north]. A
// box crossing the antimeridian has west > east (RFC 7946 §5.2); a circle
// holding a pole spans all longitudes and reaches ±90. A fence with
// neither shape has a zero box.
func (f *Fence) BBox() [4]float64 {
	switch {
	case f.Circle != nil:
		return f.Circle.BBox()
	case f.Polygon != nil:
		return f.Polygon.BBox()
	}
	return [4]float64{}
}

// BBox returns [west, south, east, north] covering every part, west > east
// when the polygon crosses the antimeridian. West and east are longitudes
// of the input, not rounded values.
func (m *MultiPolygon) BBox() [4]float64 { return m.bbox }

func (f *Fence) empty() bool { return f == nil || (f.Circle == nil && f.Polygon == nil) }
