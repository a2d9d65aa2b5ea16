package push_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/push/pushtest"
	"github.com/hotzone/hotzone/store/bolt"
)

func apnsKey(b testing.TB, fake *pushtest.APNs) (*ecdsa.PrivateKey, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	fake.AddKey("TEAM000001", "KEY0000001", &key.PublicKey)
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func deviceToken(i int) string {
	h := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(h[:])
}

// BenchmarkAPNs compares, in one run, the bare apns2 client pushing to
// the local fake over one connection with the whole dispatch path: outbox
// reads, the real sender (rate limiter, retry bookkeeping) and the
// durable record of every result. Both send the same requests (headers,
// payload, a distinct token per push, a deadline per push) with the same
// number in flight, so the ratio of the two is what the dispatch path
// costs. b.N is the number of pushes.
func BenchmarkAPNs(b *testing.B) {
	b.Run("client-only", func(b *testing.B) {
		push, done := newClientRig(b)
		defer done()
		runtime.GC()
		b.ResetTimer()
		cpu := push(b.N)
		b.StopTimer()
		reportPushes(b, "", b.N, b.Elapsed(), cpu)
	})
	b.Run("dispatcher+outbox", func(b *testing.B) {
		run, done := newDispatchRig(b, b.N)
		defer done()
		runtime.GC() // the setup's garbage is not the dispatcher's
		b.ResetTimer()
		cpu := run()
		b.StopTimer()
		reportPushes(b, "", b.N, b.Elapsed(), cpu)
	})
}

// BenchmarkDispatchVsClient runs the two halves of BenchmarkAPNs in
// turn, 20,000 pushes each per iteration (b.N is the number of
// iterations: use -benchtime 4x or so), so both meet the same neighbours
// on a shared machine, and reports both and their ratio.
func BenchmarkDispatchVsClient(b *testing.B) {
	const n = 20_000
	var clientWall, dispWall, clientCPU, dispCPU time.Duration
	for range b.N {
		// Both start cold each time: a new fake, client and connection.
		b.StopTimer()
		pushN, clientDone := newClientRig(b)
		run, dispDone := newDispatchRig(b, n)
		runtime.GC()
		b.StartTimer()
		t0 := time.Now()
		clientCPU += pushN(n)
		t1 := time.Now()
		dispCPU += run()
		dispWall += time.Since(t1)
		clientWall += t1.Sub(t0)
		b.StopTimer()
		clientDone()
		dispDone()
		b.StartTimer()
	}
	reportPushes(b, "client-", n*b.N, clientWall, clientCPU)
	reportPushes(b, "dispatch-", n*b.N, dispWall, dispCPU)
	b.ReportMetric(clientWall.Seconds()/dispWall.Seconds(), "dispatch/client")
}

// newClientRig starts a fake and the bare client; its function pushes n
// more distinct tokens with DefaultConcurrency in flight and answers the
// CPU the process spent meanwhile.
func newClientRig(b *testing.B) (pushN func(n int) time.Duration, done func()) {
	fake := pushtest.NewAPNs(b)
	fake.KeepPushes(false)
	key, _ := apnsKey(b, fake)
	client := fake.Client(&token.Token{AuthKey: key, KeyID: "KEY0000001", TeamID: "TEAM000001"})
	now := time.Now()
	ev := hotzone.Event{ID: hotzone.NewID(now), StoreID: "s", Title: "Hot", Body: "Now", EndsAt: now.Add(time.Hour)}
	payload := push.APNsPayload(ev, "", hotzone.NewID(time.Now()))
	next := 0
	done = func() {
		if c := fake.Connections(); c != 1 {
			b.Errorf("%d connections, want 1", c)
		}
		fake.Close()
	}
	return func(n int) time.Duration {
		cpu0 := processCPU()
		jobs := make(chan int)
		var wg sync.WaitGroup
		for range push.DefaultConcurrency {
			wg.Go(func() {
				for i := range jobs {
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					res, err := client.PushWithContext(ctx, &apns2.Notification{DeviceToken: deviceToken(i), Topic: "com.example.bench", Payload: payload,
						PushType: apns2.PushTypeAlert, Priority: apns2.PriorityHigh, Expiration: ev.EndsAt, CollapseID: ev.ID})
					cancel()
					if err != nil || res.StatusCode != 200 {
						b.Errorf("push: %v %v", err, res)
					}
				}
			})
		}
		for range n {
			jobs <- next
			next++
		}
		close(jobs)
		wg.Wait()
		return processCPU() - cpu0
	}, done
}

// newDispatchRig sets up a fake and a database with n notifications
// queued for n iOS devices of a brand with APNs credentials; its
// function dispatches them all with the default options and answers the
// CPU the process spent meanwhile.
func newDispatchRig(b *testing.B, n int) (run func() time.Duration, done func()) {
	fake := pushtest.NewAPNs(b)
	fake.KeepPushes(false)
	_, p8 := apnsKey(b, fake)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	db, err := bolt.Open(b.TempDir(), bolt.Options{SecretKey: secret})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	br, _, _, _ := db.CreateBrand(ctx, "bench")
	if _, err := db.UpdatePolicy(ctx, br.ID, func(p *hotzone.Policy) error {
		p.MinIntervalS, p.DailyCap, p.QuietHours = 0, 0, nil
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := db.PutCredentials(ctx, br.ID, hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: p8, KeyID: "KEY0000001", TeamID: "TEAM000001", Topic: "com.example.bench"}); err != nil {
		b.Fatal(err)
	}
	st := hotzone.Store{ID: "s", BrandID: br.ID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 1, Lon: 1, RadiusM: 100}}}
	st.Fence, _ = st.Spec.Build()
	if _, _, err := db.PutStore(ctx, st); err != nil {
		b.Fatal(err)
	}
	ds := make([]hotzone.Device, n)
	ids := make([]string, n)
	for i := range ds {
		ids[i] = fmt.Sprintf("d%08d", i)
		ds[i] = hotzone.Device{ID: ids[i], Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: deviceToken(i)}
	}
	if err := db.PutDevices(ctx, br.ID, ds); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	ev := hotzone.Event{ID: hotzone.NewID(now), BrandID: br.ID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: now, EndsAt: now.Add(time.Hour), Status: hotzone.EventLive}
	if _, _, _, err := db.StartEvent(ctx, ev, ""); err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += 8192 {
		if _, err := db.Consider(ctx, ev, ids[start:min(n, start+8192)], func(hotzone.Device, []time.Time) string { return "" }); err != nil {
			b.Fatal(err)
		}
	}
	senders := push.NewSenders(db, push.SendersOptions{APNsURL: fake.URL(), RootCAs: fake.CertPool(), APNsRate: 1e6})
	disp := push.NewDispatcher(db, senders.For, push.DispatcherOptions{})
	done = func() {
		fake.Close()
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	}
	return func() time.Duration {
		cpu0 := processCPU()
		for {
			got, err := disp.Round(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if got == 0 {
				break
			}
		}
		cpu := processCPU() - cpu0
		if fake.Accepted() != n {
			b.Fatalf("fake accepted %d, want %d", fake.Accepted(), n)
		}
		if c := fake.Connections(); c != 1 {
			b.Errorf("%d connections, want 1", c)
		}
		return cpu
	}, done
}

// reportPushes adds throughput and the CPU each push cost the whole
// process (client, fake and dispatcher together): on a shared machine
// the CPU figure moves less with the neighbours than the wall-clock one.
func reportPushes(b *testing.B, prefix string, n int, wall, cpu time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), prefix+"pushes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), prefix+"cpu-µs/push")
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
