package storetest

import (
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testBrandsIsolated: brands share nothing, not even when their ids,
// tokens and keys' stores collide; no call made for one brand reaches
// another's data.
func testBrandsIsolated(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b, o := e.newBrand("b"), e.newBrand("o")
	stB := circleStore(b.ID, "s", placeA)
	stO := circleStore(o.ID, "s", placeA)
	stO.Name = "Theirs"
	e.putStore(stB)
	e.putStore(stO)
	for _, br := range []string{b.ID, o.ID} {
		d := newDevice(br, "d")
		d.Token = "shared"
		e.putDevice(d)
		e.ping(br, "d", placeA)
	}
	e.wantToken("d", b.ID, "shared", epoch)
	e.wantToken("d", o.ID, "shared", epoch)
	if st, err := e.s.Store(e.ctx, b.ID, "s"); err != nil || st.Name != stB.Name {
		t.Errorf("Store(b, s) = %q, %v; want b's own", st.Name, err)
	}
	e.wantFences(o.ID, placeA, "s")
	mk, secret, err := e.s.CreateManagerKey(e.ctx, b.ID, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.UpdatePolicy(e.ctx, o.ID, func(p *hotzone.Policy) error { p.DailyCap = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	e.wantPolicy(b.ID, hotzone.DefaultPolicy())

	ev := e.startEvent(b.ID, "s")
	e.queue(ev, "d")
	e.putDevice(newDevice(o.ID, "theirs"))
	if out := e.consider(ev, queueAll, "theirs"); out[0] != (hotzone.Outcome{DeviceID: "theirs"}) {
		t.Errorf("Consider of another brand's device = %+v; want an empty outcome", out[0])
	}
	_, _, err = e.s.LiveEvent(e.ctx, o.ID, "s")
	e.wantNotFound(err, "LiveEvent of a store whose namesake in another brand is live")
	_, _, err = e.s.Event(e.ctx, o.ID, ev.ID)
	e.wantNotFound(err, "Event of another brand's event")
	_, _, err = e.s.EndEvent(e.ctx, o.ID, ev.ID, e.now())
	e.wantNotFound(err, "EndEvent of another brand's event")
	e.wantNotFound(e.s.DeleteManagerKey(e.ctx, o.ID, mk.ID), "DeleteManagerKey of another brand's key")
	e.wantKey(secret, hotzone.KindManager, b.ID)
	if list, _, err := e.s.Events(e.ctx, o.ID, hotzone.EventQuery{}); err != nil || len(list) != 0 {
		t.Errorf("Events(o) = %+v, %v; want none", list, err)
	}
	if ns := e.logOf(o.ID, hotzone.NotificationQuery{}); len(ns) != 0 {
		t.Errorf("the other brand's log = %+v; want none", ns)
	}
	if got := e.claim(apnsLane(o.ID), 10, time.Minute); len(got) != 0 {
		t.Errorf("Claim(o's lane) = %+v; want none", got)
	}
	if in, err := e.s.DevicesIn(e.ctx, o.ID, stB.Fence, epoch); err != nil || len(in) != 1 || in[0] != "d" {
		t.Errorf("DevicesIn(o) = %v, %v; want o's own d", in, err)
	}
	if err := e.s.PutCredentials(e.ctx, b.ID, hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Credentials(e.ctx, o.ID, hotzone.ProviderAPNs)
	e.wantNotFound(err, "Credentials of a brand with none, while another has some")

	// Erasing o's d leaves b's d, its token and its entry.
	if err := e.s.DeleteDevice(e.ctx, o.ID, "d"); err != nil {
		t.Fatal(err)
	}
	e.wantToken("d", b.ID, "shared", epoch)
	if ns := e.eventLog(ev); len(ns) != 1 {
		t.Errorf("b's log after erasing o's d = %+v", ns)
	}
	e.wantCounts(ev, hotzone.Counts{DevicesInFence: 1, Queued: 1})
	// Deleting o's store leaves b's store, key and event.
	if err := e.s.DeleteStore(e.ctx, o.ID, "s"); err != nil {
		t.Fatal(err)
	}
	e.wantKey(secret, hotzone.KindManager, b.ID)
	if live, _, err := e.s.LiveEvent(e.ctx, b.ID, "s"); err != nil || live.ID != ev.ID {
		t.Errorf("LiveEvent(b, s) after deleting o's s = %s, %v", live.ID, err)
	}
	e.wantFences(b.ID, placeA, "s")
}

// testNotFound: whatever names a brand, store, device, event or key
// that does not exist answers ErrNotFound.
func testNotFound(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putDevice(newDevice(b.ID, "d"))
	ctx, s := e.ctx, e.s
	pos := hotzone.Position{Lat: 1, Lon: 2, AccuracyM: 5, TS: e.now()}
	fence := circleStore(b.ID, "s", placeA).Fence
	calls := []struct {
		name string
		call func() error
	}{
		{"Brand", func() error { _, err := s.Brand(ctx, "nope"); return err }},
		{"Policy", func() error { _, err := s.Policy(ctx, "nope"); return err }},
		{"UpdatePolicy", func() error {
			_, err := s.UpdatePolicy(ctx, "nope", func(*hotzone.Policy) error { return nil })
			return err
		}},
		{"PutStore, unknown brand", func() error { _, _, err := s.PutStore(ctx, circleStore("nope", "s", placeA)); return err }},
		{"ImportStores, unknown brand", func() error {
			_, _, err := s.ImportStores(ctx, "nope", []hotzone.Store{circleStore("nope", "s", placeA)})
			return err
		}},
		{"Store", func() error { _, err := s.Store(ctx, b.ID, "nope"); return err }},
		{"Store, unknown brand", func() error { _, err := s.Store(ctx, "nope", "s"); return err }},
		{"Stores, unknown brand", func() error { _, _, err := s.Stores(ctx, "nope", hotzone.StoreQuery{}); return err }},
		{"DeleteStore", func() error { return s.DeleteStore(ctx, b.ID, "nope") }},
		{"DeleteStore, unknown brand", func() error { return s.DeleteStore(ctx, "nope", "s") }},
		{"CreateManagerKey", func() error { _, _, err := s.CreateManagerKey(ctx, b.ID, "nope", nil); return err }},
		{"CreateManagerKey, unknown brand", func() error { _, _, err := s.CreateManagerKey(ctx, "nope", "s", nil); return err }},
		{"ManagerKeys", func() error { _, err := s.ManagerKeys(ctx, b.ID, "nope"); return err }},
		{"DeleteManagerKey", func() error { return s.DeleteManagerKey(ctx, b.ID, "nope") }},
		{"PutDevice, unknown brand", func() error { _, _, err := s.PutDevice(ctx, newDevice("nope", "d")); return err }},
		{"Device", func() error { _, _, err := s.Device(ctx, b.ID, "nope"); return err }},
		{"Device, unknown brand", func() error { _, _, err := s.Device(ctx, "nope", "d"); return err }},
		{"DeleteDevice", func() error { return s.DeleteDevice(ctx, b.ID, "nope") }},
		{"DeleteDevice, unknown brand", func() error { return s.DeleteDevice(ctx, "nope", "d") }},
		{"RecordPosition", func() error { return s.RecordPosition(ctx, b.ID, "nope", pos, true) }},
		{"RecordPosition, unknown brand", func() error { return s.RecordPosition(ctx, "nope", "d", pos, true) }},
		{"DevicesIn, unknown brand", func() error { _, err := s.DevicesIn(ctx, "nope", fence, epoch); return err }},
		{"StartEvent", func() error { _, _, _, err := s.StartEvent(ctx, e.event(b.ID, "nope"), ""); return err }},
		{"StartEvent, unknown brand", func() error { _, _, _, err := s.StartEvent(ctx, e.event("nope", "s"), ""); return err }},
		{"Event", func() error { _, _, err := s.Event(ctx, b.ID, "nope"); return err }},
		{"Event, unknown brand", func() error { _, _, err := s.Event(ctx, "nope", "nope"); return err }},
		{"LiveEvent, none live", func() error { _, _, err := s.LiveEvent(ctx, b.ID, "s"); return err }},
		{"LiveEvent, unknown store", func() error { _, _, err := s.LiveEvent(ctx, b.ID, "nope"); return err }},
		{"EndEvent", func() error { _, _, err := s.EndEvent(ctx, b.ID, "nope", e.now()); return err }},
		{"Events, unknown brand", func() error { _, _, err := s.Events(ctx, "nope", hotzone.EventQuery{}); return err }},
		{"Notifications, unknown brand", func() error {
			_, _, err := s.Notifications(ctx, "nope", hotzone.NotificationQuery{Limit: 10})
			return err
		}},
		{"PutCredentials, unknown brand", func() error {
			return s.PutCredentials(ctx, "nope", hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: []byte("k")})
		}},
		{"Credentials, none", func() error { _, err := s.Credentials(ctx, b.ID, hotzone.ProviderFCM); return err }},
		{"Credentials, unknown brand", func() error { _, err := s.Credentials(ctx, "nope", hotzone.ProviderFCM); return err }},
	}
	for _, c := range calls {
		wantNotFound(t, c.call(), c.name)
	}
}
