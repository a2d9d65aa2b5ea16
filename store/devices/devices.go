// Package devices is the device table a node keeps in memory: every
// device of every brand with its registration and its last positions,
// the position index event fan-out searches, and the positions that wait
// for the backend's write-behind. A ping changes only this table, never
// the disk or the network: the backend writes what changed in batches
// (TakeDirty), so a crash loses at most one flush interval of positions.
//
// It imports the root package and geo only: no backend. A backend keeps
// the registrations durable and changes them here after each commit.
//
// # Caveats
//
//   - Positions are the table's first and the backend's later: after a
//     crash the table starts from what the last flush wrote.
//   - The position index is brought up to date in batches (one
//     copy-on-write publish of the R-tree per batch): Within, and every
//     flush, apply what pings noted since.
//   - Memory grows with the devices: the whole table is resident.
package devices

import (
	"sync"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Table is the device table. It is safe for concurrent use.
type Table struct {
	mu     sync.RWMutex
	brands map[string]*brandTable

	// dirty lists the devices whose position awaits the write-behind;
	// an entry's dirty flag keeps it listed once. Both under dirtyMu.
	dirtyMu sync.Mutex
	dirty   []*entry
}

// brandTable is one brand's devices.
type brandTable struct {
	mu      sync.RWMutex
	devices map[string]*entry
	// points holds each device's last qualifying position for event
	// fan-out. Pings only note their position in pending; it reaches
	// the tree in batches, and always before a fan-out reads it.
	points    *geo.PointIndex
	pendingMu sync.Mutex
	pending   []*entry // each once, by its pendingPoint flag
}

// entry is a device and its latest positions.
type entry struct {
	mu      sync.Mutex
	dev     hotzone.Device
	pos     *hotzone.DevicePosition
	deleted bool // erased, or being erased (see Forbid)

	dirty        bool // listed in Table.dirty; guarded by Table.dirtyMu
	pendingPoint bool // listed in brandTable.pending; guarded by its pendingMu
}

// New returns an empty table.
func New() *Table { return &Table{brands: map[string]*brandTable{}} }

// AddBrand makes room for a brand's devices; adding one twice is
// harmless.
func (t *Table) AddBrand(brandID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.brands[brandID] == nil {
		t.brands[brandID] = &brandTable{devices: map[string]*entry{}, points: geo.NewPointIndex()}
	}
}

func (t *Table) brand(brandID string) *brandTable {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.brands[brandID]
}

func (t *Table) entry(brandID, deviceID string) (*brandTable, *entry) {
	b := t.brand(brandID)
	if b == nil {
		return nil, nil
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b, b.devices[deviceID]
}

// Load adds a device as stored, with its position if it has one; for a
// backend filling the table when it opens. d.BrandID names the brand,
// which must have been added.
func (t *Table) Load(d hotzone.Device, pos *hotzone.DevicePosition) {
	b := t.brand(d.BrandID)
	if b == nil {
		return
	}
	e := &entry{dev: d, pos: pos}
	b.mu.Lock()
	b.devices[d.ID] = e
	b.mu.Unlock()
	if pos != nil && pos.Qualifying != nil {
		b.notePoint(e)
	}
}

// Get returns a device's registration and what is known of its position
// (nil when it never pinged); false for an unknown or erased device.
func (t *Table) Get(brandID, deviceID string) (hotzone.Device, *hotzone.DevicePosition, bool) {
	_, e := t.entry(brandID, deviceID)
	if e == nil {
		return hotzone.Device{}, nil, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deleted {
		return hotzone.Device{}, nil, false
	}
	var pos *hotzone.DevicePosition
	if e.pos != nil {
		p := *e.pos
		pos = &p
	}
	return e.dev, pos, true
}

// Registrations answers, for each id, the device's registration as it is
// now, or the zero Device for an unknown or erased one.
func (t *Table) Registrations(brandID string, deviceIDs []string) []hotzone.Device {
	out := make([]hotzone.Device, len(deviceIDs))
	b := t.brand(brandID)
	if b == nil {
		return out
	}
	entries := make([]*entry, len(deviceIDs))
	b.mu.RLock()
	for i, id := range deviceIDs {
		entries[i] = b.devices[id]
	}
	b.mu.RUnlock()
	for i, e := range entries {
		if e == nil {
			continue
		}
		e.mu.Lock()
		if !e.deleted {
			out[i] = e.dev
		}
		e.mu.Unlock()
	}
	return out
}

// Put adds or replaces a device's registration, keeping its positions;
// for a backend after the registration committed.
func (t *Table) Put(d hotzone.Device) {
	b := t.brand(d.BrandID)
	if b == nil {
		return
	}
	b.mu.Lock()
	e := b.devices[d.ID]
	if e == nil {
		b.devices[d.ID] = &entry{dev: d}
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	e.mu.Lock()
	e.dev = d
	e.mu.Unlock()
}

// ClearToken removes a device's token, but only if the device still
// holds the very token cleared (same token, provider and registration
// time): a registration that committed since is what the disk has too.
func (t *Table) ClearToken(brandID, deviceID string, cleared hotzone.Device) {
	_, e := t.entry(brandID, deviceID)
	if e == nil {
		return
	}
	e.mu.Lock()
	if e.dev.Token == cleared.Token && e.dev.Provider == cleared.Provider && e.dev.TokenAt.Equal(cleared.TokenAt) {
		e.dev.Provider, e.dev.Token, e.dev.TokenAt = "", "", time.Time{}
	}
	e.mu.Unlock()
}

// Record keeps a device's new position and lists it for the
// write-behind; qualifying says whether it also becomes the position
// fan-out uses. Pings may arrive out of order (batches, retries): an
// older report never overwrites a newer one. It answers false for an
// unknown or erased device.
func (t *Table) Record(brandID, deviceID string, p hotzone.Position, qualifying bool) bool {
	b, e := t.entry(brandID, deviceID)
	if e == nil {
		return false
	}
	e.mu.Lock()
	if e.deleted {
		e.mu.Unlock()
		return false
	}
	if e.pos == nil {
		e.pos = new(hotzone.DevicePosition)
	}
	if !p.TS.Before(e.pos.Last.TS) {
		e.pos.Last = p
	}
	if qualifying && (e.pos.Qualifying == nil || !p.TS.Before(e.pos.Qualifying.TS)) {
		q := p
		e.pos.Qualifying = &q
	}
	e.mu.Unlock()
	// Flags instead of sets: a device pinging every second is listed
	// once per flush, and a ping costs no map insert.
	t.dirtyMu.Lock()
	if !e.dirty {
		e.dirty = true
		t.dirty = append(t.dirty, e)
	}
	t.dirtyMu.Unlock()
	if qualifying {
		b.notePoint(e)
	}
	return true
}

func (b *brandTable) notePoint(e *entry) {
	b.pendingMu.Lock()
	if !e.pendingPoint {
		e.pendingPoint = true
		b.pending = append(b.pending, e)
	}
	b.pendingMu.Unlock()
}

// Forbid marks a device as being erased before the backend's erasure
// starts, and answers its registration: from here on the device takes
// no position and no decision (Registrations answers it as gone). Allow
// undoes it when the erasure failed; Remove completes it.
func (t *Table) Forbid(brandID, deviceID string) (hotzone.Device, bool) {
	_, e := t.entry(brandID, deviceID)
	if e == nil {
		return hotzone.Device{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deleted {
		return hotzone.Device{}, false
	}
	e.deleted = true
	return e.dev, true
}

// Allow undoes Forbid.
func (t *Table) Allow(brandID, deviceID string) {
	if _, e := t.entry(brandID, deviceID); e != nil {
		e.mu.Lock()
		e.deleted = false
		e.mu.Unlock()
	}
}

// Remove drops an erased device, its positions and its point.
func (t *Table) Remove(brandID, deviceID string) {
	b, e := t.entry(brandID, deviceID)
	if e == nil {
		return
	}
	e.mu.Lock()
	e.deleted, e.pos = true, nil
	e.mu.Unlock()
	b.mu.Lock()
	if b.devices[deviceID] == e {
		delete(b.devices, deviceID)
	}
	b.mu.Unlock()
	// A pending point of the erased entry is skipped at the next sync
	// (it is marked deleted), so the index loses it for good here.
	b.pendingMu.Lock()
	b.points.Delete(deviceID)
	b.pendingMu.Unlock()
}

// Within returns the brand's devices whose last qualifying position lies
// inside the fence and was reported at or after since, found through the
// position index rather than a scan of all devices. An erased device may
// be among them for a moment.
func (t *Table) Within(brandID string, f *geo.Fence, since time.Time) []string {
	b := t.brand(brandID)
	if b == nil || f == nil {
		return nil
	}
	b.syncPoints()
	var ids []string
	b.points.WithinSince(f, since.UnixNano(), func(id string) bool {
		ids = append(ids, id)
		return true
	})
	return ids
}

// syncPoints moves the pending qualifying positions into the brand's
// position index with one publish.
func (b *brandTable) syncPoints() {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	if len(b.pending) == 0 {
		return
	}
	ids := make([]string, 0, len(b.pending))
	pts := make([]geo.Point, 0, len(b.pending))
	ats := make([]int64, 0, len(b.pending))
	for _, e := range b.pending {
		e.pendingPoint = false
		e.mu.Lock()
		if !e.deleted && e.pos != nil && e.pos.Qualifying != nil {
			ids = append(ids, e.dev.ID)
			pts = append(pts, e.pos.Qualifying.Point())
			ats = append(ats, e.pos.Qualifying.TS.UnixNano())
		}
		e.mu.Unlock()
	}
	b.pending = b.pending[:0]
	// Applied under pendingMu so a concurrent sync cannot publish an
	// older batch over a newer one.
	b.points.SetManyAt(ids, pts, ats)
}

// Dirty is a device's position as it was when taken for the
// write-behind.
type Dirty struct {
	BrandID, DeviceID string
	Position          hotzone.DevicePosition
	e                 *entry
}

// TakeDirty returns the positions recorded since the last call, of
// devices not erased, and brings every position index up to date (so a
// fan-out finds little left to apply). Redirty puts back what the
// backend failed to write.
func (t *Table) TakeDirty() []Dirty {
	t.mu.RLock()
	brands := make([]*brandTable, 0, len(t.brands))
	for _, b := range t.brands {
		brands = append(brands, b)
	}
	t.mu.RUnlock()
	for _, b := range brands {
		b.syncPoints()
	}
	t.dirtyMu.Lock()
	dirty := t.dirty
	t.dirty = make([]*entry, 0, len(dirty))
	for _, e := range dirty {
		e.dirty = false
	}
	t.dirtyMu.Unlock()
	out := make([]Dirty, 0, len(dirty))
	for _, e := range dirty {
		e.mu.Lock()
		if !e.deleted && e.pos != nil {
			out = append(out, Dirty{BrandID: e.dev.BrandID, DeviceID: e.dev.ID, Position: *e.pos, e: e})
		}
		e.mu.Unlock()
	}
	return out
}

// Redirty lists again positions TakeDirty handed out, for the next
// flush to try.
func (t *Table) Redirty(ds []Dirty) {
	t.dirtyMu.Lock()
	defer t.dirtyMu.Unlock()
	for _, d := range ds {
		if !d.e.dirty {
			d.e.dirty = true
			t.dirty = append(t.dirty, d.e)
		}
	}
}

// Len is how many devices all brands have.
func (t *Table) Len() int {
	t.mu.RLock()
	brands := make([]*brandTable, 0, len(t.brands))
	for _, b := range t.brands {
		brands = append(brands, b)
	}
	t.mu.RUnlock()
	n := 0
	for _, b := range brands {
		b.mu.RLock()
		n += len(b.devices)
		b.mu.RUnlock()
	}
	return n
}
