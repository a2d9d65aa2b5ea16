package geo

import (
	"encoding/json"
	"slices"
)

// MaxPolygonPositions is the most positions a polygon fence may have in
// all, closing positions and holes included (the contract's limit).
const MaxPolygonPositions = 10000

// MultiPolygon is a validated polygon fence: one or more parts, each an
// outer ring with optional holes. It is built only by ParsePolygon and is
// immutable afterwards, so it is safe to share between goroutines.
//
// Rings are kept with unwrapped longitudes (consecutive vertices never more
// than 180° apart, values possibly beyond ±180) so that a ring crossing the
// antimeridian is an ordinary planar ring; Contains tests a point's
// longitude and its ±360° twins against them.
type MultiPolygon struct {
	parts   []part
	bbox    [4]float64
	geojson json.RawMessage
}

// part is one polygon of a MultiPolygon.
type part struct {
	rings []ring // rings[0] is the outer ring, the rest are holes
}

// ring is a closed ring without repeated consecutive vertices:
// pts[len(pts)-1] == pts[0], so edge i runs from pts[i] to pts[i+1].
type ring struct {
	pts      []vec
	min, max vec // bounds, in the part's unwrapped frame
	// rawMinX and rawMaxX are the input longitudes of the vertices at
	// min.x and max.x, so the bbox reports the user's own numbers instead
	// of values that went through ±360 and back.
	rawMinX, rawMaxX float64
}

// GeoJSON returns the canonical GeoJSON geometry the polygon was parsed
// from, as ParsePolygon returned it. The caller must not modify it.
func (m *MultiPolygon) GeoJSON() json.RawMessage { return m.geojson }

// Contains reports whether p lies in any part of m. Points on an edge or a
// vertex count as inside, of holes too: a hole's boundary belongs to the
// fence, so a point is outside only if it lies strictly inside a hole.
func (m *MultiPolygon) Contains(p Point) bool {
	v := vec{p.Lon, p.Lat}
	for i := range m.parts {
		pt := &m.parts[i]
		// A part may reach past ±180 after unwrapping, and the meridians
		// -180 and 180 are one; trying the twins covers both.
		if pt.contains(v) || pt.contains(vec{v.x + 360, v.y}) || pt.contains(vec{v.x - 360, v.y}) {
			return true
		}
	}
	return false
}

func (pt *part) contains(v vec) bool {
	outer := &pt.rings[0]
	// Negated comparisons so that NaN fails here too.
	if !(v.x >= outer.min.x && v.x <= outer.max.x && v.y >= outer.min.y && v.y <= outer.max.y) {
		return false
	}
	in, on := outer.locate(v)
	if on {
		return true
	}
	if !in {
		return false
	}
	for i := 1; i < len(pt.rings); i++ {
		h := &pt.rings[i]
		if v.x < h.min.x || v.x > h.max.x || v.y < h.min.y || v.y > h.max.y {
			continue
		}
		in, on := h.locate(v)
		if on {
			return true
		}
		if in {
			return false
		}
	}
	return true
}

// locate classifies v against the ring by crossing number, deciding every
// "which side" and "on the edge" question with the exact orient predicate.
func (r *ring) locate(v vec) (inside, on bool) {
	pts := r.pts
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		if (a.y > v.y) != (b.y > v.y) {
			o := orient(a, b, v)
			if o == 0 {
				return false, true
			}
			// The edge passes to the right of v when v is on its left
			// going up, or on its right going down.
			if (o > 0) == (b.y > a.y) {
				inside = !inside
			}
		} else if a.y == v.y {
			// Edges that do not straddle v's latitude can only hold v at
			// their start vertex or, when horizontal, along their length.
			if a.x == v.x || (b.y == v.y && min(a.x, b.x) <= v.x && v.x <= max(a.x, b.x)) {
				return false, true
			}
		}
	}
	return inside, false
}

// lonSpan is a part's longitude extent placed on the circle: w in
// [-180, 180), e = w + width; rw and re are the input longitudes at its ends.
type lonSpan struct{ w, e, rw, re float64 }

// computeBBox returns [west, south, east, north] for the parts. West and
// east bound the smallest arc of longitudes covering every part: the
// complement of the widest gap between them, so that a MultiPolygon cut at
// the antimeridian gets west > east instead of a world-wide box.
func computeBBox(parts []part) [4]float64 {
	south, north := 90.0, -90.0
	spans := make([]lonSpan, 0, len(parts))
	full := false
	for i := range parts {
		o := &parts[i].rings[0]
		south, north = min(south, o.min.y), max(north, o.max.y)
		width := o.max.x - o.min.x
		if width >= 360 {
			full = true
			continue
		}
		w := o.rawMinX
		if w == 180 {
			w = -180
		}
		spans = append(spans, lonSpan{w: w, e: w + width, rw: o.rawMinX, re: o.rawMaxX})
	}
	if full || len(spans) == 0 {
		return [4]float64{-180, south, 180, north}
	}
	slices.SortFunc(spans, func(a, b lonSpan) int {
		switch {
		case a.w < b.w:
			return -1
		case a.w > b.w:
			return 1
		}
		return 0
	})
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if s.w <= last.e {
			if s.e > last.e {
				last.e, last.re = s.e, s.re
			}
			continue
		}
		merged = append(merged, s)
	}
	// A span reaching past w+360 wraps onto the first ones; fold them in so
	// that the gaps below are real gaps on the circle.
	for len(merged) > 1 && merged[len(merged)-1].e >= merged[0].w+360 {
		first, last := merged[0], &merged[len(merged)-1]
		if first.e+360 > last.e {
			last.e, last.re = first.e+360, first.re
		}
		merged = merged[1:]
	}
	if merged[0].e-merged[0].w >= 360 {
		return [4]float64{-180, south, 180, north}
	}
	best, bestGap := -1, 0.0
	for i := range merged {
		var gap float64
		if i+1 < len(merged) {
			gap = merged[i+1].w - merged[i].e
		} else {
			gap = merged[0].w + 360 - merged[i].e
		}
		if gap > bestGap {
			best, bestGap = i, gap
		}
	}
	if best < 0 {
		return [4]float64{-180, south, 180, north}
	}
	east := merged[best].re
	west := merged[(best+1)%len(merged)].rw
	// Same meridians, tidier numbers: a box starting at 180 or ending at
	// -180 would otherwise read as crossing the antimeridian.
	if west == 180 {
		west = -180
	}
	if east == -180 {
		east = 180
	}
	return [4]float64{west, south, east, north}
}
