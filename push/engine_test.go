package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/store/bolt"
)

// bubbleBrand opens a database inside a synctest bubble with a brand
// (no quiet hours, no caps), a 100 m store "s" at 1°N 1°E and n iOS
// devices with tokens.
func bubbleBrand(t *testing.T, n int) (*bolt.DB, string) {
	t.Helper()
	ctx := context.Background()
	db, err := bolt.Open(t.TempDir(), bolt.Options{SecretKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	br, _, _, err := db.CreateBrand(ctx, "bubble")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdatePolicy(ctx, br.ID, func(p *hotzone.Policy) error {
		p.QuietHours, p.DailyCap, p.MinIntervalS = nil, 0, 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st := hotzone.Store{ID: "s", BrandID: br.ID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 1, Lon: 1, RadiusM: 100}}}
	st.Fence, _ = st.Spec.Build()
	if _, _, err := db.PutStore(ctx, st); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d := hotzone.Device{ID: fmt.Sprintf("d%d", i), BrandID: br.ID, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: deviceToken(i)}
		if _, _, err := db.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	return db, br.ID
}

// TestEnginePing: a ping is rate limited per device (burst, then one a
// second), an unknown device is not found and takes no bucket, and a
// qualifying ping inside a live event's fence queues the device once.
func TestEnginePing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db, brandID := bubbleBrand(t, 2)
		e := push.NewEngine(ctx, db, push.EngineOptions{PingRate: 1, PingBurst: 2})
		at := func(lat, accuracy float64) hotzone.Position {
			return hotzone.Position{Lat: lat, Lon: 1, AccuracyM: accuracy, TS: time.Now()}
		}
		var ans push.PingAnswer
		if err := e.Ping(ctx, brandID, "nobody", at(1, 10), time.Now(), &ans); !errors.Is(err, hotzone.ErrNotFound) {
			t.Fatalf("ping of an unknown device = %v, want ErrNotFound", err)
		}
		if err := e.Ping(ctx, brandID, "d0", at(5, 10), time.Now(), &ans); err != nil || len(ans.Inside) != 0 {
			t.Fatalf("ping outside every fence = %+v, %v", ans, err)
		}
		ev := hotzone.Event{ID: hotzone.NewID(time.Now()), BrandID: brandID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), Status: hotzone.EventLive}
		if _, _, _, err := e.StartEvent(ctx, ev, ""); err != nil {
			t.Fatal(err)
		}
		e.Wait()
		// Inaccurate: inside, answered, nothing logged.
		if err := e.Ping(ctx, brandID, "d0", at(1, 900), time.Now(), &ans); err != nil || len(ans.Inside) != 1 || ans.Results[0].Reason != push.ReasonLowAccuracy {
			t.Fatalf("inaccurate ping = %+v, %v", ans, err)
		}
		var limited *push.RateLimitedError
		if err := e.Ping(ctx, brandID, "d0", at(1, 10), time.Now(), &ans); !errors.As(err, &limited) {
			t.Fatalf("third ping within the burst of 2 = %v, want rate limited", err)
		}
		time.Sleep(limited.RetryAfter)
		if err := e.Ping(ctx, brandID, "d0", at(1, 10), time.Now(), &ans); err != nil || ans.Results[0].Status != hotzone.StatusQueued {
			t.Fatalf("qualifying ping = %+v, %v; want queued", ans, err)
		}
		time.Sleep(time.Second)
		if err := e.Ping(ctx, brandID, "d0", at(1, 10), time.Now(), &ans); err != nil || ans.Results[0].Reason != push.ReasonAlreadyNotified {
			t.Fatalf("second qualifying ping = %+v, %v; want already notified", ans, err)
		}
		ns, _, err := db.Notifications(ctx, brandID, hotzone.NotificationQuery{Limit: 10})
		if err != nil || len(ns) != 1 || ns[0].DeviceID != "d0" {
			t.Fatalf("log = %+v, %v; want one entry for d0", ns, err)
		}
	})
}

// leased is a backend of one process that keeps fan-out leases as a
// shared one does (push.FanOutLeases; a lease never lapses here), and
// counts the asks.
type leased struct {
	*bolt.DB
	mu     sync.Mutex
	owners map[string]string // event id -> owner, "done" once done
	asked  int
}

func (l *leased) LeaseFanOut(_ context.Context, _, eventID, owner string, _ time.Time, _ time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked++
	if o, ok := l.owners[eventID]; ok && o != owner {
		return false, nil
	}
	l.owners[eventID] = owner
	return true, nil
}

func (l *leased) FanOutDone(_ context.Context, _, eventID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.owners[eventID] = "done"
	return nil
}

// state is how often the lease was asked for and who holds it.
func (l *leased) state(eventID string) (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.asked, l.owners[eventID]
}

