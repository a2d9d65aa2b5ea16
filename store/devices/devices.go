// Package devices is the device table a node keeps in memory: every
// device of every brand with its last position and its last qualifying
// position, the grid event fan-out searches, and the positions that wait
// for the backend's write-behind. A ping changes only this table, never
// the disk or the network: the backend writes what changed in batches
// (TakeDirty), so a crash loses at most one flush interval of positions.
//
// It holds no registration data (token, time zone, consent): a backend
// keeps those on disk and reads them when a notification is decided or
// sent. Per device it keeps the id, a generation (which registration of
// the id the positions belong to) and two positions, in arrays without
// pointers mapped outside the Go heap (offheap.go), so a million devices
// cost the garbage collector nothing, do not set how far its heap grows,
// and take about 120 bytes each.
//
// It imports the root package and geo only: no backend.
//
// # Caveats
//
//   - Positions are the table's first and the backend's later: after a
//     crash the table starts from what the last flush wrote.
//   - The bytes of an erased device's id stay in its shard's arena until
//     the process restarts.
//   - The grid keeps a device where its qualifying position was and
//     forgets old cells lazily: a search checks each candidate's current
//     position, and cells are compacted as they fill with stale entries.
package devices

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Table is the device table. It is safe for concurrent use.
type Table struct {
	seed maphash.Seed
	// brands is read by every ping: a sync.Map is read without writing
	// to shared memory once a brand is known.
	brands sync.Map // brand id -> *brand
}

// New returns an empty table.
func New() *Table { return &Table{seed: maphash.MakeSeed()} }

// AddBrand makes room for a brand's devices; adding one twice is
// harmless.
func (t *Table) AddBrand(brandID string) {
	if _, ok := t.brands.Load(brandID); ok {
		return
	}
	b := &brand{id: brandID, cells: map[geo.Cell]*cell{}, held: &holdings{}}
	for i := range b.shards {
		b.shards[i].seed, b.shards[i].no, b.shards[i].held = t.seed, uint32(i), b.held
	}
	if _, loaded := t.brands.LoadOrStore(brandID, b); !loaded {
		releaseWhenCollected(b)
	}
}

func (t *Table) brand(brandID string) *brand {
	if v, ok := t.brands.Load(brandID); ok {
		return v.(*brand)
	}
	return nil
}

func (t *Table) each(fn func(*brand)) {
	t.brands.Range(func(_, v any) bool {
		fn(v.(*brand))
		return true
	})
}

// Add registers a device of generation gen (what tells one registration
// of an id from a later one: positions recorded for an earlier one never
// reach it). It answers false when the brand is unknown. Adding a device
// that is there keeps its positions if gen is the same and drops them if
// not.
func (t *Table) Add(brandID, deviceID string, gen int64) bool {
	b := t.brand(brandID)
	if b == nil {
		return false
	}
	s := b.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot, ok := s.find(deviceID); ok {
		r := s.rec(slot)
		if r.gen != gen {
			*r = rec{id: r.id, idLen: r.idLen, idOff: r.idOff, gen: gen, flags: flagLive | r.flags&flagDirty}
		}
		return true
	}
	s.insert(deviceID, gen)
	return true
}

// Remove drops a device and its positions.
func (t *Table) Remove(brandID, deviceID string) {
	if b := t.brand(brandID); b != nil {
		s := b.shard(deviceID)
		s.mu.Lock()
		s.remove(deviceID)
		s.mu.Unlock()
	}
}

// Has answers a device's generation, and whether it is there.
func (t *Table) Has(brandID, deviceID string) (int64, bool) {
	b := t.brand(brandID)
	if b == nil {
		return 0, false
	}
	s := b.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.find(deviceID)
	if !ok {
		return 0, false
	}
	return s.rec(slot).gen, true
}

// Position answers what is known of a device's position: nil when it
// never pinged, false when the device is not there.
func (t *Table) Position(brandID, deviceID string) (*hotzone.DevicePosition, bool) {
	b := t.brand(brandID)
	if b == nil {
		return nil, false
	}
	s := b.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.find(deviceID)
	if !ok {
		return nil, false
	}
	return s.rec(slot).position(), true
}

