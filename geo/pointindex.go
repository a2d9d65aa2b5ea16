package geo

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/tidwall/rtree"
)

// PointIndex holds one position per id (device positions) and answers
// "which ids lie inside this fence" for event fan-out.
//
// It follows the same rule as Index: readers never wait for writers,
// writers are serialised and publish copy-on-write clones. SetMany applies a
// batch with one clone and one publish, which is what keeps a stream of
// pings cheap: the cost of a publish is in the nodes it copies, and a batch
// shares them.
type PointIndex struct {
	mu    sync.Mutex
	pos   map[string]pointItem // guarded by mu: the writers' view
	state atomic.Pointer[pointState]
}

type pointState struct {
	tree *rtree.RTreeG[pointItem]
	n    int
}

// pointItem keeps the point as given next to its id (the tree's copy of
// the coordinates has -180 renamed to 180) and the time it was taken,
// so a search by age needs nothing but the tree.
type pointItem struct {
	id string
	p  Point
	at int64 // Unix nanoseconds; 0 when not given
}

// NewPointIndex returns an empty PointIndex. The zero PointIndex is ready
// to use too.
func NewPointIndex() *PointIndex { return &PointIndex{} }

// Set records p as id's position, replacing any earlier one. An invalid
// point (NaN, infinite or out of range) removes id instead: a device whose
// latest position is unusable must not stay "at" its previous one.
func (px *PointIndex) Set(id string, p Point) {
	px.mu.Lock()
	defer px.mu.Unlock()
	tree := px.cloneLocked()
	px.setLocked(tree, id, p, 0)
	px.publishLocked(tree)
}

// SetMany is Set for many ids at once, applied in order (a repeated id
// ends at its last point) and published together. It panics if ids and ps
// differ in length, which is a bug in the caller.
func (px *PointIndex) SetMany(ids []string, ps []Point) {
	px.SetManyAt(ids, ps, nil)
}

// SetManyAt is SetMany with the time each point was taken (Unix
// nanoseconds), which WithinSince filters on; a nil at means 0 for all.
// It panics if the slices differ in length, which is a bug in the caller.
func (px *PointIndex) SetManyAt(ids []string, ps []Point, at []int64) {
	if len(ids) != len(ps) || at != nil && len(at) != len(ids) {
		panic("geo: PointIndex.SetMany: ids, points and times differ in length")
	}
	if len(ids) == 0 {
		return
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	tree := px.cloneLocked()
	for i, id := range ids {
		var t int64
		if at != nil {
			t = at[i]
		}
		px.setLocked(tree, id, ps[i], t)
	}
	px.publishLocked(tree)
}

// Delete forgets id's position, if any.
func (px *PointIndex) Delete(id string) {
	px.mu.Lock()
	defer px.mu.Unlock()
	if _, ok := px.pos[id]; !ok {
		return
	}
	tree := px.cloneLocked()
	px.removeLocked(tree, id)
	px.publishLocked(tree)
}

func (px *PointIndex) removeLocked(tree *rtree.RTreeG[pointItem], id string) {
	if old, ok := px.pos[id]; ok {
		k := pointKey(old.p)
		tree.Delete(k, k, old)
		delete(px.pos, id)
	}
}

func (px *PointIndex) setLocked(tree *rtree.RTreeG[pointItem], id string, p Point, at int64) {
	px.removeLocked(tree, id)
	if !p.Valid() {
		return
	}
	k := pointKey(p)
	it := pointItem{id, p, at}
	tree.Insert(k, k, it)
	if px.pos == nil {
		px.pos = make(map[string]pointItem)
	}
	px.pos[id] = it
}

func (px *PointIndex) cloneLocked() *rtree.RTreeG[pointItem] {
	if st := px.state.Load(); st != nil {
		return st.tree.Copy()
	}
	return new(rtree.RTreeG[pointItem])
}

func (px *PointIndex) publishLocked(tree *rtree.RTreeG[pointItem]) {
	px.state.Store(&pointState{tree: tree, n: len(px.pos)})
}

func pointKey(p Point) [2]float64 { return [2]float64{canonLon(p.Lon), p.Lat} }

// Len returns the number of ids with a position.
func (px *PointIndex) Len() int {
	if st := px.state.Load(); st != nil {
		return st.n
	}
	return 0
}

// Within calls fn for every id whose position f contains (bounding-box
// candidates, then f.Contains), in no particular order, until fn returns
// false. Each id is reported at most once. It sees the positions as they
// were when it started, whatever writers do meanwhile.
func (px *PointIndex) Within(f *Fence, fn func(id string, p Point) bool) {
	px.within(f, math.MinInt64, func(it pointItem) bool { return fn(it.id, it.p) })
}

// WithinSince is Within for the points taken at or after since (Unix
// nanoseconds, as given to SetManyAt): event fan-out asks for the fresh
// positions inside a fence and reads nothing but the tree to get them.
func (px *PointIndex) WithinSince(f *Fence, since int64, fn func(id string) bool) {
	px.within(f, since, func(it pointItem) bool { return fn(it.id) })
}

// within reports the items taken at or after since inside f; the time
// is checked first, being the cheaper test.
func (px *PointIndex) within(f *Fence, since int64, fn func(pointItem) bool) {
	if f.empty() {
		return
	}
	st := px.state.Load()
	if st == nil {
		return
	}
	// indexBoxes gives disjoint boxes and stored points use one spelling of
	// the antimeridian, so no point can be met twice.
	boxes, nbox := indexBoxes(f.BBox())
	stop := false
	for _, b := range boxes[:nbox] {
		st.tree.Search(b.min, b.max, func(_, _ [2]float64, it pointItem) bool {
			if it.at >= since && f.Contains(it.p) {
				stop = !fn(it)
			}
			return !stop
		})
		if stop {
			return
		}
	}
}
