package geo

import (
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
	pos   map[string]Point // guarded by mu: the writers' view
	state atomic.Pointer[pointState]
}

type pointState struct {
	tree *rtree.RTreeG[pointItem]
	n    int
}

// pointItem keeps the point as given next to its id: the tree's copy of
// the coordinates has -180 renamed to 180.
type pointItem struct {
	id string
	p  Point
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
	px.setLocked(tree, id, p)
	px.publishLocked(tree)
}

// SetMany is Set for many ids at once, applied in order (a repeated id
// ends at its last point) and published together. It panics if ids and ps
// differ in length, which is a bug in the caller.
func (px *PointIndex) SetMany(ids []string, ps []Point) {
	if len(ids) != len(ps) {
		panic("geo: PointIndex.SetMany: ids and points differ in length")
	}
	if len(ids) == 0 {
		return
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	tree := px.cloneLocked()
	for i, id := range ids {
		px.setLocked(tree, id, ps[i])
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
		k := pointKey(old)
		tree.Delete(k, k, pointItem{id, old})
		delete(px.pos, id)
	}
}

func (px *PointIndex) setLocked(tree *rtree.RTreeG[pointItem], id string, p Point) {
	px.removeLocked(tree, id)
	if !p.Valid() {
		return
	}
	k := pointKey(p)
	tree.Insert(k, k, pointItem{id, p})
	if px.pos == nil {
		px.pos = make(map[string]Point)
	}
	px.pos[id] = p
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
			if f.Contains(it.p) {
				stop = !fn(it.id, it.p)
			}
			return !stop
		})
		if stop {
			return
		}
	}
}
