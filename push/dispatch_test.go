package push_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/push/pushtest"
	"github.com/hotzone/hotzone/store/bolt"
)

// clock is a settable clock shared by a rig's storage and dispatchers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is a brand with APNs credentials, a store with a live event and n
// iOS devices queued for it in a real bbolt database, and the real
// senders pointed at the local fake APNs.
type rig struct {
	t       *testing.T
	db      *bolt.DB
	clock   *clock
	fake    *pushtest.APNs
	senders *push.Senders
	brandID string
	event   hotzone.Event
	tokens  []string
	lane    hotzone.Lane
}

func newRig(t *testing.T, n int) *rig {
	t.Helper()
	ctx := t.Context()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	secret := make([]byte, 32)
	db, err := bolt.Open(t.TempDir(), bolt.Options{Now: c.now, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	fake := pushtest.NewAPNs(t)
	_, p8 := apnsKey(t, fake)
	br, _, _, err := db.CreateBrand(ctx, "dispatch")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutCredentials(ctx, br.ID, hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: p8, KeyID: "KEY0000001", TeamID: "TEAM000001", Topic: "com.example.dispatch"}); err != nil {
		t.Fatal(err)
	}
	st := hotzone.Store{ID: "s", BrandID: br.ID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 1, Lon: 1, RadiusM: 100}}}
	st.Fence, _ = st.Spec.Build()
	if _, _, err := db.PutStore(ctx, st); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, db: db, clock: c, fake: fake, brandID: br.ID, lane: hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%04d", i)
		r.tokens = append(r.tokens, deviceToken(i))
		d := hotzone.Device{ID: ids[i], BrandID: br.ID, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: r.tokens[i]}
		if _, _, err := db.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	now := c.now()
	r.event = hotzone.Event{ID: hotzone.NewID(now), BrandID: br.ID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: now, EndsAt: now.Add(time.Hour), Status: hotzone.EventLive}
	if _, _, _, err := db.StartEvent(ctx, r.event, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Consider(ctx, r.event, ids, func(hotzone.Device, []time.Time) string { return "" }); err != nil {
		t.Fatal(err)
	}
	r.senders = push.NewSenders(db, push.SendersOptions{APNsURL: fake.URL(), RootCAs: fake.CertPool(), APNsRate: 1e6, Now: c.now,
		Retry: push.RetryPolicy{MaxAttempts: 3, Base: time.Second, Max: time.Second}})
	return r
}

// dispatcher is a dispatcher of the rig's outbox on the rig's clock.
func (r *rig) dispatcher(box push.Outbox) *push.Dispatcher {
	if box == nil {
		box = r.db
	}
	return push.NewDispatcher(box, r.senders.For, push.DispatcherOptions{Now: r.clock.now, Concurrency: 16})
}

// drain runs Round until it finds nothing to do.
func (r *rig) drain(d *push.Dispatcher) {
	r.t.Helper()
	for range 1000 {
		n, err := d.Round(context.Background())
		if err != nil {
			r.t.Fatalf("Round: %v", err)
		}
		if n == 0 {
			return
		}
	}
	r.t.Fatal("the outbox never drained")
}

// log is the event's log entries by device.
func (r *rig) log() map[string]hotzone.Notification {
	r.t.Helper()
	ns, _, err := r.db.Notifications(context.Background(), r.brandID, hotzone.NotificationQuery{EventID: r.event.ID, Limit: 1000})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]hotzone.Notification{}
	for _, n := range ns {
		out[n.DeviceID] = n
	}
	return out
}

// TestDispatchersShareALane: two dispatchers draining one lane at once
// send every notification once, and each is recorded once.
func TestDispatchersShareALane(t *testing.T) {
	const n = 300
	r := newRig(t, n)
	a, b := r.dispatcher(nil), r.dispatcher(nil)
	var wg sync.WaitGroup
	for _, d := range []*push.Dispatcher{a, b} {
		wg.Go(func() { r.drain(d) })
	}
	wg.Wait()
	for i, tok := range r.tokens {
		if got := r.fake.Count(tok); got != 1 {
			t.Errorf("device %d got %d pushes, want 1", i, got)
		}
	}
	for id, e := range r.log() {
		if e.Status != hotzone.StatusSent || e.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts, want sent after 1", id, e.Status, e.Attempts)
		}
	}
	if _, c, _ := r.db.Event(context.Background(), r.brandID, r.event.ID); c.Sent != n || c.Queued != 0 {
		t.Errorf("counts %+v, want %d sent", c, n)
	}
}