// TestTakeOverWaitsForTheStartingNode: a live event this node did not
// start is its starting node's to fan out; this node asks for the lease
// only half a lease after it first saw the event (asking at once, it
// could win from a starting node slowed by its own flushes and fan out
// without the positions that node held), then fans it out if it got it.
func TestTakeOverWaitsForTheStartingNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db, brandID := bubbleBrand(t, 3)
		for i := range 3 {
			if err := db.RecordPosition(ctx, brandID, fmt.Sprintf("d%d", i), hotzone.Position{Lat: 1, Lon: 1, AccuracyM: 5, TS: time.Now()}, true); err != nil {
				t.Fatal(err)
			}
		}
		l := &leased{DB: db, owners: map[string]string{}}
		e := push.NewEngine(ctx, l, push.EngineOptions{})
		ev := hotzone.Event{ID: hotzone.NewID(time.Now()), BrandID: brandID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), Status: hotzone.EventLive}
		// Started through another node: in the backend, not this engine.
		if _, _, _, err := db.StartEvent(ctx, ev, ""); err != nil {
			t.Fatal(err)
		}
		endDue := func() {
			t.Helper()
			if err := e.EndDue(ctx); err != nil {
				t.Fatal(err)
			}
			e.Wait()
		}
		endDue()
		if asked, _ := l.state(ev.ID); asked != 0 {
			t.Fatalf("the lease was asked for %d times when the event was first seen; want none", asked)
		}
		time.Sleep(push.FanOutLease/2 - time.Second)
		endDue()
		if asked, _ := l.state(ev.ID); asked != 0 {
			t.Fatalf("the lease was asked for %d times within half a lease; want none", asked)
		}
		time.Sleep(time.Second)
		endDue()
		// The fan-out renews its lease as it goes: asked once or more.
		if asked, owner := l.state(ev.ID); asked == 0 || owner != "done" {
			t.Fatalf("half a lease on: asked %d times, owner %q; want the lease taken, and done", asked, owner)
		}
		if _, c, err := db.Event(ctx, brandID, ev.ID); err != nil || c.Queued != 3 {
			t.Fatalf("counts after the take-over = %+v, %v; want 3 queued", c, err)
		}
	})
}

// TestRunHoldsThenReleases: the running dispatcher picks up what a
// fan-out queues without being asked twice; while the brand's
// credentials are broken it holds them (queued, retried later, never
// lost), and removing the credentials releases them at once to dry run.
func TestRunHoldsThenReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		db, brandID := bubbleBrand(t, 3)
		for i := range 3 {
			if err := db.RecordPosition(ctx, brandID, fmt.Sprintf("d%d", i), hotzone.Position{Lat: 1, Lon: 1, AccuracyM: 5, TS: time.Now()}, true); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.PutCredentials(ctx, brandID, hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: []byte("p8"), KeyID: "KEY0000001", TeamID: "TEAM000001", Topic: "com.example"}); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkCredentials(ctx, brandID, hotzone.ProviderAPNs, 1, true, "403 InvalidProviderToken"); err != nil {
			t.Fatal(err)
		}
		senders := push.NewSenders(db, push.SendersOptions{Bg: ctx})
		disp := push.NewDispatcher(db, senders.For, push.DispatcherOptions{})
		e := push.NewEngine(ctx, db, push.EngineOptions{Wake: disp.Wake})
		done := make(chan struct{})
		go func() { disp.Run(ctx); close(done) }()

		ev := hotzone.Event{ID: hotzone.NewID(time.Now()), BrandID: brandID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), Status: hotzone.EventLive}
		if _, _, _, err := e.StartEvent(ctx, ev, ""); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		statuses := func() map[hotzone.NotificationStatus]int {
			ns, _, err := db.Notifications(ctx, brandID, hotzone.NotificationQuery{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			out := map[hotzone.NotificationStatus]int{}
			for _, n := range ns {
				out[n.Status]++
				if n.Status == hotzone.StatusQueued && (n.LastError == nil || n.Attempts == 0) {
					t.Errorf("held notification %s has no attempt or error: %+v", n.ID, n)
				}
			}
			return out
		}
		if got := statuses(); got[hotzone.StatusQueued] != 3 {
			t.Fatalf("with broken credentials: %v, want 3 held (queued)", got)
		}
		// Held, they come back now and then and stay held.
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := statuses(); got[hotzone.StatusQueued] != 3 {
			t.Fatalf("a minute later: %v, want 3 still held", got)
		}
		if err := e.DeleteCredentials(ctx, brandID, hotzone.ProviderAPNs); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := statuses(); got[hotzone.StatusDryRun] != 3 {
			t.Fatalf("after the credentials were removed: %v, want 3 dry_run", got)
		}
		cancel()
		<-done
		e.Wait()
	})
}

