package devices

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func at(lat, lon float64, ts time.Time) hotzone.Position {
	return hotzone.Position{Lat: lat, Lon: lon, AccuracyM: 5.5, TS: ts}
}

type dirty struct {
	BrandID, DeviceID string
	Gen               int64
	Position          hotzone.DevicePosition
}

func takeDirty(tab *Table) []dirty {
	var out []dirty
	tab.TakeDirty(func(brandID string, deviceID []byte, gen int64, pos *hotzone.DevicePosition) {
		d := dirty{BrandID: brandID, DeviceID: string(deviceID), Gen: gen, Position: *pos}
		if pos.Qualifying != nil {
			q := *pos.Qualifying
			d.Position.Qualifying = &q
		}
		out = append(out, d)
	})
	return out
}

func samePos(a, b *hotzone.DevicePosition) bool {
	if a == nil || b == nil {
		return a == b
	}
	if (a.Qualifying == nil) != (b.Qualifying == nil) || a.Qualifying != nil && *a.Qualifying != *b.Qualifying {
		return false
	}
	return a.Last == b.Last
}

func TestTable(t *testing.T) {
	tab := New()
	tab.AddBrand("b")
	if tab.Add("nobrand", "d", 1) {
		t.Fatal("a device was added to an unknown brand")
	}
	tab.Add("b", "d", 1)
	tab.Add("b", "e", 1)
	if tab.Record("b", "nobody", at(0, 0, t0), true) || tab.Record("other", "d", at(0, 0, t0), true) {
		t.Fatal("an unknown device took a position")
	}
	if pos, ok := tab.Position("b", "d"); !ok || pos != nil {
		t.Fatalf("a device that never pinged: %+v, %v", pos, ok)
	}
	tab.Record("b", "d", at(1, 0, t0), true)
	tab.Record("b", "d", at(9, 0, t0.Add(-time.Minute)), true) // older: kept out
	tab.Record("b", "d", at(2, 0, t0.Add(time.Second)), false) // newer, not qualifying
	pos, ok := tab.Position("b", "d")
	if !ok || pos.Last != at(2, 0, t0.Add(time.Second)) || pos.Qualifying == nil || *pos.Qualifying != at(1, 0, t0) {
		t.Fatalf("position = %+v", pos)
	}
	fence := &geo.Fence{Circle: &geo.Circle{Center: geo.Point{Lat: 1, Lon: 0}, RadiusM: 100}}
	if ids := tab.Within("b", fence, t0); !slices.Equal(ids, []string{"d"}) {
		t.Fatalf("Within = %v", ids)
	}
	if ids := tab.Within("b", fence, t0.Add(time.Second)); len(ids) != 0 {
		t.Fatalf("Within since after the ping = %v", ids)
	}
	dirty := takeDirty(tab)
	if len(dirty) != 1 || dirty[0].DeviceID != "d" || dirty[0].Gen != 1 || !samePos(&dirty[0].Position, pos) {
		t.Fatalf("dirty = %+v", dirty)
	}
	if len(takeDirty(tab)) != 0 {
		t.Fatal("a position was handed out twice")
	}
	tab.Add("b", "quiet", 1) // no position: nothing to write again
	tab.RedirtyAll()
	tab.RedirtyAll()
	if again := takeDirty(tab); len(again) != 1 || again[0].DeviceID != "d" {
		t.Fatalf("after RedirtyAll twice, dirty = %+v, want d once", again)
	}
	tab.Remove("b", "quiet")
	// A new registration of the id (another generation) starts afresh.
	tab.Add("b", "d", 2)
	if pos, _ := tab.Position("b", "d"); pos != nil {
		t.Fatalf("a new generation kept the old one's position %+v", pos)
	}
	if ids := tab.Within("b", fence, time.Time{}); len(ids) != 0 {
		t.Fatalf("a new generation is found at the old one's place: %v", ids)
	}
	// Restore applies a position of the same generation only, without
	// making it dirty.
	tab.Restore("b", "d", 1, *pos)
	if p, _ := tab.Position("b", "d"); p != nil {
		t.Fatal("a position of an earlier generation was restored")
	}
	tab.Restore("b", "d", 2, *pos)
	if p, _ := tab.Position("b", "d"); !samePos(p, pos) {
		t.Fatalf("restored %+v, want %+v", p, pos)
	}
	if len(takeDirty(tab)) != 0 {
		t.Fatal("a restored position was listed for the write-behind")
	}
	if ids := tab.Within("b", fence, t0); !slices.Equal(ids, []string{"d"}) {
		t.Fatalf("Within after a restore = %v", ids)
	}
	tab.Remove("b", "d")
	if _, ok := tab.Has("b", "d"); ok || tab.Len() != 1 {
		t.Fatal("a removed device is still there")
	}
	if ids := tab.Within("b", fence, time.Time{}); len(ids) != 0 {
		t.Fatalf("a removed device is still found: %v", ids)
	}
	// Its slot is taken by the next device, which is not found where
	// the removed one was.
	tab.Add("b", "f", 7)
	if ids := tab.Within("b", fence, time.Time{}); len(ids) != 0 {
		t.Fatalf("a device in a reused slot is found at the old one's place: %v", ids)
	}
}

