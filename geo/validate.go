package geo

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// inputRing is a ring as decoded, positions as [lon, lat].
type inputRing [][2]float64

// ringDraft is a ring under validation: unwrapped, without
// repeated consecutive vertices, with the input index of every vertex kept
// for error messages.
type ringDraft struct {
	ring
	src  []int // src[i] is the input position of pts[i]
	path string
}

// buildPart validates one polygon (outer ring and holes) whose positions
// have already passed the per-position checks, and returns it ready for
// Contains. path is the polygon's JSON path, "coordinates" or
// "coordinates[2]". It reports at most one geometry error: once a ring is
// known to be bad, more messages about the same polygon are noise.
func buildPart(in []inputRing, path string) (part, *FieldError) {
	drafts := make([]ringDraft, len(in))
	for i, r := range in {
		p := path + "[" + strconv.Itoa(i) + "]"
		if err := drafts[i].build(r, p); err != nil {
			return part{}, err
		}
	}
	outer := &drafts[0]
	for i := 1; i < len(drafts); i++ {
		drafts[i].alignTo(outer)
	}
	if err := checkCrossings(drafts); err != nil {
		return part{}, err
	}
	for i := 1; i < len(drafts); i++ {
		if !holeInside(&drafts[i], outer) {
			return part{}, &FieldError{Field: drafts[i].path, Message: "hole lies outside the outer ring"}
		}
	}
	rings := make([]ring, len(drafts))
	for i := range drafts {
		rings[i] = drafts[i].ring
	}
	return part{rings: rings}, nil
}

// build unwraps and cleans one input ring. The ring is already known to be
// closed with at least 4 positions.
func (d *ringDraft) build(in inputRing, path string) *FieldError {
	d.path = path
	d.pts = make([]vec, 0, len(in))
	d.src = make([]int, 0, len(in))
	offset := 0.0
	prevLon := in[0][0]
	for i, pos := range in {
		lon, lat := pos[0], pos[1]
		// An edge whose longitudes jump by more than 180° runs the short
		// way across the antimeridian (the contract's rule); shifting the
		// rest of the ring by 360° turns it into an ordinary planar edge.
		if i > 0 {
			if jump := lon - prevLon; jump > 180 {
				offset -= 360
			} else if jump < -180 {
				offset += 360
			}
		}
		prevLon = lon
		v := vec{lon + offset, lat}
		if n := len(d.pts); n > 0 && d.pts[n-1] == v {
			continue // a repeated position adds no edge
		}
		d.pts = append(d.pts, v)
		d.src = append(d.src, i)
		if len(d.pts) == 1 || v.x < d.min.x {
			d.min.x, d.rawMinX = v.x, lon
		}
		if len(d.pts) == 1 || v.x > d.max.x {
			d.max.x, d.rawMaxX = v.x, lon
		}
		if len(d.pts) == 1 || v.y < d.min.y {
			d.min.y = v.y
		}
		if len(d.pts) == 1 || v.y > d.max.y {
			d.max.y = v.y
		}
	}
	if offset != 0 {
		return &FieldError{Field: path, Message: "ring goes all the way around the globe " +
			"(it encloses a pole); cut it at the antimeridian into a MultiPolygon, as RFC 7946 §3.1.9 describes"}
	}
	// The ring is closed and came back to offset 0, so pts ends with the
	// first vertex again (unless every position was the same); messages
	// should name the closing position for it.
	d.src[len(d.src)-1] = len(in) - 1
	if len(d.pts)-1 < 3 {
		return &FieldError{Field: path, Message: "ring must have at least 3 distinct positions"}
	}
	if d.max.x-d.min.x > 360 {
		return &FieldError{Field: path, Message: "ring spans more than 360° of longitude"}
	}
	return nil
}

