// Package geo owns hotzone's geometry: points and great-circle distance,
// circle and polygon fences and their validation, the fence index ("which
// fences contain this point") and the device-position index ("which
// devices are inside this fence"). It is pure computation, no I/O, and
// imports only the standard library and github.com/tidwall/rtree, nothing
// else of hotzone.
//
// # Rules
//
// Distances are great-circle distances on a sphere of radius EarthRadiusM.
// A point is in a circle when DistanceM(centre, point) <= radius, exactly:
// there is no faster approximation in front of it that could disagree at
// the edge.
//
// Polygon edges are straight lines in longitude/latitude, as in RFC 7946.
// Points on an edge or a vertex are inside, and that includes the edges of
// holes: a point is outside a polygon only if it is outside the outer ring
// or strictly inside a hole. Every "which side, or on the line" question,
// in validation and in Contains alike, is answered by one exact
// orientation predicate (Shewchuk's floating-point filter, with a rational
// fallback for the nearly collinear cases), so a vertex validation accepted
// is always inside the fence.
//
// A polygon may cross the antimeridian either cut into MultiPolygon parts
// that meet at ±180 (RFC 7946 §3.1.9) or as a ring whose consecutive
// longitudes jump by more than 180°, which means that edge runs the short
// way across. Such rings are stored unwrapped (longitudes shifted by 360°
// so no edge jumps) and Contains tries a point's longitude and its ±360°
// twins. Canonical GeoJSON keeps the input longitudes.
//
// The containment test is hand-written rather than orb's
// planar.PolygonContains: orb counts a point on a hole's edge as outside,
// which contradicts the boundary rule above, it decides "on the edge" by
// comparing slopes computed with division, which can disagree with the
// exact predicate validation uses, and it recomputes the ring's bounds on
// every call. On a 40-vertex polygon orb measured 1.0–1.2 µs per test and
// this code 65–100 ns (BenchmarkPolygonContains). orb remains in the tests
// as an independent oracle for points off the boundary.
//
// Index never makes a reader wait: it keeps an R-tree behind an atomic
// pointer, never modified once published; writers, one at a time, change
// a copy-on-write clone and publish it. For points that move all the
// time (devices) the package offers a grid instead (CellOf,
// CellsCovering): a move changes a cell's list in place, where an R-tree
// would copy the nodes on its path.
//
// # Caveats
//
//   - The crossing check sweeps edges sorted along one axis, which is
//     O(n log n) for the shapes fences have (a whole 10000-position parse
//     takes about 11 ms). Rings whose edges pile up over one spot, such as
//     a star of thousands of thin spikes around a common centre, make it
//     quadratic: 5000 such spikes take about 75 ms, 10000 (the cap) about
//     300 ms.
//   - MultiPolygon.Contains costs O(vertices of the candidate part): about
//     100 ns for a store-sized fence, about 10 µs for a 10000-vertex ring.
//   - Straight edges in lon/lat are not great circles: a long east-west
//     edge at high latitude bows away from the geodesic between its ends.
//     Store fences are far too small for this to matter.
//   - A longitude jump of exactly 180° is not an antimeridian crossing,
//     and an edge from -180 to 180 (a jump of 360°) has no length. A ring
//     around a pole cannot be expressed at all; it must be cut at ±180.
//   - Touching is allowed anywhere and any number of times (a hole touching
//     its outer ring, two holes sharing a corner, a ring meeting itself at a
//     vertex) as long as the rings do not pass through each other there.
//     A hole inside another hole is not rejected and changes nothing.
//   - Positions must be exactly [lon, lat]; an altitude is rejected rather
//     than silently dropped, so canonical GeoJSON always says what the
//     fence is.
//   - The index ignores points that are NaN, infinite or out of range:
//     Search finds nothing for them. Fence.Contains does not check: a
//     circle measures any point it is given. CellOf wants a valid point.
//   - Longitudes -180 and 180 are one meridian; the indexes store and query
//     it as 180, and boxes touching -180 also cover 180.
//   - Index boxes are widened by about 1 cm so rounding never hides a fence
//     from Search; BBox itself is not widened.
//   - Every Index publish copies the tree nodes on the paths it changes:
//     batch writes (SetMany, SetManyLabeled).
//   - A Fence (and its Circle or MultiPolygon) must not be modified after it
//     is given to an Index: readers use it without locks.
package geo