// TestWithinMatchesBruteForce: whatever devices do (move between cells,
// come back, leave, are removed and replaced), Within answers exactly the
// devices a walk of every device would, across the antimeridian and for
// a fence too big for the grid.
func TestWithinMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tab := New()
	tab.AddBrand("b")
	type dev struct {
		id   string
		qual *hotzone.Position
		live bool
	}
	devs := make([]dev, 3000)
	for i := range devs {
		// Ids longer than a record holds live in the shard's arena.
		devs[i] = dev{id: fmt.Sprintf("d%d", i), live: true}
		if i%2 == 0 {
			devs[i].id = fmt.Sprintf("device-with-a-longer-id-%d", i)
		}
		tab.Add("b", devs[i].id, 1)
	}
	centres := []geo.Point{{Lat: 40.7, Lon: -74}, {Lat: 0, Lon: 179.99}, {Lat: -33.9, Lon: 151.2}}
	place := func() geo.Point {
		c := centres[rng.IntN(len(centres))]
		lon := c.Lon + (rng.Float64()-0.5)*0.2
		if lon > 180 {
			lon -= 360
		}
		return geo.Point{Lat: c.Lat + (rng.Float64()-0.5)*0.2, Lon: lon}
	}
	fences := []*geo.Fence{
		{Circle: &geo.Circle{Center: geo.Point{Lat: 40.7, Lon: -74}, RadiusM: 3000}},
		{Circle: &geo.Circle{Center: geo.Point{Lat: 0, Lon: 179.99}, RadiusM: 5000}},
		{Circle: &geo.Circle{Center: geo.Point{Lat: -33.9, Lon: 151.2}, RadiusM: 50000}}, // more cells than devices
	}
	now := t0
	for round := range 30 {
		for range 2000 {
			i := rng.IntN(len(devs))
			d := &devs[i]
			switch rng.IntN(20) {
			case 0: // erased, then registered again
				tab.Remove("b", d.id)
				d.live, d.qual = false, nil
				if rng.IntN(2) == 0 {
					tab.Add("b", d.id, int64(round+2))
					d.live = true
				}
			case 1: // a ping that does not qualify
				if d.live {
					p := place()
					tab.Record("b", d.id, at(p.Lat, p.Lon, now), false)
				}
			default:
				if d.live {
					p := place()
					pos := at(p.Lat, p.Lon, now)
					tab.Record("b", d.id, pos, true)
					d.qual = &pos
				}
			}
			now = now.Add(time.Millisecond)
		}
		if round%3 == 0 {
			takeDirty(tab) // compacts the grid as a flush would
		}
		since := now.Add(-time.Duration(rng.IntN(2000)) * time.Millisecond)
		for fi, f := range fences {
			var want []string
			for _, d := range devs {
				if d.live && d.qual != nil && !d.qual.TS.Before(since) && f.Contains(d.qual.Point()) {
					want = append(want, d.id)
				}
			}
			got := tab.Within("b", f, since)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d fence %d: Within = %d devices, want %d\n got %v\nwant %v", round, fi, len(got), len(want), got, want)
			}
		}
	}
}