// Record keeps a device's new position and lists it for the
// write-behind; qualifying says whether it also becomes the position
// fan-out uses. Pings may arrive out of order (batches, retries): an
// older report never overwrites a newer one. It answers false for an
// unknown device.
func (t *Table) Record(brandID, deviceID string, p hotzone.Position, qualifying bool) bool {
	b := t.brand(brandID)
	if b == nil {
		return false
	}
	s, h := b.shardHashed(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.findHashed(deviceID, h)
	if !ok {
		return false
	}
	r := s.rec(slot)
	if r.apply(p, qualifying) {
		s.markMoved(slot, r)
	}
	if r.flags&flagDirty == 0 {
		r.flags |= flagDirty
		s.dirty = append(s.dirty, slot)
	}
	return true
}

// Restore applies a position read back from the backend (its write-
// behind) to a device of the same generation, by the same rule as
// Record (an older report never overwrites a newer one), without
// listing it for the write-behind.
func (t *Table) Restore(brandID, deviceID string, gen int64, pos hotzone.DevicePosition) {
	b := t.brand(brandID)
	if b == nil {
		return
	}
	s := b.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.find(deviceID)
	if !ok || s.rec(slot).gen != gen {
		return
	}
	r := s.rec(slot)
	moved := false
	if pos.Qualifying != nil {
		moved = r.apply(*pos.Qualifying, true)
	}
	if !pos.Last.TS.IsZero() {
		moved = r.apply(pos.Last, false) || moved
	}
	if moved {
		s.markMoved(slot, r)
	}
}

// Within returns the brand's devices whose last qualifying position lies
// inside the fence and was reported at or after since: the grid's cells
// under the fence's box, each candidate tested at its current position.
// A fence whose box covers more cells than the brand has devices is
// answered by a walk of every device instead.
func (t *Table) Within(brandID string, f *geo.Fence, since time.Time) []string {
	b := t.brand(brandID)
	if b == nil || f == nil {
		return nil
	}
	sinceNS := since.UnixNano()
	match := func(r *rec) bool {
		return r.flags&flagQual != 0 && r.qual.ts >= sinceNS && f.Contains(geo.Point{Lat: r.qual.lat, Lon: r.qual.lon})
	}
	b.syncMoved()
	var refs []uint32
	n := geo.CellsCovering(f.BBox(), max(b.len(), 64), func(c geo.Cell) bool {
		refs = b.cellRefs(c, refs)
		return true
	})
	if n > max(b.len(), 64) {
		return b.scan(match)
	}
	// A device that left a cell and came back is listed there twice.
	slices.Sort(refs)
	refs = slices.Compact(refs)
	var ids []string
	for i := range b.shards {
		s := &b.shards[i]
		lo, hi := shardRange(refs, i)
		if lo == hi {
			continue
		}
		s.mu.Lock()
		for _, ref := range refs[lo:hi] {
			r, ok := s.live(ref & slotMask)
			// Only where the device is now: a stale entry of a cell it
			// left is not a second sighting.
			if ok && match(r) {
				ids = append(ids, s.id(r))
			}
		}
		s.mu.Unlock()
	}
	b.compactCells()
	return ids
}

// TakeDirty calls emit with the positions recorded since the last
// call, one call per device, brand after brand, and tidies the grid.
// deviceID and pos are only valid during the call (a shard's lock is
// held). RedirtyAll puts them all back when the backend failed to
// write.
func (t *Table) TakeDirty(emit func(brandID string, deviceID []byte, gen int64, pos *hotzone.DevicePosition)) {
	var dp hotzone.DevicePosition
	var q hotzone.Position
	t.each(func(b *brand) {
		b.syncMoved()
		for i := range b.shards {
			s := &b.shards[i]
			s.mu.Lock()
			for _, slot := range s.dirty {
				r, ok := s.live(slot)
				if !ok || r.flags&flagDirty == 0 || r.flags&flagLast == 0 {
					continue // erased, or listed twice after a reuse
				}
				r.flags &^= flagDirty
				dp.Last, dp.Qualifying = r.last.position(), nil
				if r.flags&flagQual != 0 {
					q = r.qual.position()
					dp.Qualifying = &q
				}
				emit(b.id, s.idBytes(r), r.gen, &dp)
			}
			s.dirty = trimmed(s.dirty)
			s.mu.Unlock()
		}
		b.compactCells()
	})
}

// SyncGrid notes in the grid every device whose qualifying position is
// not there yet (what Within and TakeDirty do first): a backend calls it
// once it has restored every position, so that the work, and its
// garbage, are over before it serves.
func (t *Table) SyncGrid() { t.each(func(b *brand) { b.syncMoved() }) }

// RedirtyAll lists every device that has a position for the next flush:
// what a backend does when it cannot tell which of a failed flush's
// positions reached the disk.
func (t *Table) RedirtyAll() {
	t.each(func(b *brand) {
		for i := range b.shards {
			s := &b.shards[i]
			s.mu.Lock()
			for slot := uint32(0); slot < s.n; slot++ {
				if r := s.rec(slot); r.flags&flagLive != 0 && r.flags&flagLast != 0 && r.flags&flagDirty == 0 {
					r.flags |= flagDirty
					s.dirty = append(s.dirty, slot)
				}
			}
			s.mu.Unlock()
		}
	})
}

// Each calls fn with every device that has a position, brand by brand
// and shard by shard (a shard's lock is held during its calls): what a
// backend writes when it compacts what it wrote behind.
func (t *Table) Each(fn func(brandID, deviceID string, gen int64, pos hotzone.DevicePosition)) {
	t.each(func(b *brand) {
		for i := range b.shards {
			s := &b.shards[i]
			s.mu.Lock()
			s.walk(func(r *rec) {
				if pos := r.position(); pos != nil {
					fn(b.id, s.id(r), r.gen, *pos)
				}
			})
			s.mu.Unlock()
		}
	})
}

// ForgetBefore drops the positions of a brand's devices last reported
// before cutoff (a retention), and answers how many. The write-behind
// is not told: a backend rewrites its positions (a compaction) so the
// dropped ones leave the disk too.
func (t *Table) ForgetBefore(brandID string, cutoff time.Time) int {
	b := t.brand(brandID)
	if b == nil {
		return 0
	}
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		s.walk(func(r *rec) {
			if r.flags&flagLast != 0 && r.last.position().TS.Before(cutoff) {
				// The grid's refs to it go stale: a search checks the
				// qualifying flag, and a compaction drops them.
				r.flags &^= flagLast | flagQual | flagDirty
				r.last, r.qual = pos{}, pos{}
				n++
			}
		})
		s.mu.Unlock()
	}
	return n
}

// IDs is every device id of a brand, in no set order.
func (t *Table) IDs(brandID string) []string {
	b := t.brand(brandID)
	if b == nil {
		return nil
	}
	var out []string
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		s.walk(func(r *rec) { out = append(out, s.id(r)) })
		s.mu.Unlock()
	}
	return out
}

// Len is how many devices all brands have.
func (t *Table) Len() int {
	n := 0
	t.each(func(b *brand) { n += b.len() })
	return n
}