// TestDispatchRetriesAtTheirTime: a transient failure is queued again
// with a backoff, is not sent before it, is sent after it, and gives up
// after MaxAttempts.
func TestDispatchRetriesAtTheirTime(t *testing.T) {
	r := newRig(t, 3)
	r.fake.Script(r.tokens[0], pushtest.Answer{Status: http.StatusInternalServerError}, pushtest.Answer{})
	r.fake.Script(r.tokens[1], pushtest.Answer{Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second}, pushtest.Answer{})
	r.fake.Script(r.tokens[2], pushtest.Answer{Status: http.StatusServiceUnavailable})
	d := r.dispatcher(nil)
	r.drain(d)
	log := r.log()
	for i := range 3 {
		if e := log[fmt.Sprintf("d%04d", i)]; e.Status != hotzone.StatusQueued || e.Attempts != 1 || e.LastError == nil {
			t.Fatalf("device %d after one failure: %+v, want queued with an error", i, e)
		}
	}
	// The backoff (at most Max, 1 s) has not passed: nothing is due.
	r.drain(d)
	if got := r.fake.Attempts(r.tokens[0]); got != 1 {
		t.Fatalf("retried before its time: %d attempts", got)
	}
	r.clock.advance(time.Second)
	r.drain(d)
	log = r.log()
	if e := log["d0000"]; e.Status != hotzone.StatusSent || e.Attempts != 2 {
		t.Errorf("d0000 after its backoff: %s, %d attempts; want sent after 2", e.Status, e.Attempts)
	}
	// Retry-After is a floor: 30 s, whatever the backoff says.
	if e := log["d0001"]; e.Status != hotzone.StatusQueued {
		t.Errorf("d0001 was retried before its Retry-After: %s", e.Status)
	}
	r.clock.advance(30 * time.Second)
	r.drain(d)
	r.clock.advance(time.Second)
	r.drain(d)
	log = r.log()
	if e := log["d0001"]; e.Status != hotzone.StatusSent {
		t.Errorf("d0001 after its Retry-After: %s, want sent", e.Status)
	}
	if e := log["d0002"]; e.Status != hotzone.StatusFailed || e.Attempts != 3 {
		t.Errorf("d0002 always failing: %s after %d attempts; want failed after 3", e.Status, e.Attempts)
	}
}

// TestDispatchEndsWhatCannotBeSent: a notification whose event is over,
// or whose device lost its token, gets its final status without a push.
func TestDispatchEndsWhatCannotBeSent(t *testing.T) {
	r := newRig(t, 2)
	ctx := context.Background()
	// d0001's token moves to a new device: d0001 has none left.
	if _, _, err := r.db.PutDevice(ctx, hotzone.Device{ID: "new", BrandID: r.brandID, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: r.tokens[1]}); err != nil {
		t.Fatal(err)
	}
	d := r.dispatcher(nil)
	r.drain(d)
	if e := r.log()["d0001"]; e.Status != hotzone.StatusFailed || r.fake.Count(r.tokens[1]) != 0 {
		t.Errorf("a device without a token: %s and %d pushes; want failed and none", e.Status, r.fake.Count(r.tokens[1]))
	}

	// An event past its ends_at that the expiry loop has not ended yet.
	r2 := newRig(t, 1)
	r2.clock.advance(2 * time.Hour)
	r2.drain(r2.dispatcher(nil))
	if e := r2.log()["d0000"]; e.Status != hotzone.StatusExpired || r2.fake.Accepted() != 0 {
		t.Errorf("a notification of an event that is over: %s and %d pushes; want expired and none", e.Status, r2.fake.Accepted())
	}
}

// TestDispatchTakesOverLapsedClaims: what another consumer claimed and
// never recorded (it died) is left alone while its lease runs and sent
// once after.
func TestDispatchTakesOverLapsedClaims(t *testing.T) {
	const n = 20
	r := newRig(t, n)
	held, err := r.db.Claim(context.Background(), r.lane, r.clock.now(), 5, push.DefaultLease)
	if err != nil || len(held) != 5 {
		t.Fatalf("Claim = %d, %v", len(held), err)
	}
	d := r.dispatcher(nil)
	r.drain(d)
	if got := r.fake.Accepted(); got != n-5 {
		t.Fatalf("%d pushes while 5 were held by another consumer, want %d", got, n-5)
	}
	r.clock.advance(push.DefaultLease)
	r.drain(d)
	for i, tok := range r.tokens {
		if got := r.fake.Count(tok); got != 1 {
			t.Errorf("device %d got %d pushes, want 1", i, got)
		}
	}
}

// flakyOutbox is the real outbox whose event lookups fail for a while,
// as a backend that cannot be reached does.
type flakyOutbox struct {
	*bolt.DB
	failures atomic.Int32
}

var errUnreachable = errors.New("storage unreachable")

func (f *flakyOutbox) Event(ctx context.Context, brandID, eventID string) (hotzone.Event, hotzone.Counts, error) {
	if f.failures.Add(-1) >= 0 {
		return hotzone.Event{}, hotzone.Counts{}, errUnreachable
	}
	return f.DB.Event(ctx, brandID, eventID)
}

// TestDispatchRetriesStorageErrors: a lookup that fails for any reason
// but "not found" is no reason to expire or fail a notification: it is
// left to its lease and sent after it.
func TestDispatchRetriesStorageErrors(t *testing.T) {
	r := newRig(t, 4)
	box := &flakyOutbox{DB: r.db}
	box.failures.Store(4)
	d := r.dispatcher(box)
	r.drain(d)
	for id, e := range r.log() {
		if e.Status != hotzone.StatusQueued || e.Attempts != 0 {
			t.Fatalf("%s after its event lookup failed: %s, %d attempts; want queued, untried", id, e.Status, e.Attempts)
		}
	}
	r.clock.advance(push.DefaultLease)
	r.drain(d)
	for id, e := range r.log() {
		if e.Status != hotzone.StatusSent {
			t.Errorf("%s once storage answers again: %s, want sent", id, e.Status)
		}
	}
}