// TestConcurrentUse: pings, searches, flushes, erasures and
// registrations at once (run with -race) leave the table consistent.
func TestConcurrentUse(t *testing.T) {
	tab := New()
	tab.AddBrand("b")
	const n = 500
	for i := range n {
		tab.Add("b", fmt.Sprintf("d%d", i), 1)
	}
	f := &geo.Fence{Circle: &geo.Circle{Center: geo.Point{Lat: 10, Lon: 10}, RadiusM: 20000}}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for k := range 3000 {
				id := fmt.Sprintf("d%d", rng.IntN(n))
				switch k % 50 {
				case 0:
					tab.Remove("b", id)
				case 1:
					tab.Add("b", id, int64(k))
				default:
					tab.Record("b", id, at(10+(rng.Float64()-0.5)*0.3, 10+(rng.Float64()-0.5)*0.3, t0.Add(time.Duration(k))), true)
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			tab.Within("b", f, time.Time{})
			takeDirty(tab)
		}
	})
	wg.Wait()
	ids := tab.Within("b", f, time.Time{})
	for _, id := range ids {
		pos, ok := tab.Position("b", id)
		if !ok || pos == nil || pos.Qualifying == nil || !f.Contains(pos.Qualifying.Point()) {
			t.Fatalf("Within answered %s at %+v", id, pos)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Fatal("Within answered a device twice")
	}
}

// TestMemoryPerDevice: a device with both positions costs about a
// hundred and twenty bytes, on the heap and mapped apart, whatever the
// number of devices.
func TestMemoryPerDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 200,000 devices")
	}
	const n = 200000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("m-%d", i)
	}
	// Tables of earlier tests, released by cleanups while this one
	// counts, would take their regions off its count.
	waitAllReleased(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	mapped0 := mappedBytes()
	tab := New()
	tab.AddBrand("b")
	rng := rand.New(rand.NewPCG(5, 5))
	for _, id := range ids {
		tab.Add("b", id, 1)
		tab.Record("b", id, at(40+rng.Float64(), -74+rng.Float64(), t0), true)
	}
	takeDirty(tab)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	mapped := int64(mappedBytes() - mapped0)
	per := float64(heap+mapped) / n
	t.Logf("%.0f bytes per device: %.0f on the heap, %.0f mapped", per, float64(heap)/n, float64(mapped)/n)
	if per > 130 {
		t.Errorf("%.0f bytes per device, want at most 130", per)
	}
	if runtime.GOOS == "linux" && heap > mapped/4 {
		t.Errorf("%d bytes on the heap, %d mapped: the records should be mapped", heap, mapped)
	}
	runtime.KeepAlive(tab)
}

// TestRegionsReused: a table that is dropped hands its mapped regions
// back, and the next table takes them instead of mapping more.
func TestRegionsReused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("records are mapped apart only on Linux")
	}
	fill := func() {
		tab := New()
		tab.AddBrand("b")
		for i := range 50000 {
			id := fmt.Sprintf("r-%d", i)
			tab.Add("b", id, 1)
			tab.Record("b", id, at(40, -74, t0), true)
		}
		if got := tab.Len(); got != 50000 {
			t.Fatalf("Len = %d", got)
		}
	}
	waitAllReleased(t)
	fill()
	waitAllReleased(t)
	pooled := pooledRegions()
	fill()
	if pooledRegions() >= pooled {
		t.Errorf("the second table took none of the %d pooled regions", pooled)
	}
}

// TestSyncGrid: after SyncGrid nothing waits to be noted in the grid,
// and the devices are found where they are.
func TestSyncGrid(t *testing.T) {
	tab := New()
	tab.AddBrand("b")
	for i := range 10000 {
		id := fmt.Sprintf("s-%d", i)
		tab.Add("b", id, 1)
		q := at(40+float64(i%100)/1000, -74, t0)
		tab.Restore("b", id, 1, hotzone.DevicePosition{Last: q, Qualifying: &q})
	}
	tab.SyncGrid()
	b := tab.brand("b")
	for i := range b.shards {
		if n := len(b.shards[i].moved); n != 0 {
			t.Fatalf("shard %d still lists %d moves", i, n)
		}
	}
	fence := &geo.Fence{Circle: &geo.Circle{Center: geo.Point{Lat: 40.05, Lon: -74}, RadiusM: 20000}}
	if n := len(tab.Within("b", fence, time.Time{})); n != 10000 {
		t.Errorf("Within found %d of 10000", n)
	}
}

// waitAllReleased waits until every region is back in the pool.
// Cleanups run after a collection, on their own goroutine; tests do not
// run in parallel here, so between tests no table is held and
// everything mapped gets released.
func waitAllReleased(t *testing.T) {
	t.Helper()
	for i := 0; mappedBytes() != 0; i++ {
		if i == 500 {
			t.Fatalf("%d bytes still mapped after every table was dropped", mappedBytes())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// pooledRegions is how many released regions wait for reuse.
func pooledRegions() int {
	regions.mu.Lock()
	defer regions.mu.Unlock()
	n := 0
	for _, l := range regions.free {
		n += len(l)
	}
	return n
}
