package storetest

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// snapshot is everything a brand's storage answers, as the API would
// show it.
type snapshot struct {
	Brand       hotzone.Brand
	Policy      hotzone.Policy
	Stores      []hotzone.Store
	ManagerKeys map[string][]hotzone.Key
	Devices     map[string]hotzone.Device
	Positions   map[string]*hotzone.DevicePosition
	Events      []hotzone.EventCounts
	Live        map[string]hotzone.EventCounts
	Log         []hotzone.Notification
	Credentials map[hotzone.Provider]hotzone.PushCredentials
	Stats       hotzone.Stats
	Lanes       []hotzone.Lane
}

func (e *env) snapshot(brandID string, devices []string) snapshot {
	e.t.Helper()
	var (
		s   snapshot
		err error
	)
	fail := func(what string, err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatalf("snapshot: %s: %v", what, err)
		}
	}
	s.Brand, err = e.s.Brand(e.ctx, brandID)
	fail("Brand", err)
	s.Policy, err = e.s.Policy(e.ctx, brandID)
	fail("Policy", err)
	s.Stores, _, err = e.s.Stores(e.ctx, brandID, hotzone.StoreQuery{})
	fail("Stores", err)
	s.ManagerKeys, s.Live = map[string][]hotzone.Key{}, map[string]hotzone.EventCounts{}
	for _, st := range s.Stores {
		s.ManagerKeys[st.ID], err = e.s.ManagerKeys(e.ctx, brandID, st.ID)
		fail("ManagerKeys", err)
		switch ev, c, err := e.s.LiveEvent(e.ctx, brandID, st.ID); {
		case err == nil:
			s.Live[st.ID] = hotzone.EventCounts{Event: ev, Counts: c}
		case !errors.Is(err, hotzone.ErrNotFound):
			fail("LiveEvent", err)
		}
	}
	s.Devices, s.Positions = map[string]hotzone.Device{}, map[string]*hotzone.DevicePosition{}
	for _, id := range devices {
		s.Devices[id], s.Positions[id], err = e.s.Device(e.ctx, brandID, id)
		fail("Device", err)
	}
	s.Events, _, err = e.s.Events(e.ctx, brandID, hotzone.EventQuery{})
	fail("Events", err)
	s.Log = e.logOf(brandID, hotzone.NotificationQuery{})
	s.Credentials = map[hotzone.Provider]hotzone.PushCredentials{}
	for _, p := range []hotzone.Provider{hotzone.ProviderAPNs, hotzone.ProviderFCM} {
		switch c, err := e.s.Credentials(e.ctx, brandID, p); {
		case err == nil:
			s.Credentials[p] = c
		case !errors.Is(err, hotzone.ErrNotFound):
			fail("Credentials", err)
		}
	}
	s.Stats, err = e.s.Stats(e.ctx)
	fail("Stats", err)
	s.Lanes, err = e.s.Lanes(e.ctx)
	fail("Lanes", err)
	slices.SortFunc(s.Lanes, func(a, b hotzone.Lane) int {
		return cmp.Or(strings.Compare(a.BrandID, b.BrandID), strings.Compare(string(a.Provider), string(b.Provider)))
	})
	return s
}