// alignTo moves a hole by a multiple of 360° into the outer ring's frame:
// each ring was unwrapped from its own first vertex, so a hole of a polygon
// crossing the antimeridian may start on the other side of it.
func (d *ringDraft) alignTo(outer *ringDraft) {
	x := d.pts[0].x
	if x >= outer.min.x && x <= outer.max.x {
		return
	}
	for _, shift := range []float64{360, -360} {
		if x+shift >= outer.min.x && x+shift <= outer.max.x {
			for i := range d.pts {
				d.pts[i].x += shift
			}
			d.min.x += shift
			d.max.x += shift
			return
		}
	}
}

// holeInside reports whether hole lies inside outer. Rings were already
// checked not to cross, so one point of the hole off the outer boundary
// decides for the whole hole.
func holeInside(hole, outer *ringDraft) bool {
	for _, v := range hole.pts {
		if in, on := outer.locate(v); !on {
			return in
		}
	}
	// Every vertex touches the outer ring. Edges may not overlap it, so
	// some edge's midpoint is off it (all of them, but for an edge passing
	// exactly through an outer vertex).
	for i := 0; i+1 < len(hole.pts); i++ {
		a, b := hole.pts[i], hole.pts[i+1]
		if in, on := outer.locate(vec{(a.x + b.x) / 2, (a.y + b.y) / 2}); !on {
			return in
		}
	}
	return true
}

// segRef names edge i of ring r (from pts[i] to pts[i+1]).
type segRef struct{ r, i int32 }

// checkCrossings reports the first place where the polygon's rings cross
// themselves or each other. Touching at a point is allowed unless the rings
// pass through each other there; overlapping collinear edges are a crossing.
//
// Candidate pairs come from a sweep: edges sorted by their start along one
// axis, each compared only with the edges that begin before it ends and
// whose extents overlap on the other axis. The axis is the one along which
// edges are shortest relative to the ring, so that long thin teeth (a comb,
// a serpentine) do not all overlap one another. For the rings fences are
// made of this is O(n log n); see doc.go for the shapes where it is not.
func checkCrossings(rings []ringDraft) *FieldError {
	var segs []sweepSeg
	var sum, lo, hi [2]float64
	lo = [2]float64{math.Inf(1), math.Inf(1)}
	hi = [2]float64{math.Inf(-1), math.Inf(-1)}
	for r := range rings {
		pts := rings[r].pts
		for i := 0; i+1 < len(pts); i++ {
			a, b := pts[i], pts[i+1]
			s := sweepSeg{
				min: [2]float64{min(a.x, b.x), min(a.y, b.y)},
				max: [2]float64{max(a.x, b.x), max(a.y, b.y)},
				ref: segRef{int32(r), int32(i)},
			}
			for k := range 2 {
				sum[k] += s.max[k] - s.min[k]
				lo[k], hi[k] = min(lo[k], s.min[k]), max(hi[k], s.max[k])
			}
			segs = append(segs, s)
		}
	}
	// Sweep along the axis where edges cover the smaller share of the span:
	// sum/span estimates how many edges one point of the sweep meets.
	axis, other := 0, 1
	if sum[1]*(hi[0]-lo[0]) < sum[0]*(hi[1]-lo[1]) {
		axis, other = 1, 0
	}
	slices.SortFunc(segs, func(a, b sweepSeg) int { return cmp.Compare(a.min[axis], b.min[axis]) })

	// Touching points in the order found, so the error for a polygon that
	// crosses at several of them names the same one every time.
	var touches []touch
	var touchAt map[vec]int
	for i := range segs {
		si := &segs[i]
		for j := i + 1; j < len(segs) && segs[j].min[axis] <= si.max[axis]; j++ {
			sj := &segs[j]
			if sj.max[other] < si.min[other] || sj.min[other] > si.max[other] {
				continue
			}
			s, t := si.ref, sj.ref
			if t.r < s.r || (t.r == s.r && t.i < s.i) {
				s, t = t, s
			}
			if s.r == t.r {
				if v, ok := rings[s.r].sharedVertex(s.i, t.i); ok {
					if foldsBack(rings[s.r].pts, v) {
						return &FieldError{Field: rings[s.r].path, Message: fmt.Sprintf(
							"the edges at position %d fold back onto each other", rings[s.r].src[v])}
					}
					continue
				}
			}
			a, b := rings[s.r].edge(s.i)
			c, d := rings[t.r].edge(t.i)
			switch kind, p := intersect(a, b, c, d); kind {
			case crossing, overlapping:
				return crossError(rings, s, t, kind)
			case touching:
				k, ok := touchAt[p]
				if !ok {
					if touchAt == nil {
						touchAt = make(map[vec]int)
					}
					k = len(touches)
					touchAt[p] = k
					touches = append(touches, touch{p: p})
				}
				touches[k].refs = append(touches[k].refs, s, t)
			}
		}
	}
	for _, tc := range touches {
		if err := checkTouch(rings, tc.p, tc.refs); err != nil {
			return err
		}
	}
	return nil
}

