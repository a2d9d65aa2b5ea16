package devices

import (
	"runtime"
	"sync"
	"unsafe"
)

// Records and the larger id tables live outside the Go heap where the
// system allows it (mapAnon). The garbage collector lets its heap grow to
// about twice what is live before it collects, so a million records on
// the heap would cost up to twice their size in resident memory; mapped
// apart they cost their size, and the heap that the collector paces
// holds only what requests leave behind.
//
// A region is never unmapped. A freed one gives its pages back to the
// system (dropPages) and waits in a free list for the next request of
// its size, so a pointer that outlived its table would read zeros or a
// reused record, never fault.

// mappedMin is the smallest id table worth a mapping of its own: a small
// brand's tables stay on the heap, where they share pages.
const mappedMin = 64 << 10

// pool hands out mapped regions and takes them back for reuse.
type pool struct {
	mu     sync.Mutex
	mapped map[uintptr]int          // base address -> size, of every region handed out
	free   map[int][]unsafe.Pointer // size -> bases of released regions
}

// regions is the process's pool. A brand's regions come back to it
// from a cleanup the collector runs at any time, which is why tests of
// the pool's order use pools of their own.
var regions pool

// allocRegion answers n zeroed bytes outside the heap, or nil when the
// system cannot map them (the caller then uses the heap).
func allocRegion(n int) unsafe.Pointer { return regions.alloc(n, mapAnon) }

// freeRegion returns a region from allocRegion or allocChunk to the
// process's pool.
func freeRegion(p unsafe.Pointer) { regions.release(p) }

// alloc answers a released region of n bytes, else a fresh one from
// fresh (nil when it has none), and lists it as handed out.
func (pl *pool) alloc(n int, fresh func(int) unsafe.Pointer) unsafe.Pointer {
	pl.mu.Lock()
	if l := pl.free[n]; len(l) > 0 {
		p := l[len(l)-1]
		pl.free[n] = l[:len(l)-1]
		pl.mapped[uintptr(p)] = n
		pl.mu.Unlock()
		return p // zero: dropPages left it so
	}
	pl.mu.Unlock()
	p := fresh(n)
	if p == nil {
		return nil
	}
	pl.mu.Lock()
	if pl.mapped == nil {
		pl.mapped, pl.free = map[uintptr]int{}, map[int][]unsafe.Pointer{}
	}
	pl.mapped[uintptr(p)] = n
	pl.mu.Unlock()
	return p
}

// release takes back a region alloc handed out; memory that came from
// the heap (not listed) is left to the collector.
func (pl *pool) release(p unsafe.Pointer) {
	pl.mu.Lock()
	n, ok := pl.mapped[uintptr(p)]
	if ok {
		delete(pl.mapped, uintptr(p))
	}
	pl.mu.Unlock()
	if !ok {
		return
	}
	dropPages(p, n)
	pl.mu.Lock()
	pl.free[n] = append(pl.free[n], p)
	pl.mu.Unlock()
}

type chunk = [chunkSize]rec

func newChunk() *chunk {
	if p := allocChunk(); p != nil {
		return (*chunk)(p)
	}
	return new(chunk)
}

// Chunks are carved from arenas of arenaSize bytes, aligned to 2 MiB
// and marked for transparent huge pages (adviseHuge) where the system
// has them. A ping reads a random device's record: with 4 KiB pages a
// million records span 24,000 pages, far more than the TLB holds, and
// in a virtual machine each miss walks two page tables. Measured with
// the harness (ping-ratio, 100,000 devices), huge pages took some 5% off
// a ping's CPU. Records fill their chunks, so the pages are used; an
// arena's untouched tail costs nothing resident.
const (
	hugePage  = 2 << 20
	arenaSize = 2 * hugePage
)

// arenas carves chunks from one arena after another.
type arenas struct {
	mu   sync.Mutex
	base unsafe.Pointer // the current arena, or nil
	used int
}

// arena is where the process's chunks are carved.
var arena arenas

// allocChunk answers a zeroed chunk outside the heap: a released one,
// else the next in the current arena, else nil (the heap then).
func allocChunk() unsafe.Pointer { return regions.alloc(int(unsafe.Sizeof(chunk{})), arena.carve) }

// carve takes n bytes from the current arena, mapping a new one when it
// is full.
func (arena *arenas) carve(n int) unsafe.Pointer {
	arena.mu.Lock()
	defer arena.mu.Unlock()
	if arena.base == nil || arena.used+n > arenaSize {
		raw := mapAnon(arenaSize + hugePage)
		if raw == nil {
			return nil
		}
		// Aligned up; the unaligned head is never touched.
		arena.base = unsafe.Add(raw, (hugePage-int(uintptr(raw)%hugePage))%hugePage)
		arena.used = 0
		adviseHuge(arena.base, arenaSize)
	}
	p := unsafe.Add(arena.base, arena.used)
	arena.used += n
	return p
}

func newTable(n int) []uint64 {
	if n*8 >= mappedMin {
		if p := allocRegion(n * 8); p != nil {
			return unsafe.Slice((*uint64)(p), n)
		}
	}
	return make([]uint64, n)
}

func freeTable(t []uint64) {
	if len(t)*8 >= mappedMin {
		freeRegion(unsafe.Pointer(unsafe.SliceData(t)))
	}
}

// holdings is what a brand has mapped: handed back when the brand is
// collected (a table that is closed and dropped). It is kept apart from
// the brand so that the cleanup does not keep the brand alive.
type holdings struct {
	mu     sync.Mutex
	chunks []unsafe.Pointer
	tables [nShards]unsafe.Pointer
}

func (h *holdings) addChunk(c *chunk) {
	h.mu.Lock()
	h.chunks = append(h.chunks, unsafe.Pointer(c))
	h.mu.Unlock()
}

func (h *holdings) setTable(shard uint32, t []uint64) {
	h.mu.Lock()
	h.tables[shard] = unsafe.Pointer(unsafe.SliceData(t))
	h.mu.Unlock()
}

func (h *holdings) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.chunks {
		freeRegion(p)
	}
	for _, p := range h.tables {
		if p != nil {
			freeRegion(p)
		}
	}
	h.chunks, h.tables = nil, [nShards]unsafe.Pointer{}
}

// releaseWhenCollected hands b's regions back once b is garbage. Every
// use of a record holds its shard's lock, and so a pointer into b: a
// record is never used after its brand is gone.
func releaseWhenCollected(b *brand) {
	runtime.AddCleanup(b, func(h *holdings) { h.release() }, b.held)
}

// mappedBytes is the size of the regions handed out and not released.
func mappedBytes() int {
	regions.mu.Lock()
	defer regions.mu.Unlock()
	n := 0
	for _, size := range regions.mapped {
		n += size
	}
	return n
}