// TestPresenceTimesOutAndTellsWebhooks: a device that enters a fence and
// goes silent for presence_ttl_s is swept out: it exits at its last
// ping, and a webhook listening hears entered, then exited with the
// visit's duration; a device still pinging stays inside.
func TestPresenceTimesOutAndTellsWebhooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db, brandID := bubbleBrand(t, 2)
		if _, err := db.UpdatePolicy(ctx, brandID, func(p *hotzone.Policy) error { p.PresenceTTLS = 60; return nil }); err != nil {
			t.Fatal(err)
		}
		w := hotzone.Webhook{ID: "w", BrandID: brandID, URL: "https://example.com/h", Events: []hotzone.HookType{hotzone.HookEntered, hotzone.HookExited},
			Secret: "whsec_x", CreatedAt: time.Now()}
		if err := db.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		e := push.NewEngine(ctx, db, push.EngineOptions{})
		inside := func() hotzone.Position { return hotzone.Position{Lat: 1, Lon: 1, AccuracyM: 10, TS: time.Now()} }
		var ans push.PingAnswer
		for _, id := range []string{"d0", "d1"} {
			if err := e.Ping(ctx, brandID, id, inside(), time.Now(), &ans); err != nil {
				t.Fatal(err)
			}
		}
		entered := time.Now()
		time.Sleep(30 * time.Second)
		if err := e.Ping(ctx, brandID, "d0", inside(), time.Now(), &ans); err != nil { // d0 seen again
			t.Fatal(err)
		}
		lastSeen := time.Now()
		for range 4 { // 120 s: d1 silent throughout, d0 for the last 90 s
			time.Sleep(30 * time.Second)
			if _, err := e.SweepPresence(ctx, 100); err != nil {
				t.Fatal(err)
			}
		}
		ps, err := db.Presences(ctx, brandID, []string{"d0", "d1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps[1].Visits) != 0 {
			t.Errorf("d1, silent for 120 s with a 60 s ttl, still has %+v", ps[1].Visits)
		}
		if len(ps[0].Visits) != 0 {
			// d0 too went silent after its second ping (90 s ago).
			t.Errorf("d0, silent for 90 s, still has %+v", ps[0].Visits)
		}
		ds, _, err := db.Deliveries(ctx, brandID, "w", hotzone.DeliveryQuery{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for i := len(ds) - 1; i >= 0; i-- {
			var data struct {
				DeviceID  string `json:"device_id"`
				DurationS *int64 `json:"duration_s"`
			}
			if err := json.Unmarshal(ds[i].Happening.Data, &data); err != nil {
				t.Fatal(err)
			}
			got[data.DeviceID] = append(got[data.DeviceID], string(ds[i].Happening.Type))
			if ds[i].Happening.Type == hotzone.HookExited {
				want := int64(0)
				if data.DeviceID == "d0" {
					want = int64(lastSeen.Sub(entered).Seconds())
				}
				if data.DurationS == nil || *data.DurationS != want {
					t.Errorf("%s exited after %v s, want %d (its last ping)", data.DeviceID, data.DurationS, want)
				}
			}
		}
		for _, id := range []string{"d0", "d1"} {
			if fmt.Sprint(got[id]) != "[entered exited]" {
				t.Errorf("%s's webhook deliveries: %v, want entered then exited", id, got[id])
			}
		}
	})
}

// TestPresenceKeptOnlyWhenUsed: a brand with neither the dwell trigger
// nor a presence webhook keeps no presence (its pings pay nothing for
// it); with the dwell trigger on, the same ping opens a visit.
func TestPresenceKeptOnlyWhenUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db, brandID := bubbleBrand(t, 1)
		e := push.NewEngine(ctx, db, push.EngineOptions{})
		var ans push.PingAnswer
		ping := func() {
			t.Helper()
			if err := e.Ping(ctx, brandID, "d0", hotzone.Position{Lat: 1, Lon: 1, AccuracyM: 10, TS: time.Now()}, time.Now(), &ans); err != nil {
				t.Fatal(err)
			}
		}
		ping()
		if ps, _ := db.Presences(ctx, brandID, []string{"d0"}); len(ps[0].Visits) != 0 {
			t.Errorf("presence kept for a brand that does not use it: %+v", ps[0])
		}
		if _, err := db.UpdatePolicy(ctx, brandID, func(p *hotzone.Policy) error { p.Trigger = hotzone.TriggerDwell; return nil }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		ping()
		if ps, _ := db.Presences(ctx, brandID, []string{"d0"}); len(ps[0].Visits) != 1 {
			t.Errorf("no visit under the dwell trigger: %+v", ps[0])
		}
	})
}
