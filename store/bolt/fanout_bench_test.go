package bolt

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
)

// BenchmarkFanOut measures one event over 100,000 devices in range, from
// the start (what POST /v1/stores/{id}/events calls) to the last
// notification durably in the outbox.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) { benchFanOut(b, n) })
	}
}

func benchFanOut(b *testing.B, devices int) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db, _ := openTest(b, clock)
	ctx := context.Background()
	br, _, _, err := db.CreateBrand(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	// Every device in range is eligible: no caps, no quiet hours.
	if _, err := db.UpdatePolicy(ctx, br.ID, func(p *hotzone.Policy) error {
		p.MinIntervalS, p.DailyCap, p.QuietHours = 0, 0, nil
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	st := hotzone.Store{ID: "s", BrandID: br.ID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 40.7128, Lon: -74.006, RadiusM: 5000}}}
	st.Fence, _ = st.Spec.Build()
	if _, _, err := db.PutStore(ctx, st); err != nil {
		b.Fatal(err)
	}
	// Setup only: skip fsync while registering devices.
	db.bolt.NoSync = true
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range devices {
		id := fmt.Sprintf("dev-%06d", i)
		d := hotzone.Device{ID: id, BrandID: br.ID, Platform: "android", OptIn: true, Timezone: "America/New_York", Provider: "fcm", Token: "tok-" + id}
		if _, _, err := db.PutDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
		r, a := rng.Float64()*4900, rng.Float64()*2*math.Pi
		p := hotzone.Position{Lat: 40.7128 + r*math.Cos(a)/111195, Lon: -74.006 + r*math.Sin(a)/84000, AccuracyM: 10, TS: now}
		if err := db.RecordPosition(ctx, br.ID, id, p, true); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.FlushPositions(); err != nil {
		b.Fatal(err)
	}
	db.bolt.NoSync = false
	engine := push.NewEngine(ctx, db, push.EngineOptions{Now: clock})
	var cpu time.Duration
	runtime.GC() // the setup's garbage is not the fan-out's
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cpu0 := processCPU()
		ev := hotzone.Event{ID: hotzone.NewID(now), BrandID: br.ID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: now, EndsAt: now.Add(time.Hour), Status: hotzone.EventLive}
		if _, _, _, err := engine.StartEvent(ctx, ev, ""); err != nil {
			b.Fatal(err)
		}
		engine.Wait()
		b.StopTimer()
		cpu += processCPU() - cpu0
		if _, c, _ := db.LiveEvent(ctx, br.ID, "s"); c.Queued != devices {
			b.Fatalf("queued %d, want %d", c.Queued, devices)
		}
		if _, _, err := db.EndEvent(ctx, br.ID, ev.ID, now); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
	}
	b.ReportMetric(float64(devices)*float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
	// CPU time next to wall time tells computing from waiting on the disk.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