// touch collects the edges that meet at one point.
type touch struct {
	p    vec
	refs []segRef
}

// sweepSeg is an edge's bounding box for the sweep.
type sweepSeg struct {
	min, max [2]float64
	ref      segRef
}

func (d *ringDraft) edge(i int32) (vec, vec) { return d.pts[i], d.pts[i+1] }

// vertexCount is the number of distinct vertices (pts repeats the first).
func (d *ringDraft) vertexCount() int32 { return int32(len(d.pts) - 1) }

// sharedVertex returns the vertex index two edges of the ring have in
// common when they are neighbours.
func (d *ringDraft) sharedVertex(i, j int32) (int32, bool) {
	n := d.vertexCount()
	switch {
	case (i+1)%n == j:
		return j, true
	case (j+1)%n == i:
		return i, true
	}
	return 0, false
}

// foldsBack reports whether neighbouring edges i and j, meeting at vertex
// v, overlap: the ring goes out and comes back along the same line.
func foldsBack(pts []vec, v int32) bool {
	n := int32(len(pts) - 1)
	center := pts[v]
	u := pts[(v+1)%n]
	w := pts[(v-1+n)%n]
	if orient(u, center, w) != 0 {
		return false
	}
	// Collinear, so both point the same way exactly when their components
	// have the same signs (a float difference has the exact sign).
	return sign(u.x-center.x) == sign(w.x-center.x) && sign(u.y-center.y) == sign(w.y-center.y)
}

func sign(v float64) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

type intersection int

const (
	disjoint    intersection = iota
	touching                 // a single point that is an endpoint of one edge
	crossing                 // interiors cross at a single point
	overlapping              // collinear, sharing more than a point
)

// intersect classifies how segments ab and cd meet; for touching it also
// returns the point, which is always one of the four endpoints and so exact.
func intersect(a, b, c, d vec) (intersection, vec) {
	if max(a.x, b.x) < min(c.x, d.x) || max(c.x, d.x) < min(a.x, b.x) ||
		max(a.y, b.y) < min(c.y, d.y) || max(c.y, d.y) < min(a.y, b.y) {
		return disjoint, vec{}
	}
	o1, o2 := orient(a, b, c), orient(a, b, d)
	if o1 != 0 && o1 == o2 {
		return disjoint, vec{}
	}
	o3, o4 := orient(c, d, a), orient(c, d, b)
	if o3 != 0 && o3 == o4 {
		return disjoint, vec{}
	}
	if o1 == 0 && o2 == 0 {
		// Collinear: order each segment's ends along the line.
		lo1, hi1 := a, b
		if less(b, a) {
			lo1, hi1 = b, a
		}
		lo2, hi2 := c, d
		if less(d, c) {
			lo2, hi2 = d, c
		}
		lo, hi := lo1, hi1
		if less(lo1, lo2) {
			lo = lo2
		}
		if less(hi2, hi1) {
			hi = hi2
		}
		switch {
		case less(lo, hi):
			return overlapping, vec{}
		case lo == hi:
			return touching, lo
		}
		return disjoint, vec{}
	}
	if o1*o2 < 0 && o3*o4 < 0 {
		return crossing, vec{}
	}
	switch {
	case o1 == 0 && onSegment(a, b, c):
		return touching, c
	case o2 == 0 && onSegment(a, b, d):
		return touching, d
	case o3 == 0 && onSegment(c, d, a):
		return touching, a
	case o4 == 0 && onSegment(c, d, b):
		return touching, b
	}
	return disjoint, vec{}
}

