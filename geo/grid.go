package geo

import "math"

// The grid divides the sphere into cells of GridCellDeg by GridCellDeg
// (about 1.1 km by 0.85 km at 40°N) for indexes that keep, per cell, who
// is in it: a fan-out asks for the cells its fence's box covers and
// tests the points found there.
const GridCellDeg = 0.01

const (
	gridLatCells = 18000 // 180° / GridCellDeg
	gridLonCells = 36000 // 360° / GridCellDeg
)

// Cell names one grid cell.
type Cell uint64

// CellOf is the cell holding p. Longitude −180 is the cell of +180, as
// the indexes spell it; latitude +90 belongs to the cell below it. p
// must be valid (see Point.Valid).
func CellOf(p Point) Cell {
	lat := min(int64((p.Lat+90)/GridCellDeg), gridLatCells-1)
	lon := min(int64((canonLon(p.Lon)+180)/GridCellDeg), gridLonCells)
	return Cell(uint64(lat)<<32 | uint64(lon))
}

// CellsCovering calls fn with every cell that a point of the box
// [west, south, east, north] can fall in (west > east across the
// antimeridian), widened by the index margin so that rounding never
// leaves one out, until fn returns false. It answers how many cells
// that is, without calling fn, when limit is positive and the box covers
// more than limit: a caller may then rather scan everything.
func CellsCovering(bb [4]float64, limit int, fn func(Cell) bool) int {
	m := boxMarginDeg
	s := int64(math.Floor((math.Max(bb[1]-m, -90) + 90) / GridCellDeg))
	n := min(int64(math.Floor((math.Min(bb[3]+m, 90)+90)/GridCellDeg)), gridLatCells-1)
	type span struct{ lo, hi int64 }
	lonIdx := func(lon float64) int64 {
		return min(max(int64(math.Floor((lon+180)/GridCellDeg)), 0), gridLonCells)
	}
	var spans []span
	w, e := bb[0]-m, bb[2]+m
	switch {
	case bb[0] > bb[2] && w > e: // across the antimeridian
		spans = []span{{lonIdx(w), gridLonCells}, {0, lonIdx(e)}}
	case bb[0] > bb[2] || w <= -180 && e >= 180: // every longitude
		spans = []span{{0, gridLonCells}}
	default:
		spans = []span{{lonIdx(math.Max(w, -180)), lonIdx(math.Min(e, 180))}}
	}
	// −180 is kept as +180 (the last cell): a span reaching the first
	// cell reaches it too, unless a span has it already (each cell is
	// named once).
	first, last := false, false
	for _, sp := range spans {
		first = first || sp.lo == 0
		last = last || sp.hi == gridLonCells
	}
	if first && !last {
		spans = append(spans, span{gridLonCells, gridLonCells})
	}
	total := 0
	for _, sp := range spans {
		total += int(sp.hi-sp.lo+1) * int(n-s+1)
	}
	if limit > 0 && total > limit {
		return total
	}
	for _, sp := range spans {
		for lat := s; lat <= n; lat++ {
			for lon := sp.lo; lon <= sp.hi; lon++ {
				if !fn(Cell(uint64(lat)<<32 | uint64(lon))) {
					return total
				}
			}
		}
	}
	return total
}
