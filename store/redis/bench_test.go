package redis

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/redis/redistest"
)

// BenchmarkFanOutWork measures what a fan-out costs the cluster: b.N
// devices decided (in chunks of 8,192, as the engine's fan-out does),
// then claimed and recorded sent (in claims of 512, as the dispatcher
// does), on a cluster of its own (three primaries, a replica each).
// Besides time per device it reports the Redis processes' CPU per
// device, primaries and replicas apart, read from /proc: the cost a
// deployment pays per notification, which wall time on a shared machine
// hides; and this process's own CPU, the node's share (the decisions'
// JSON, the claims' and results'); then the primaries' and replicas'
// CPU for the Stats call after, which cleans the oldest-queued index.
// Run it as, say, -bench FanOutWork -benchtime 30000x.
func BenchmarkFanOutWork(b *testing.B) {
	c, db, br := benchCluster(b, 1)
	ctx := b.Context()
	n := b.N
	ids := benchDevices(b, db, br.ID, n)
	ev := mustStartEvent(b, db, br.ID, time.Now())
	lane := hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}
	primaries, replicas := redisCPU(b, c)
	self := processCPU()
	b.ResetTimer()
	for from := 0; from < n; from += 8192 {
		if _, err := db.Consider(ctx, ev, ids[from:min(n, from+8192)], func(hotzone.Device, []time.Time) string { return "" }); err != nil {
			b.Fatal(err)
		}
	}
	decided := b.Elapsed()
	p1, r1 := redisCPU(b, c)
	self1 := processCPU()
	for sent := 0; sent < n; {
		ns, err := db.Claim(ctx, lane, time.Now(), 512, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(ns) == 0 {
			b.Fatalf("claimed %d of %d", sent, n)
		}
		sent += len(ns)
		ds := make([]hotzone.Delivery, len(ns))
		for i, x := range ns {
			ds[i] = hotzone.Delivery{NotificationID: x.ID, BrandID: x.BrandID, Claim: x.Claim, Provider: x.Provider,
				Status: hotzone.StatusSent, At: time.Now(), ProviderID: "p-" + x.ID}
		}
		if err := db.Record(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	p2, r2 := redisCPU(b, c)
	self2 := processCPU()
	// Stats then takes every run, all sent, out of the oldest-queued
	// index, which the results left there: a cost of the sends, paid
	// when /metrics is read.
	if s, err := db.Stats(ctx); err != nil || !s.OutboxOldest.IsZero() {
		b.Fatalf("stats after every send: %+v, %v", s, err)
	}
	p3, r3 := redisCPU(b, c)
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(per(decided), "decide-µs/dev")
	b.ReportMetric(per(p1-primaries), "decide-primary-cpu-µs/dev")
	b.ReportMetric(per(r1-replicas), "decide-replica-cpu-µs/dev")
	b.ReportMetric(per(self1-self), "decide-node-cpu-µs/dev")
	b.ReportMetric(per(b.Elapsed()-decided), "send-µs/dev")
	b.ReportMetric(per(p2-p1), "send-primary-cpu-µs/dev")
	b.ReportMetric(per(r2-r1), "send-replica-cpu-µs/dev")
	b.ReportMetric(per(self2-self1), "send-node-cpu-µs/dev")
	b.ReportMetric(per(p3-p2), "stats-primary-cpu-µs/dev")
	b.ReportMetric(per(r3-r2), "stats-replica-cpu-µs/dev")
}

// benchCluster starts a cluster of three primaries with a replica each,
// opens it with writes waiting for waitReplicas, and makes a brand.
func benchCluster(b *testing.B, waitReplicas int) (*redistest.Cluster, *DB, hotzone.Brand) {
	c := redistest.Start(b, 3, 1)
	key := sha256.Sum256([]byte("bench"))
	db, err := Open(b.Context(), c.Addrs, Options{SecretKey: key[:], Prefix: "bench", WaitReplicas: waitReplicas})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	br, _ := brandStore(b, db, "Bench")
	return c, db, br
}

// benchDevices registers n iOS devices of a brand, dev-00000000 on, 32
// at a time, and answers their ids.
func benchDevices(b *testing.B, db *DB, brandID string, n int) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				ids[i] = fmt.Sprintf("dev-%08d", i)
				d := apnsDevice(brandID, ids[i])
				d.Locale = "en-US"
				if _, _, err := db.PutDevice(b.Context(), d); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return ids
}

// processCPU is this process's CPU time so far: the node's side.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the CPU time the cluster's primaries and replicas have
// used so far (the roles as created: the benchmark fails none over).
func redisCPU(b *testing.B, c *redistest.Cluster) (primaries, replicas time.Duration) {
	for i, pid := range c.PIDs() {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			b.Fatal(err)
		}
		// Fields after the command's closing parenthesis; utime and
		// stime are the 14th and 15th of the whole line.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		d := time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
		if i < 3 {
			primaries += d
		} else {
			replicas += d
		}
	}
	return primaries, replicas
}