func crossError(rings []ringDraft, s, t segRef, kind intersection) *FieldError {
	verb := "crosses"
	if kind == overlapping {
		verb = "overlaps"
	}
	rs, rt := &rings[s.r], &rings[t.r]
	if s.r == t.r {
		return &FieldError{Field: rs.path, Message: fmt.Sprintf(
			"ring crosses itself: the edge from position %d to %d %s the edge from position %d to %d",
			rs.src[s.i], rs.src[s.i+1], verb, rs.src[t.i], rs.src[t.i+1])}
	}
	// Report on the later ring, naming the earlier one it runs into.
	return &FieldError{Field: rt.path, Message: fmt.Sprintf(
		"ring crosses ring %s: its edge from position %d to %d %s that ring's edge from position %d to %d",
		rs.path, rt.src[t.i], rt.src[t.i+1], verb, rs.src[s.i], rs.src[s.i+1])}
}

// passage is one way a ring goes through a touching point: in from one
// direction, out along another (each given as a point along that ray).
type passage struct {
	r      int32
	d1, d2 vec
}

// checkTouch decides whether the rings meeting at p only touch there or
// pass through each other. Every ring passes through p along two rays; two
// passages cross exactly when their rays interleave around p.
func checkTouch(rings []ringDraft, p vec, refs []segRef) *FieldError {
	var ps []passage
	type vertexKey struct{ r, v int32 }
	seen := make(map[vertexKey]bool)
	addVertex := func(r, v int32) {
		if seen[vertexKey{r, v}] {
			return
		}
		seen[vertexKey{r, v}] = true
		d := &rings[r]
		n := d.vertexCount()
		ps = append(ps, passage{r: r, d1: d.pts[(v-1+n)%n], d2: d.pts[v+1]})
	}
	edgeSeen := make(map[segRef]bool)
	for _, e := range refs {
		if edgeSeen[e] {
			continue
		}
		edgeSeen[e] = true
		d := &rings[e.r]
		a, b := d.edge(e.i)
		switch p {
		case a:
			addVertex(e.r, e.i)
		case b:
			addVertex(e.r, (e.i+1)%d.vertexCount())
		default:
			ps = append(ps, passage{r: e.r, d1: a, d2: b})
		}
	}
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			A, B := ps[i], ps[j]
			if between(p, A.d1, B.d1, A.d2) != between(p, A.d1, B.d2, A.d2) {
				loc := fmt.Sprintf("[%s, %s]", strconv.FormatFloat(wrapLon(p.x), 'g', -1, 64), strconv.FormatFloat(p.y, 'g', -1, 64))
				if A.r == B.r {
					return &FieldError{Field: rings[A.r].path, Message: "ring crosses itself at " + loc}
				}
				lo, hi := min(A.r, B.r), max(A.r, B.r)
				return &FieldError{Field: rings[hi].path, Message: "ring crosses ring " + rings[lo].path + " at " + loc}
			}
		}
	}
	return nil
}

// between reports whether the ray p→x lies strictly inside the
// counter-clockwise turn from ray p→a1 to ray p→a2. No ray here coincides
// with another: such rays would be overlapping edges, rejected earlier.
func between(p, a1, x, a2 vec) bool {
	switch o := orient(p, a1, a2); {
	case o > 0: // a turn of less than 180°
		return orient(p, a1, x) > 0 && orient(p, x, a2) > 0
	case o == 0: // exactly 180°: a1 and a2 point opposite ways
		return orient(p, a1, x) > 0
	default: // more than 180°: everything but the closed short turn back
		return !(orient(p, a2, x) >= 0 && orient(p, x, a1) >= 0)
	}
}

// wrapLon brings an unwrapped longitude back into [-180, 180] for messages.
func wrapLon(x float64) float64 {
	for x > 180 {
		x -= 360
	}
	for x < -180 {
		x += 360
	}
	return x
}
