package devices

import (
	"testing"
	"unsafe"
)

// TestChunksFromArenas: chunks are carved one after another from
// arenas aligned to huge pages, and a released chunk is handed out
// again before the arena grows. It uses a pool and arenas of its own:
// the process's pool also takes chunks back from brands the collector
// frees, at any moment, and one of those once came between two of this
// test's chunks.
func TestChunksFromArenas(t *testing.T) {
	n := int(unsafe.Sizeof(chunk{}))
	var (
		pl pool
		ar arenas
	)
	a := pl.alloc(n, ar.carve)
	if a == nil {
		t.Skip("no mapped memory here: chunks live on the heap")
	}
	b := pl.alloc(n, ar.carve)
	if uintptr(b) != uintptr(a)+uintptr(n) {
		t.Fatalf("second chunk at %#x, first at %#x: not next to it", b, a)
	}
	if uintptr(ar.base)%hugePage != 0 {
		t.Errorf("arena at %#x is not aligned to 2 MiB", ar.base)
	}
	(*chunk)(b)[3].gen = 7
	pl.release(b)
	c := pl.alloc(n, ar.carve)
	if c != b {
		t.Fatalf("a released chunk was not reused: got %#x, released %#x", c, b)
	}
	if (*chunk)(c)[3].gen != 0 {
		t.Fatal("a reused chunk is not zero")
	}
	// An arena holds arenaSize/n chunks; the next comes from a new one,
	// aligned too.
	for range arenaSize/n - 2 {
		pl.alloc(n, ar.carve)
	}
	first := ar.base
	d := pl.alloc(n, ar.carve)
	if ar.base == first || d != ar.base || uintptr(d)%hugePage != 0 {
		t.Errorf("chunk %#x past a full arena at %#x: want the start of a new aligned arena, got arena %#x", d, first, ar.base)
	}
}
