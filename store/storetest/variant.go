package storetest

import (
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testVariantChosenWhenQueued: a queued notification carries which of
// the event's texts its device gets, chosen by the device's locale when
// it is queued (a suppressed one carries none, an upgraded one gets it
// then); the outbox hands it out with it, and a sent result keeps it.
func testVariantChosenWhenQueued(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "a", placeA))
	locales := map[string]string{"dch": "de-CH", "nl": "nl", "none": ""}
	for id, loc := range locales {
		d := newDevice(b.ID, id)
		d.Locale = loc
		e.putDevice(d)
	}
	ev := e.event(b.ID, "a")
	ev.Localized = map[string]hotzone.Message{"de": {Title: "Heiss", Body: "Frisch"}}
	ev, _, _, err := e.s.StartEvent(e.ctx, ev, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := e.s.Event(e.ctx, b.ID, ev.ID); err != nil || got.Localized["de"].Title != "Heiss" {
		t.Fatalf("the event's languages as stored: %+v, %v", got.Localized, err)
	}
	e.suppress(ev, "quiet_hours", "nl")
	e.queue(ev, "dch", "none")
	e.queue(ev, "nl") // upgraded: chosen now
	want := map[string]string{"dch": "de", "nl": "", "none": ""}
	for _, n := range e.eventLog(ev) {
		if n.Variant != want[n.DeviceID] {
			t.Errorf("%s's notification has variant %q, want %q", n.DeviceID, n.Variant, want[n.DeviceID])
		}
	}
	claimed, err := e.s.Claim(e.ctx, hotzone.Lane{BrandID: b.ID, Provider: hotzone.ProviderAPNs}, e.now(), 10, time.Minute)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("Claim = %d, %v; want 3", len(claimed), err)
	}
	var ds []hotzone.Delivery
	for _, n := range claimed {
		if n.Variant != want[n.DeviceID] {
			t.Errorf("claimed %s with variant %q, want %q", n.DeviceID, n.Variant, want[n.DeviceID])
		}
		now := e.now()
		ds = append(ds, hotzone.Delivery{NotificationID: n.ID, Claim: n.Claim, BrandID: b.ID, Provider: hotzone.ProviderAPNs, Status: hotzone.StatusSent, At: now})
	}
	if err := e.s.Record(e.ctx, ds); err != nil {
		t.Fatal(err)
	}
	for _, n := range e.eventLog(ev) {
		if n.Status != hotzone.StatusSent || n.Variant != want[n.DeviceID] {
			t.Errorf("after sending, %s: %s with variant %q, want sent with %q", n.DeviceID, n.Status, n.Variant, want[n.DeviceID])
		}
	}
}

// testDeviceTags: a device's tags are kept with its registration, across
// a restart, and a registration without them leaves it with none.
func testDeviceTags(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	d := newDevice(b.ID, "d1")
	d.Tags = []string{"persona:commuter", "loyalty:gold"}
	e.putDevice(d)
	check := func(when string, want []string) {
		t.Helper()
		got, _, err := e.s.Device(e.ctx, b.ID, "d1")
		if err != nil || len(got.Tags) != len(want) || (len(want) > 0 && (got.Tags[0] != want[0] || got.Tags[1] != want[1])) {
			t.Errorf("%s: tags %v, %v; want %v", when, got.Tags, err, want)
		}
	}
	check("after the registration", d.Tags)
	e.restart()
	check("after a restart", d.Tags)
	d.Tags = nil
	e.putDevice(d)
	check("after a registration without tags", nil)
	e.restart()
	check("after that and a restart", nil)
}
