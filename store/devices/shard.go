package devices

import (
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// A brand's devices are split over shards by the hash of their id, each
// with its own lock, so pings of different devices rarely wait on each
// other.
const (
	shardBits = 4
	nShards   = 1 << shardBits
	slotBits  = 32 - shardBits
	slotMask  = 1<<slotBits - 1
)

// Records live in chunks that never move (a growing slice would copy
// them all and, for a while, hold them twice); a shard wastes at most the
// rest of its last chunk.
const (
	chunkBits  = 10
	chunkSize  = 1 << chunkBits
	arenaChunk = 64 << 10 // bytes of ids per arena chunk
)

// pos is a position: 32 bytes, no pointers.
type pos struct {
	ts       int64 // Unix nanoseconds, clamped to what int64 holds
	lat, lon float64
	acc      float64
}

// rec is a device: 96 bytes, no pointers, so the garbage collector never
// looks inside the chunks that hold them. An id of up to inlineID bytes
// (most are) is kept in the record itself, so finding a device reads
// the record and nothing else; a longer one is in the shard's arena.
type rec struct {
	id         [inlineID]byte
	idLen      uint8
	flags      uint8
	idOff      uint32 // where a long id is in the shard's arena
	gen        int64
	last, qual pos
}

const inlineID = 16

const (
	flagLive  = 1 << iota // the slot holds a device
	flagLast              // last is set
	flagQual              // qual is set
	flagDirty             // listed in the shard's dirty list
	flagMoved             // listed in the shard's moved list
)

func toPos(p hotzone.Position) pos {
	ts := p.TS
	switch {
	case ts.Before(minTime):
		ts = minTime
	case ts.After(maxTime):
		ts = maxTime
	}
	return pos{ts: ts.UnixNano(), lat: p.Lat, lon: p.Lon, acc: p.AccuracyM}
}

var (
	minTime = time.Unix(0, math.MinInt64/2)
	maxTime = time.Unix(0, math.MaxInt64/2)
)

func (p pos) position() hotzone.Position {
	return hotzone.Position{Lat: p.lat, Lon: p.lon, AccuracyM: p.acc, TS: time.Unix(0, p.ts).UTC()}
}

// apply records p by the table's rule and answers whether the qualifying
// position moved to another grid cell (or appeared).
func (r *rec) apply(p hotzone.Position, qualifying bool) bool {
	np := toPos(p)
	if r.flags&flagLast == 0 || np.ts >= r.last.ts {
		r.last = np
		r.flags |= flagLast
	}
	if !qualifying || (r.flags&flagQual != 0 && np.ts < r.qual.ts) {
		return false
	}
	had, old := r.flags&flagQual != 0, r.cell()
	r.qual = np
	r.flags |= flagQual
	return !had || r.cell() != old
}

// cell is the grid cell of the qualifying position.
func (r *rec) cell() geo.Cell { return geo.CellOf(geo.Point{Lat: r.qual.lat, Lon: r.qual.lon}) }

func (r *rec) position() *hotzone.DevicePosition {
	if r.flags&flagLast == 0 {
		return nil
	}
	dp := &hotzone.DevicePosition{Last: r.last.position()}
	if r.flags&flagQual != 0 {
		q := r.qual.position()
		dp.Qualifying = &q
	}
	return dp
}

// shard is a part of a brand's devices: an open-addressing hash table of
// slots keyed by id, the records, an arena of id bytes and the dirty
// list, all under mu.
type shard struct {
	mu     sync.Mutex
	seed   maphash.Seed
	no     uint32 // the shard's number, the top bits of its refs
	held   *holdings
	table  []uint64 // 0 empty, tomb deleted, else a fingerprint<<32 | slot+1
	used   int      // table entries holding a slot
	tombs  int
	chunks []*[chunkSize]rec
	n      uint32 // slots ever handed out
	free   []uint32
	arena  [][]byte
	count  int
	dirty  []uint32
	moved  []uint32 // whose qualifying position changed cell since the grid last looked
}

// markMoved lists slot for the grid's next look; the caller holds mu.
func (s *shard) markMoved(slot uint32, r *rec) {
	if r.flags&flagMoved == 0 {
		r.flags |= flagMoved
		s.moved = append(s.moved, slot)
	}
}

// tomb marks a deleted table entry (a slot reference is never this);
// slotTomb is what a sorted list of refs uses for "none".
const (
	tomb     = ^uint64(0)
	slotTomb = ^uint32(0)
)

// entry is a table entry for slot under hash h: the hash's high half as
// a fingerprint, so a probe past another device's entry reads nothing
// but the table.
func entry(h uint64, slot uint32) uint64 { return h&^(1<<32-1) | uint64(slot+1) }

func fingerprint(h uint64) uint64 { return h &^ (1<<32 - 1) }

func entrySlot(v uint64) uint32 { return uint32(v) - 1 }

func (s *shard) rec(slot uint32) *rec { return &s.chunks[slot>>chunkBits][slot&(chunkSize-1)] }

// live answers the record in slot if it holds a device.
func (s *shard) live(slot uint32) (*rec, bool) {
	if slot >= s.n {
		return nil, false
	}
	r := s.rec(slot)
	return r, r.flags&flagLive != 0
}

func (s *shard) ref(slot uint32) uint32 { return s.no<<slotBits | slot }

func (s *shard) idBytes(r *rec) []byte {
	if r.idLen <= inlineID {
		return r.id[:r.idLen]
	}
	c := s.arena[r.idOff>>16]
	o := r.idOff & 0xffff
	return c[o : o+uint32(r.idLen)]
}

func (s *shard) id(r *rec) string { return string(s.idBytes(r)) }

// find answers the slot of id.
func (s *shard) find(id string) (uint32, bool) {
	return s.findHashed(id, maphash.String(s.seed, id))
}

// findHashed is find with id's hash, which chose the shard too
// (brand.shardHashed).
func (s *shard) findHashed(id string, h uint64) (uint32, bool) {
	if len(s.table) == 0 {
		return 0, false
	}
	fp := fingerprint(h)
	mask := uint64(len(s.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch v := s.table[i]; {
		case v == 0:
			return 0, false
		case v != tomb && fingerprint(v) == fp:
			if slot := entrySlot(v); string(s.idBytes(s.rec(slot))) == id {
				return slot, true
			}
		}
	}
}

// insert adds id, which is not there, and answers its slot.
func (s *shard) insert(id string, gen int64) uint32 {
	if (s.used+s.tombs+1)*4 >= len(s.table)*3 {
		s.rehash()
	}
	var slot uint32
	if n := len(s.free); n > 0 {
		slot, s.free = s.free[n-1], s.free[:n-1]
	} else {
		if s.n&(chunkSize-1) == 0 {
			c := newChunk()
			s.held.addChunk(c)
			s.chunks = append(s.chunks, c)
		}
		slot = s.n
		s.n++
	}
	r := s.rec(slot)
	*r = rec{gen: gen, idLen: uint8(len(id)), flags: flagLive}
	if len(id) <= inlineID {
		copy(r.id[:], id)
	} else {
		r.idOff = s.store(id)
	}
	s.place(maphash.String(s.seed, id), slot)
	s.used++
	s.count++
	return slot
}

// store copies id into the arena and answers where.
func (s *shard) store(id string) uint32 {
	last := len(s.arena) - 1
	if last < 0 || len(s.arena[last])+len(id) > arenaChunk {
		s.arena = append(s.arena, make([]byte, 0, arenaChunk))
		last++
	}
	off := uint32(len(s.arena[last]))
	s.arena[last] = append(s.arena[last], id...)
	return uint32(last)<<16 | off
}

func (s *shard) place(h uint64, slot uint32) {
	mask := uint64(len(s.table) - 1)
	i := h & mask
	for s.table[i] != 0 && s.table[i] != tomb {
		i = (i + 1) & mask
	}
	if s.table[i] == tomb {
		s.tombs--
	}
	s.table[i] = entry(h, slot)
}

// rehash grows the table (or only clears its tombstones) so it stays at
// most three quarters full.
func (s *shard) rehash() {
	size := max(64, len(s.table))
	for (s.used+1)*2 >= size {
		size *= 2
	}
	old := s.table
	s.table, s.tombs = newTable(size), 0
	s.held.setTable(s.no, s.table)
	for _, v := range old {
		if v != 0 && v != tomb {
			slot := entrySlot(v)
			s.place(maphash.Bytes(s.seed, s.idBytes(s.rec(slot))), slot)
		}
	}
	freeTable(old)
}

// remove drops id and frees its slot.
func (s *shard) remove(id string) {
	if len(s.table) == 0 {
		return
	}
	h := maphash.String(s.seed, id)
	mask := uint64(len(s.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		v := s.table[i]
		if v == 0 {
			return
		}
		if v != tomb && fingerprint(v) == fingerprint(h) && string(s.idBytes(s.rec(entrySlot(v)))) == id {
			slot := entrySlot(v)
			s.table[i] = tomb
			s.used--
			s.tombs++
			s.count--
			*s.rec(slot) = rec{}
			s.free = append(s.free, slot)
			return
		}
	}
}

func (s *shard) walk(fn func(*rec)) {
	for slot := uint32(0); slot < s.n; slot++ {
		if r := s.rec(slot); r.flags&flagLive != 0 {
			fn(r)
		}
	}
}

// brand is one brand's devices and its grid: per cell, the refs (shard
// and slot) of the devices whose qualifying position was noted there.
// A device moving on leaves its old ref behind; searches check each
// ref's current cell, and compactCells drops the stale ones of cells
// that have filled up.
type brand struct {
	id     string
	shards [nShards]shard
	held   *holdings // what the shards mapped outside the heap

	gridMu sync.Mutex
	cells  map[geo.Cell]*cell
	grown  []geo.Cell // cells due for compaction
}

type cell struct {
	refs   []uint32
	base   int // len(refs) after the last compaction
	queued bool
}

func (b *brand) shard(id string) *shard {
	s, _ := b.shardHashed(id)
	return s
}

// shardHashed is id's shard and id's hash: every shard of the table has
// the same seed, so the hash that picks the shard finds the slot too.
func (b *brand) shardHashed(id string) (*shard, uint64) {
	h := maphash.String(b.shards[0].seed, id)
	return &b.shards[h>>(64-shardBits)], h
}

func (b *brand) len() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}

// syncMoved notes in the grid where the devices that moved since the
// last look are now: pings only flag a move, and the grid's lock is
// taken once per shard and look, not once per ping. A search looks first, so it
// finds every device whose move was recorded before it.
func (b *brand) syncMoved() {
	var moves []move
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		moves = moves[:0]
		for _, slot := range s.moved {
			if r, ok := s.live(slot); ok && r.flags&flagMoved != 0 {
				r.flags &^= flagMoved
				moves = append(moves, move{r.cell(), s.ref(slot)})
			}
		}
		s.moved = trimmed(s.moved)
		s.mu.Unlock()
		if len(moves) == 0 {
			continue
		}
		b.gridMu.Lock()
		for _, m := range moves {
			b.noteLocked(m.c, m.ref)
		}
		b.gridMu.Unlock()
	}
}

type move struct {
	c   geo.Cell
	ref uint32
}

// trimmed empties a list for reuse, unless a burst (every device at
// once, at start) left it large: that one goes to the collector rather
// than stay allocated for bursts that may never come again.
func trimmed(l []uint32) []uint32 {
	if cap(l) > 4096 {
		return nil
	}
	return l[:0]
}

// noteLocked lists ref in cell c; gridMu is held.
func (b *brand) noteLocked(c geo.Cell, ref uint32) {
	cl := b.cells[c]
	if cl == nil {
		cl = &cell{}
		b.cells[c] = cl
	}
	cl.refs = append(cl.refs, ref)
	if !cl.queued && len(cl.refs) >= 2*max(cl.base, 16) {
		cl.queued = true
		b.grown = append(b.grown, c)
	}
}

func (b *brand) cellRefs(c geo.Cell, dst []uint32) []uint32 {
	b.gridMu.Lock()
	defer b.gridMu.Unlock()
	if cl := b.cells[c]; cl != nil {
		dst = append(dst, cl.refs...)
	}
	return dst
}

// compactCells drops, from the cells that filled up, the refs of devices
// that are no longer there. It holds no shard lock while it holds the
// grid's (Record takes them the other way round).
func (b *brand) compactCells() {
	b.gridMu.Lock()
	grown := b.grown
	b.grown = nil
	b.gridMu.Unlock()
	for _, c := range grown {
		b.gridMu.Lock()
		cl := b.cells[c]
		refs := append([]uint32(nil), cl.refs...)
		b.gridMu.Unlock()
		slices.Sort(refs)
		keep := refs[:0]
		for i := range b.shards {
			s := &b.shards[i]
			lo, hi := shardRange(refs, i)
			if lo == hi {
				continue
			}
			s.mu.Lock()
			prev := slotTomb
			for _, ref := range refs[lo:hi] {
				if ref == prev {
					continue
				}
				prev = ref
				if r, ok := s.live(ref & slotMask); ok && r.flags&flagQual != 0 && r.cell() == c {
					keep = append(keep, ref)
				}
			}
			s.mu.Unlock()
		}
		b.gridMu.Lock()
		// Refs noted while this ran stay, after the ones kept.
		fresh := cl.refs[len(refs):]
		cl.refs = append(append(make([]uint32, 0, len(keep)+len(fresh)), keep...), fresh...)
		cl.base, cl.queued = len(cl.refs), false
		if len(cl.refs) == 0 {
			delete(b.cells, c)
		}
		b.gridMu.Unlock()
	}
}

// scan answers the ids of every device match accepts.
func (b *brand) scan(match func(*rec) bool) []string {
	var ids []string
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		s.walk(func(r *rec) {
			if match(r) {
				ids = append(ids, s.id(r))
			}
		})
		s.mu.Unlock()
	}
	return ids
}

// shardRange is where the refs of shard i are in sorted refs.
func shardRange(refs []uint32, i int) (int, int) {
	lo := sort.Search(len(refs), func(k int) bool { return refs[k]>>slotBits >= uint32(i) })
	hi := sort.Search(len(refs), func(k int) bool { return refs[k]>>slotBits >= uint32(i+1) })
	return lo, hi
}
