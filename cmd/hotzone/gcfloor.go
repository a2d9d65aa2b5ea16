package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcFloor keeps the garbage collector from running more often than a
// small heap warrants. hotzone keeps devices and their positions
// outside the Go heap, so the live heap stays near 10 MB while requests
// allocate their short-lived garbage at 100+ MB/s: with GOGC=100 the
// collector then runs some 20 times a second under load, each time
// paying its fixed costs (stacks, sweeping, assists), for a measured
// 10-15% of the CPU of a registration. With a floor, the heap goal is
// live + max(live×GOGC/100, floor): a small heap may grow by the floor
// before a collection, a large one follows GOGC as usual, so the floor
// costs at most its size in RSS, and nothing once the live heap is
// larger than it.
//
// It retunes after each collection (seen through a finalizer re-armed
// every cycle) from the live heap that collection measured.
type gcFloor struct {
	floor   uint64 // bytes
	percent int    // GOGC as the process started
	stopped atomic.Bool
	last    int // the percent set last; only the finalizer goroutine
	sample  []metrics.Sample
}

// startGCFloor begins the tuning and returns what stops it; the percent
// in force then stays. A floor of 0, or a GOGC the operator set (which
// is theirs to choose, "off" included), leaves the collector alone.
func startGCFloor(floor uint64, gogcEnv string) (stop func()) {
	if floor == 0 || gogcEnv != "" {
		return func() {}
	}
	g := &gcFloor{floor: floor, percent: 100, last: 100,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	g.arm()
	return func() { g.stopped.Store(true) }
}

// arm sets a finalizer on a fresh object: it runs after the next
// collection finds the object unreachable.
func (g *gcFloor) arm() {
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		if g.stopped.Load() {
			return
		}
		g.tune()
		g.arm()
	})
}

func (g *gcFloor) tune() {
	metrics.Read(g.sample)
	if g.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := gcPercentFor(g.sample[0].Value.Uint64(), g.floor, g.percent)
	// Only a real change is worth setting: the goal moves by a tenth.
	if p*10 < g.last*9 || p*10 > g.last*11 {
		debug.SetGCPercent(p)
		g.last = p
	}
}

// gcPercentFor is the GOGC that puts the heap goal at
// live + max(live×percent/100, floor), capped so that a nearly empty
// heap does not get an absurd figure.
func gcPercentFor(live, floor uint64, percent int) int {
	const most = 10000
	if live == 0 {
		return most
	}
	grow := live * uint64(percent) / 100
	if grow >= floor {
		return percent
	}
	return int(min(floor*100/live, most))
}
