package geo

import "math/big"

// vec is a planar position: x is an (possibly unwrapped) longitude, y a
// latitude, both in degrees.
type vec struct{ x, y float64 }

// ccwErrBound is Shewchuk's ccwerrboundA, (3 + 16ε)ε with ε = 2⁻⁵³: when
// |det| exceeds it times the magnitude of the products, the rounded
// determinant has the exact determinant's sign.
const ccwErrBound = (3.0 + 16.0*0x1p-53) * 0x1p-53

// minTrusted keeps the fast path away from products that may have lost bits
// to underflow, where the error bound above no longer holds.
const minTrusted = 1e-200

// orient returns +1 if c lies to the left of the directed line a→b, -1 if
// to the right and 0 if the three points are collinear, exactly.
//
// Validation and containment both decide "on the line" with this one
// predicate, so a vertex or a boundary point that validation accepted is
// classified the same way by Contains. Rounded arithmetic decides the
// clear cases; the rare near-collinear ones are recomputed exactly.
func orient(a, b, c vec) int {
	dx1, dy1 := a.x-c.x, b.y-c.y
	dy2, dx2 := a.y-c.y, b.x-c.x
	detLeft := dx1 * dy1
	detRight := dy2 * dx2
	det := detLeft - detRight
	sum := abs(detLeft) + abs(detRight)
	if sum >= minTrusted {
		if bound := ccwErrBound * sum; det > bound {
			return 1
		} else if -det > bound {
			return -1
		}
	} else if sum == 0 && !tiny(dx1) && !tiny(dy1) && !tiny(dy2) && !tiny(dx2) {
		// Both products are zero without underflow, so each has a factor
		// that is exactly zero (a float difference is zero only for equal
		// operands): the points share an x or a y and the answer is exact.
		// This keeps axis-aligned edges, the common case, off the slow path.
		return 0
	}
	return orientExact(a, b, c)
}

func tiny(v float64) bool { return v != 0 && abs(v) < 1e-150 }

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// orientExact evaluates the orientation determinant in rational arithmetic;
// every float64 is a rational, so the sign is exact.
func orientExact(a, b, c vec) int {
	r := func(v float64) *big.Rat { return new(big.Rat).SetFloat64(v) }
	cx, cy := r(c.x), r(c.y)
	dx1 := new(big.Rat).Sub(r(a.x), cx)
	dy1 := new(big.Rat).Sub(r(b.y), cy)
	dy2 := new(big.Rat).Sub(r(a.y), cy)
	dx2 := new(big.Rat).Sub(r(b.x), cx)
	left := dx1.Mul(dx1, dy1)
	right := dy2.Mul(dy2, dx2)
	return left.Cmp(right)
}

// less orders points lexicographically, which along any one line is the
// order of the points on it; collinear overlap tests rely on that.
func less(a, b vec) bool {
	return a.x < b.x || (a.x == b.x && a.y < b.y)
}

// onSegment reports whether p, known to be collinear with a and b, lies on
// the closed segment between them.
func onSegment(a, b, p vec) bool {
	return min(a.x, b.x) <= p.x && p.x <= max(a.x, b.x) &&
		min(a.y, b.y) <= p.y && p.y <= max(a.y, b.y)
}
