package geo

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tidwall/rtree"
)

// boxMarginDeg widens every index box (about 1 cm) so that rounding in a
// circle's box or in the ±360° shifts of an unwrapped polygon can never
// leave out a point the exact test accepts. A wider box only costs an
// extra exact test now and then.
const boxMarginDeg = 1e-7

// box is a rectangle in the rtree's [lon, lat] coordinates.
type box struct{ min, max [2]float64 }

// indexBoxes turns a [west, south, east, north] box into at most two
// widened boxes that never cross ±180 and never overlap, so a point lies
// in at most one of them. Points are indexed and queried with longitude
// -180 moved to 180 (see canonLon), so boxes reaching -180 also get the
// line at 180.
func indexBoxes(bb [4]float64) ([2]box, int) {
	m := boxMarginDeg
	s, n := max(bb[1]-m, -90), min(bb[3]+m, 90)
	w, e := bb[0]-m, bb[2]+m
	if bb[0] > bb[2] {
		if w > e { // crossing the antimeridian: one box on each side
			return [2]box{{[2]float64{w, s}, [2]float64{180, n}}, {[2]float64{-180, s}, [2]float64{e, n}}}, 2
		}
		w, e = -180, 180 // the margins meet: the whole band
	}
	w, e = max(w, -180), min(e, 180)
	if w == -180 && e < 180 {
		return [2]box{{[2]float64{-180, s}, [2]float64{e, n}}, {[2]float64{180, s}, [2]float64{180, n}}}, 2
	}
	return [2]box{{[2]float64{w, s}, [2]float64{e, n}}}, 1
}

// canonLon names the antimeridian by +180 only, so that each index holds
// one spelling of it and boxes need cover only one.
func canonLon(lon float64) float64 {
	if lon == -180 {
		return 180
	}
	return lon
}

// Index answers "which fences contain this point": bounding-box candidates
// from an R-tree, then the exact Fence.Contains test.
//
// It is safe for concurrent use, and readers never wait for writers: the
// tree is published through an atomic pointer and never modified once
// published. A writer (writers are serialised by a mutex) takes a
// copy-on-write clone, changes it and publishes it, so a reader sees every
// change made before its Load and none made after.
type Index struct {
	mu      sync.Mutex
	entries map[string]*indexEntry // guarded by mu: the writers' view
	cells   map[Cell][]*indexEntry // guarded by mu: the grid, the writers' view
	state   atomic.Pointer[indexState]
}

type indexState struct {
	tree *rtree.RTreeG[*indexEntry] // every fence, for SearchRect
	// A point is looked up in the grid, where each fence covering at most
	// maxGridCells cells is listed in those cells, and in big, an R-tree
	// of the fences that cover more: a store's fence (hundreds of metres)
	// covers a few cells, and one map lookup finds it where a walk down
	// a tree of ten thousand would touch a node per level.
	grid *fenceGrid
	big  *rtree.RTreeG[*indexEntry]
	n    int // fences, not boxes
}

// maxGridCells is the most cells a fence is listed in; a bigger one (a
// region drawn as a polygon, a 50 km circle) goes to the big tree.
const maxGridCells = 256

// fenceGrid is an open-addressing table of cells, each pointing at its
// run of items: a lookup is one probe (a cache miss) and one run (another
// one). It is never changed once published; a writer builds a new one
// from its cell map when it publishes.
type fenceGrid struct {
	slots []gridSlot // a power of two, at most half full
	shift uint       // 64 − log2(len(slots)): a slot is the hash's top bits
	items []gridItem // grouped by cell
}

type gridSlot struct {
	cell     Cell
	start, n uint32 // the cell's items; n is 0 for an empty slot
}

