package devices

import (
	"testing"
	"unsafe"
)

// TestChunksFromArenas: chunks are carved one after another from
// arenas aligned to huge pages, and a released chunk is handed out
// again before the arena grows.
func TestChunksFromArenas(t *testing.T) {
	n := uintptr(unsafe.Sizeof(chunk{}))
	// Chunks other tests released would come first: set them aside.
	regions.mu.Lock()
	released := regions.free[int(n)]
	delete(regions.free, int(n))
	regions.mu.Unlock()
	defer func() {
		if len(released) > 0 {
			regions.mu.Lock()
			regions.free[int(n)] = append(regions.free[int(n)], released...)
			regions.mu.Unlock()
		}
	}()
	a := allocChunk()
	if a == nil {
		t.Skip("no mapped memory here: chunks live on the heap")
	}
	b := allocChunk()
	if uintptr(b) != uintptr(a)+n && uintptr(b)%hugePage != 0 {
		t.Fatalf("second chunk at %#x, first at %#x: neither next to it nor a new arena", b, a)
	}
	arena.mu.Lock()
	if uintptr(arena.base)%hugePage != 0 {
		t.Errorf("arena at %#x is not aligned to 2 MiB", arena.base)
	}
	arena.mu.Unlock()
	(*chunk)(b)[3].gen = 7
	freeRegion(b)
	c := allocChunk()
	if c != b {
		t.Fatalf("a released chunk was not reused: got %#x, released %#x", c, b)
	}
	if (*chunk)(c)[3].gen != 0 {
		t.Fatal("a reused chunk is not zero")
	}
	freeRegion(a)
	freeRegion(c)
}