// BenchmarkPositionFlush measures what the write-behind of pings costs
// the cluster: b.N devices, each with a position already stored, report
// a newer one, and one flush writes them all (in calls of flushBatch
// per shard, as a node's does). Besides time it reports the Redis
// primaries' and replicas' CPU per position, read from /proc, and this
// process's. Run it as, say, -bench PositionFlush -benchtime 30000x.
func BenchmarkPositionFlush(b *testing.B) {
	c, db, br := benchCluster(b, 0)
	ctx := b.Context()
	n := b.N
	ids := benchDevices(b, db, br.ID, n)
	t0 := time.Now().Add(-time.Minute)
	report := func(at time.Time) {
		for i, id := range ids {
			p := hotzone.Position{Lat: 40.7 + float64(i%1000)/1e5, Lon: -74.0, AccuracyM: 10, TS: at}
			if err := db.RecordPosition(ctx, br.ID, id, p, true); err != nil {
				b.Fatal(err)
			}
		}
	}
	report(t0)
	if err := db.FlushPositions(ctx); err != nil {
		b.Fatal(err)
	}
	report(t0.Add(time.Second))
	primaries, replicas := redisCPU(b, c)
	self := processCPU()
	b.ResetTimer()
	if err := db.FlushPositions(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	p1, r1 := redisCPU(b, c)
	self1 := processCPU()
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(per(p1-primaries), "primary-cpu-µs/pos")
	b.ReportMetric(per(r1-replicas), "replica-cpu-µs/pos")
	b.ReportMetric(per(self1-self), "node-cpu-µs/pos")
}

// BenchmarkFenceSearch measures a fan-out's search: b.N devices whose
// qualifying positions, written to the cluster, lie in one 5 km circle
// (as ../shared/perf's fanout places them), found by DevicesIn. It
// reports the time and the primaries' and this process's CPU per device
// found. Run it as, say, -bench FenceSearch -benchtime 30000x.
func BenchmarkFenceSearch(b *testing.B) {
	c, db, br := benchCluster(b, 0)
	ctx := b.Context()
	n := b.N
	ids := benchDevices(b, db, br.ID, n)
	f, err := hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 40.7, Lon: -74.0, RadiusM: 5000}}.Build()
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	for i, id := range ids {
		// On a 317 × 317 grid over the square inside the circle.
		x, y := float64(i%317)/317-0.5, float64(i/317%317)/317-0.5
		p := hotzone.Position{Lat: 40.7 + y*0.06, Lon: -74.0 + x*0.08, AccuracyM: 10, TS: at}
		if err := db.RecordPosition(ctx, br.ID, id, p, true); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.FlushPositions(ctx); err != nil {
		b.Fatal(err)
	}
	primaries, _ := redisCPU(b, c)
	self := processCPU()
	b.ResetTimer()
	found, err := db.DevicesIn(ctx, br.ID, f, at.Add(-time.Second))
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if len(found) != n {
		b.Fatalf("found %d of %d devices", len(found), n)
	}
	p1, _ := redisCPU(b, c)
	self1 := processCPU()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	b.ReportMetric(per(b.Elapsed()), "µs/dev")
	b.ReportMetric(per(p1-primaries), "primary-cpu-µs/dev")
	b.ReportMetric(per(self1-self), "node-cpu-µs/dev")
}