// gridItem carries its fence's box, so the fences of a cell that cannot
// hold the point are passed over without a look at the fence itself (a
// cache miss each, which is what a lookup costs under load).
type gridItem struct {
	cell       Cell
	s, n, w, e float64 // the fence's box, widened like the tree's
	entry      *indexEntry
	// The entry's id and label, whose bytes sit side by side (colocate):
	// a hit reads them without a look at the entry, one memory line
	// instead of three scattered ones.
	id, label string
	// A circle's own test needs no look at the fence either: its centre
	// and radius are here (circle is false for a polygon).
	circle  bool
	centre  Point
	radiusM float64
}

// contains is the fence's exact test, Fence.Contains.
func (it *gridItem) contains(p Point) bool {
	if it.circle {
		return DistanceM(it.centre, p) <= it.radiusM // Circle.Contains
	}
	return it.entry.fence.Contains(p)
}

// holds tells whether the item's box holds p (lon canonical).
func (it *gridItem) holds(lat, lon float64) bool {
	if lat < it.s || lat > it.n {
		return false
	}
	if it.w <= it.e {
		return lon >= it.w && lon <= it.e
	}
	return lon >= it.w || lon <= it.e // across the antimeridian
}

func hashCell(c Cell) uint64 { return uint64(c) * 0x9e3779b97f4a7c15 }

type indexEntry struct {
	id    string
	label string
	fence *Fence
	boxes [2]box
	nbox  int
	cells []Cell // where the grid lists it; nil when it is in the big tree
}

// NewIndex returns an empty Index. The zero Index is ready to use too.
func NewIndex() *Index { return &Index{} }

// load returns the published state; nil means empty.
func (ix *Index) load() *indexState { return ix.state.Load() }

// Set inserts the fence under id, replacing (boxes and all) any fence
// already there. A nil fence, or one with neither shape, deletes id.
func (ix *Index) Set(id string, f *Fence) { ix.SetLabeled(id, "", f) }

// SetLabeled is Set with a label kept beside the fence (a store's name)
// and answered by SearchHits: the hot path then needs no second lookup.
func (ix *Index) SetLabeled(id, label string, f *Fence) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w := ix.cloneLocked()
	ix.setLocked(w, id, label, f)
	ix.publishLocked(w)
}

// SetMany is Set for many fences at once, applied in order and published
// together: loading 100,000 fences this way copies far fewer tree nodes
// than 100,000 calls to Set. It panics if ids and fences differ in length,
// which is a bug in the caller.
func (ix *Index) SetMany(ids []string, fences []*Fence) {
	if len(ids) != len(fences) {
		panic("geo: Index.SetMany: ids and fences differ in length")
	}
	ix.SetManyLabeled(ids, nil, fences)
}