// testRestart: closing and opening again keeps everything: brands, keys,
// policy, stores and fences, manager keys, devices and their positions
// (written behind; Close writes them), live and ended events with their
// counts, idempotency keys, the log, the outbox and credentials.
func testRestart(t *testing.T, open Opener) {
	e := newEnv(t, open)
	operator, err := e.s.EnsureOperatorKey(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	b := e.newBrand("b")
	if _, err := e.s.UpdatePolicy(e.ctx, b.ID, func(p *hotzone.Policy) error {
		p.DailyCap, p.MinIntervalS, p.QuietHours = 7, 60, nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.putStore(circleStore(b.ID, "s", placeA, "downtown", "mall"))
	e.putStore(circleStore(b.ID, "s2", placeB))
	label := "tablet"
	mk, mgr, err := e.s.CreateManagerKey(e.ctx, b.ID, "s", &label)
	if err != nil {
		t.Fatal(err)
	}
	devs := e.putDevices(b.ID, "d", 5)
	e.putDevice(android(b.ID, "an"))
	devs = append(devs, "an", "silent")
	e.putDevice(hotzone.Device{ID: "silent", BrandID: b.ID, Platform: hotzone.PlatformIOS, Timezone: "Europe/Paris"})
	if err := e.s.PutCredentials(e.ctx, b.ID, hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: []byte("p8"), KeyID: "K", TeamID: "T", Topic: "x"}); err != nil {
		t.Fatal(err)
	}
	c, err := e.s.Credentials(e.ctx, b.ID, hotzone.ProviderAPNs)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.MarkCredentials(e.ctx, b.ID, hotzone.ProviderAPNs, c.Version, true, "403 InvalidProviderToken"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.PutCredentials(e.ctx, b.ID, hotzone.PushCredentials{Provider: hotzone.ProviderFCM, Secret: []byte("{}"), ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}

	// An ended event: one sent, one expired.
	lane := apnsLane(b.ID)
	ended := e.startEvent(b.ID, "s2")
	e.queue(ended, "d000", "d001")
	first := e.claim(lane, 1, time.Minute)
	e.recordAll(first, hotzone.StatusSent)
	e.clock.Advance(time.Minute)
	e.endEvent(ended)

	// A live event started with a key: one sent, one waiting for a
	// retry, two claimed by a consumer that has not answered, one
	// suppressed, one (android) unclaimed.
	e.clock.Advance(time.Minute)
	live := e.event(b.ID, "s")
	if _, _, _, err := e.s.StartEvent(e.ctx, live, "idem"); err != nil {
		t.Fatal(err)
	}
	e.queue(live, "d000", "d001", "d002", "d003", "an")
	e.suppress(live, "quiet_hours", "d004")
	claimed := byDevice(e.claim(lane, 10, 10*time.Minute))
	retry := result(claimed["d001"], hotzone.StatusQueued, e.now())
	retry.NextAttempt = e.now().Add(2 * time.Hour)
	e.record(result(claimed["d000"], hotzone.StatusSent, e.now()), retry)

	// Positions and a key's use, written behind.
	e.clock.Advance(time.Minute)
	for _, id := range devs[:4] {
		e.ping(b.ID, id, placeA)
	}
	if err := e.s.RecordPosition(e.ctx, b.ID, "d004", hotzone.Position{Lat: placeA.Lat, Lon: placeA.Lon, AccuracyM: 900, TS: e.now()}, false); err != nil {
		t.Fatal(err)
	}
	e.ping(b.ID, "an", placeB)
	if k, err := e.s.Authenticate(e.ctx, mgr); err != nil {
		t.Fatal(err)
	} else if err := e.s.TouchKey(e.ctx, k); err != nil {
		t.Fatal(err)
	}

	before := e.snapshot(b.ID, devs)
	e.restart()
	if again, err := e.s.EnsureOperatorKey(e.ctx, ""); err != nil || again != "" {
		t.Errorf("EnsureOperatorKey after a restart = %q, %v", again, err)
	}
	after := e.snapshot(b.ID, devs)
	sameJSON(t, "storage after a restart", after, before)

	e.wantKey(operator, hotzone.KindOperator, "")
	e.wantKey(b.admin, hotzone.KindAdmin, b.ID)
	e.wantKey(b.app, hotzone.KindApp, b.ID)
	if k := e.wantKey(mgr, hotzone.KindManager, b.ID); k != nil && (k.ID != mk.ID || k.StoreID != "s") {
		t.Errorf("the manager key after a restart = %+v", k)
	}
	e.wantFences(b.ID, placeA, "s")
	e.wantFences(b.ID, placeB, "s2")
	in, err := e.s.DevicesIn(e.ctx, b.ID, circleStore(b.ID, "s", placeA).Fence, epoch)
	slices.Sort(in)
	if want := devs[:4]; err != nil || !slices.Equal(in, want) {
		t.Errorf("DevicesIn after a restart = %v, %v; want %v", in, err, want)
	}
	if ev, _, created, err := e.s.StartEvent(e.ctx, e.event(b.ID, "s"), "idem"); err != nil || created || ev.ID != live.ID {
		t.Errorf("a replayed start after a restart = %s created %v, %v; want %s", ev.ID, created, err, live.ID)
	}

	// Once its lease has passed, what was claimed and unanswered is due;
	// the retry waits for its time.
	e.clock.Advance(10 * time.Minute)
	due := e.claim(lane, 10, time.Minute)
	if got := byDevice(due); len(due) != 2 || got["d002"].ID != claimed["d002"].ID || got["d003"].ID != claimed["d003"].ID {
		t.Errorf("Claim after a restart = %+v; want the two claimed and unanswered", due)
	}
	fcm := e.claim(hotzone.Lane{BrandID: b.ID, Provider: hotzone.ProviderFCM}, 10, time.Minute)
	if len(fcm) != 1 || fcm[0].DeviceID != "an" {
		t.Errorf("Claim(fcm) after a restart = %+v; want an's", fcm)
	}
	e.recordAll(append(due, fcm...), hotzone.StatusSent)
	e.clock.Set(retry.NextAttempt)
	if got := e.claim(lane, 10, time.Minute); len(got) != 1 || got[0].ID != claimed["d001"].ID {
		t.Errorf("Claim at the retry's time after a restart = %+v; want d001's", got)
	}

	// Decisions go on from where they were: once per event, the
	// suppressed upgradable, the history kept.
	out := e.consider(live, queueAll, "d000", "d004")
	if out[0].Reason != hotzone.ReasonAlreadyNotified || out[1].Status != hotzone.StatusQueued || out[1].Prev != hotzone.StatusSuppressed {
		t.Errorf("Consider after a restart = %+v; want d000 already notified, d004 upgraded", out)
	}
	e.endEvent(live)
	next := e.startEvent(b.ID, "s")
	var seen []time.Time
	e.consider(next, func(d hotzone.Device, h []time.Time) string { seen = h; return "x" }, "d000")
	if len(seen) != 2 || !seen[0].Equal(ended.StartsAt) || !seen[1].Equal(live.StartsAt) {
		t.Errorf("d000's history after a restart = %v, want [%v %v]", seen, ended.StartsAt, live.StartsAt)
	}
}
