package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		percent     int
		want        int
	}{
		{10 * mb, 32 * mb, 100, 320},  // a small heap grows by the floor
		{32 * mb, 32 * mb, 100, 100},  // from the floor up, GOGC as is
		{200 * mb, 32 * mb, 100, 100}, // a large heap: GOGC alone
		{20 * mb, 32 * mb, 200, 200},  // 40 MB of growth is past the floor already
		{1, 32 * mb, 100, 10000},      // capped
		{0, 32 * mb, 100, 10000},
	} {
		if got := gcPercentFor(c.live, c.floor, c.percent); got != c.want {
			t.Errorf("gcPercentFor(%d, %d, %d) = %d, want %d", c.live, c.floor, c.percent, got, c.want)
		}
	}
}

// gogc is the GOGC in force.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestGCFloorRetunes: after collections, the floor has raised GOGC for
// this test binary's small heap; stopped, it retunes no more; and a
// GOGC from the environment is left alone.
func TestGCFloorRetunes(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: GOGC %d", what, gogc())
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
	}

	stop := startGCFloor(1<<30, "") // 1 GiB: far above this heap
	waitFor("raised by the floor", func() bool { return gogc() > 1000 })
	stop()
	debug.SetGCPercent(100)
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := gogc(); p != 100 {
		t.Fatalf("stopped, yet GOGC became %d", p)
	}

	stop = startGCFloor(1<<30, "100")
	defer stop()
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := gogc(); p != 100 {
		t.Fatalf("with GOGC set by the operator, GOGC became %d", p)
	}
}