// SetManyLabeled is SetMany with a label per fence (see SetLabeled);
// labels may be nil for none. It panics if a slice differs in length
// from ids.
func (ix *Index) SetManyLabeled(ids, labels []string, fences []*Fence) {
	if len(ids) != len(fences) || (labels != nil && len(labels) != len(ids)) {
		panic("geo: Index.SetManyLabeled: ids, labels and fences differ in length")
	}
	if len(ids) == 0 {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w := ix.cloneLocked()
	for i, id := range ids {
		label := ""
		if labels != nil {
			label = labels[i]
		}
		ix.setLocked(w, id, label, fences[i])
	}
	ix.publishLocked(w)
}

// Delete removes the fence under id, if any.
func (ix *Index) Delete(id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.entries[id] == nil {
		return
	}
	w := ix.cloneLocked()
	ix.setLocked(w, id, "", nil)
	ix.publishLocked(w)
}

// writer is a write session's private copy of the published trees
// (copy-on-write clones); the grid is built anew from the index's cell
// map when the session publishes.
type writer struct {
	tree, big *rtree.RTreeG[*indexEntry]
}

func (ix *Index) setLocked(w *writer, id, label string, f *Fence) {
	if old := ix.entries[id]; old != nil {
		for _, b := range old.boxes[:old.nbox] {
			w.tree.Delete(b.min, b.max, old)
			if old.cells == nil {
				w.big.Delete(b.min, b.max, old)
			}
		}
		for _, c := range old.cells {
			ix.unlist(c, old)
		}
		delete(ix.entries, id)
	}
	if f.empty() {
		return
	}
	id, label = colocate(id, label)
	e := &indexEntry{id: id, label: label, fence: f}
	e.boxes, e.nbox = indexBoxes(f.BBox())
	for _, b := range e.boxes[:e.nbox] {
		w.tree.Insert(b.min, b.max, e)
	}
	var cells []Cell
	if n := CellsCovering(f.BBox(), maxGridCells, func(c Cell) bool { cells = append(cells, c); return true }); n > maxGridCells {
		for _, b := range e.boxes[:e.nbox] {
			w.big.Insert(b.min, b.max, e)
		}
	} else {
		e.cells = cells
		for _, c := range cells {
			ix.list(c, e)
		}
	}
	if ix.entries == nil {
		ix.entries = make(map[string]*indexEntry)
	}
	ix.entries[id] = e
}

func (ix *Index) list(c Cell, e *indexEntry) {
	if ix.cells == nil {
		ix.cells = map[Cell][]*indexEntry{}
	}
	ix.cells[c] = append(ix.cells[c], e)
}

func (ix *Index) unlist(c Cell, e *indexEntry) {
	es := slices.DeleteFunc(ix.cells[c], func(x *indexEntry) bool { return x == e })
	if len(es) == 0 {
		delete(ix.cells, c)
		return
	}
	ix.cells[c] = es
}

// item is e's grid item for cell c: its box widened like the tree's.
func item(c Cell, e *indexEntry) gridItem {
	bb := e.fence.BBox()
	m := boxMarginDeg
	it := gridItem{cell: c, s: bb[1] - m, n: bb[3] + m, w: bb[0] - m, e: bb[2] + m, entry: e, id: e.id, label: e.label}
	if ci := e.fence.Circle; ci != nil {
		it.circle, it.centre, it.radiusM = true, ci.Center, ci.RadiusM
	}
	switch {
	case bb[0] <= bb[2] && (it.w < -180 || it.e > 180):
		// Touching ±180 (kept as +180): let every longitude through, the
		// exact test decides. Rare, and only ever a wider filter.
		it.w, it.e = -180, 180
	case bb[0] > bb[2] && it.w <= it.e:
		// Across the antimeridian with the margins meeting: the band.
		it.w, it.e = -180, 180
	}
	return it
}

// buildGrid makes the published grid from the cell map.
func (ix *Index) buildGrid() *fenceGrid {
	g := &fenceGrid{shift: 64 - 4}
	size := 16
	for size < 2*len(ix.cells) {
		size *= 2
		g.shift--
	}
	g.slots = make([]gridSlot, size)
	mask := uint64(size - 1)
	for c, es := range ix.cells {
		i := hashCell(c) >> g.shift
		for g.slots[i].n != 0 {
			i = (i + 1) & mask
		}
		g.slots[i] = gridSlot{cell: c, start: uint32(len(g.items)), n: uint32(len(es))}
		for _, e := range es {
			g.items = append(g.items, item(c, e))
		}
	}
	return g
}

// cellItems is the run of items of cell c.
func (g *fenceGrid) cellItems(c Cell) []gridItem {
	if len(g.slots) == 0 {
		return nil
	}
	mask := uint64(len(g.slots) - 1)
	for i := hashCell(c) >> g.shift; ; i = (i + 1) & mask {
		sl := &g.slots[i]
		if sl.n == 0 {
			return nil
		}
		if sl.cell == c {
			return g.items[sl.start : sl.start+sl.n]
		}
	}
}

func (ix *Index) publishLocked(w *writer) {
	ix.state.Store(&indexState{tree: w.tree, big: w.big, grid: ix.buildGrid(), n: len(ix.entries)})
}

// cloneLocked returns a private copy of the published state. rtree's
// Copy is O(1): nodes are shared until the clone writes to them.
func (ix *Index) cloneLocked() *writer {
	w := &writer{}
	if st := ix.load(); st != nil {
		w.tree, w.big = st.tree.Copy(), st.big.Copy()
	} else {
		w.tree, w.big = new(rtree.RTreeG[*indexEntry]), new(rtree.RTreeG[*indexEntry])
	}
	return w
}

// Len returns the number of fences in the index.
func (ix *Index) Len() int {
	if st := ix.load(); st != nil {
		return st.n
	}
	return 0
}

// Search appends to dst the ids of the fences that contain p, each once and
// in no particular order, and returns dst. It allocates nothing when dst
// has room. A point with NaN or infinite coordinates, or out of range,
// is in no fence.
func (ix *Index) Search(p Point, dst []string) []string {
	ix.search(p, func(id, _ string) { dst = append(dst, id) })
	return dst
}

// Hit is a fence that contains a point: its id and label.
type Hit struct{ ID, Label string }

// SearchHits is Search answering labels too (see SetLabeled).
func (ix *Index) SearchHits(p Point, dst []Hit) []Hit {
	ix.search(p, func(id, label string) { dst = append(dst, Hit{id, label}) })
	return dst
}

// search calls hit once for each fence containing p.
func (ix *Index) search(p Point, hit func(id, label string)) {
	// Checked before the tree: a NaN box compares false everywhere and
	// would wander through it for nothing.
	if !p.Valid() {
		return
	}
	st := ix.load()
	if st == nil {
		return
	}
	// A fence is listed once in each of its cells, so the grid finds it
	// once.
	c := CellOf(p)
	if items := st.grid.cellItems(c); len(items) > 0 {
		lon := canonLon(p.Lon)
		for i := range items {
			if it := &items[i]; it.holds(p.Lat, lon) && it.contains(p) {
				hit(it.id, it.label)
			}
		}
	}
	if st.big.Len() == 0 {
		return
	}
	q := [2]float64{canonLon(p.Lon), p.Lat}
	var seenBuf [4]*indexEntry // fences across ±180 met so far
	seen := seenBuf[:0]
	st.big.Search(q, q, func(_, _ [2]float64, e *indexEntry) bool {
		if e.fence.Contains(p) {
			// Only a fence with two boxes could be met twice; its boxes
			// do not overlap, so this is a guard, not a hot path.
			if e.nbox > 1 {
				if slices.Contains(seen, e) {
					return true
				}
				seen = append(seen, e)
			}
			hit(e.id, e.label)
		}
		return true
	})
}

// colocate copies id and label into one allocation, side by side, so
// reading both costs one memory line where the strings are short.
func colocate(id, label string) (string, string) {
	if id == "" || label == "" {
		return strings.Clone(id), strings.Clone(label)
	}
	b := make([]byte, len(id)+len(label))
	copy(b, id)
	copy(b[len(id):], label)
	return unsafe.String(unsafe.SliceData(b), len(id)), unsafe.String(unsafe.SliceData(b[len(id):]), len(label))
}

// SearchRect calls fn for each fence whose bounding box intersects bb,
// given as [west, south, east, north] with west > east across the
// antimeridian, until fn returns false. Each fence is reported once.
func (ix *Index) SearchRect(bb [4]float64, fn func(id string, f *Fence) bool) {
	for _, v := range bb {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
	}
	st := ix.load()
	if st == nil {
		return
	}
	boxes, nbox := indexBoxes(bb)
	var seen map[*indexEntry]bool // only fences with two boxes need it
	stop := false
	for _, b := range boxes[:nbox] {
		st.tree.Search(b.min, b.max, func(_, _ [2]float64, e *indexEntry) bool {
			if e.nbox > 1 {
				if seen[e] {
					return true
				}
				if seen == nil {
					seen = make(map[*indexEntry]bool)
				}
				seen[e] = true
			}
			stop = !fn(e.id, e.fence)
			return !stop
		})
		if stop {
			return
		}
	}
}
