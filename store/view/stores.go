package view

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Stores is every brand's stores and the fence index a ping is matched
// against. Brands are found without a lock (a sync.Map, read without
// writing to shared memory), since every ping looks one up.
type Stores struct {
	brands sync.Map // brand id -> *brandStores
}

type brandStores struct {
	mu     sync.RWMutex
	stores map[string]*hotzone.Store
	// fences is read without mu: it publishes its tree atomically, so a
	// ping never waits on a writer.
	fences *geo.Index
	// visits indexes the stores' visit areas (hotzone.Store.VisitArea)
	// as fences indexes their fences.
	visits *geo.Index
}

// NewStores returns an empty Stores.
func NewStores() *Stores { return &Stores{} }

func (s *Stores) brand(brandID string, create bool) *brandStores {
	if v, ok := s.brands.Load(brandID); ok {
		return v.(*brandStores)
	}
	if !create {
		return nil
	}
	v, _ := s.brands.LoadOrStore(brandID, &brandStores{stores: map[string]*hotzone.Store{}, fences: geo.NewIndex(), visits: geo.NewIndex()})
	return v.(*brandStores)
}

// Put adds or replaces stores of one brand; each Fence must be built.
// The fence index publishes them together.
func (s *Stores) Put(brandID string, sts ...hotzone.Store) {
	if len(sts) == 0 {
		return
	}
	b := s.brand(brandID, true)
	ids := make([]string, len(sts))
	names := make([]string, len(sts))
	fences := make([]*geo.Fence, len(sts))
	visits := make([]*geo.Fence, len(sts))
	b.mu.Lock()
	for i := range sts {
		st := sts[i]
		b.stores[st.ID] = &st
		ids[i], names[i], fences[i] = st.ID, st.Name, st.Fence
		// A visit area was validated as a fence is; one that no longer
		// builds (never, short of a damaged record) falls back to the
		// fence, so the store still counts visits somewhere sensible.
		if visits[i], _ = st.VisitArea(); visits[i] == nil {
			visits[i] = st.Fence
		}
	}
	b.mu.Unlock()
	b.fences.SetManyLabeled(ids, names, fences)
	b.visits.SetManyLabeled(ids, names, visits)
}

// Delete removes a store.
func (s *Stores) Delete(brandID, storeID string) {
	b := s.brand(brandID, false)
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.stores, storeID)
	b.mu.Unlock()
	b.fences.Delete(storeID)
	b.visits.Delete(storeID)
}

// Get returns one store.
func (s *Stores) Get(brandID, storeID string) (hotzone.Store, bool) {
	b := s.brand(brandID, false)
	if b == nil {
		return hotzone.Store{}, false
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if st := b.stores[storeID]; st != nil {
		return *st, true
	}
	return hotzone.Store{}, false
}

// Has tells whether the brand has the store.
func (s *Stores) Has(brandID, storeID string) bool {
	_, ok := s.Get(brandID, storeID)
	return ok
}

// List returns a page of a brand's stores ordered by id, and whether
// more follow.
func (s *Stores) List(brandID string, q hotzone.StoreQuery) ([]hotzone.Store, bool) {
	b := s.brand(brandID, false)
	if b == nil {
		return nil, false
	}
	b.mu.RLock()
	var all []*hotzone.Store
	for id, st := range b.stores {
		if id > q.After && (q.Tag == "" || slices.Contains(st.Tags, q.Tag)) {
			all = append(all, st)
		}
	}
	b.mu.RUnlock()
	slices.SortFunc(all, func(x, y *hotzone.Store) int { return strings.Compare(x.ID, y.ID) })
	more := q.Limit > 0 && len(all) > q.Limit
	if more {
		all = all[:q.Limit]
	}
	out := make([]hotzone.Store, len(all))
	for i, st := range all {
		out[i] = *st
	}
	return out, more
}

// Match appends to dst the brand's stores whose fence contains p, with
// their names, and returns it.
func (s *Stores) Match(brandID string, p geo.Point, dst []geo.Hit) []geo.Hit {
	b := s.brand(brandID, false)
	if b == nil {
		return dst
	}
	return b.fences.SearchHits(p, dst)
}

// VisitsAt appends to dst the brand's stores whose visit area contains
// p, and returns it.
func (s *Stores) VisitsAt(brandID string, p geo.Point, dst []geo.Hit) []geo.Hit {
	b := s.brand(brandID, false)
	if b == nil {
		return dst
	}
	return b.visits.SearchHits(p, dst)
}

// Len is how many stores all brands have.
func (s *Stores) Len() int {
	n := 0
	s.brands.Range(func(_, v any) bool {
		b := v.(*brandStores)
		b.mu.RLock()
		n += len(b.stores)
		b.mu.RUnlock()
		return true
	})
	return n
}

// Near returns up to limit of the brand's stores nearest p, nearest
// first, each with the circle a phone can monitor for it, and how far
// from p the nearest store left out is (math.Inf(1) when none is). The
// distance to a store is from p to its circle's edge, 0 inside. It looks
// at every store of the brand: a phone asks once per refresh circle,
// not per ping.
func (s *Stores) Near(brandID string, p geo.Point, limit int) ([]hotzone.NearStore, float64) {
	b := s.brand(brandID, false)
	if b == nil || limit <= 0 {
		return nil, math.Inf(1)
	}
	b.mu.RLock()
	all := make([]hotzone.NearStore, 0, len(b.stores))
	for _, st := range b.stores {
		all = append(all, hotzone.NearOf(st, p))
	}
	b.mu.RUnlock()
	slices.SortFunc(all, func(x, y hotzone.NearStore) int {
		if c := cmp.Compare(x.DistanceM, y.DistanceM); c != 0 {
			return c
		}
		return strings.Compare(x.StoreID, y.StoreID)
	})
	if len(all) <= limit {
		return all, math.Inf(1)
	}
	return all[:limit], all[limit].DistanceM
}

// Around appends to dst the brand's stores whose fence contains p or
// lies within m metres of it, with p's distance outside each, and
// returns it.
func (s *Stores) Around(brandID string, p geo.Point, m float64, dst []hotzone.FenceDistance) []hotzone.FenceDistance {
	b := s.brand(brandID, false)
	if b == nil || !p.Valid() || !(m >= 0) {
		return dst
	}
	b.fences.SearchRect(aroundBox(p, m), func(id string, f *geo.Fence) bool {
		if d := f.OutsideM(p); d <= m {
			dst = append(dst, hotzone.FenceDistance{StoreID: id, OutsideM: d})
		}
		return true
	})
	return dst
}

// aroundBox is a box holding every point within m metres of p, as
// [west, south, east, north]; near a pole it spans every longitude.
func aroundBox(p geo.Point, m float64) [4]float64 {
	dlat := m / geo.EarthRadiusM * 180 / math.Pi
	south, north := p.Lat-dlat, p.Lat+dlat
	if south <= -90 || north >= 90 {
		return [4]float64{-180, max(south, -90), 180, min(north, 90)}
	}
	dlon := dlat / math.Cos(max(math.Abs(south), math.Abs(north))*math.Pi/180)
	if dlon >= 180 {
		return [4]float64{-180, south, 180, north}
	}
	west, east := p.Lon-dlon, p.Lon+dlon
	if west < -180 {
		west += 360
	}
	if east > 180 {
		east -= 360
	}
	return [4]float64{west, south, east, north}
}
