package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testLog: the delivery log lists a brand's entries newest first,
// filtered by event, device and status, in pages through the Before
// cursor.
func testLog(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	o := e.newBrand("other")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putStore(circleStore(b.ID, "s2", placeB))
	e.putStore(circleStore(o.ID, "s", placeA))
	for _, id := range []string{"a", "b", "c"} {
		e.putDevice(newDevice(b.ID, id))
	}
	e.putDevice(newDevice(o.ID, "a"))
	ev1, ev2 := e.startEvent(b.ID, "s"), e.startEvent(b.ID, "s2")
	evO := e.startEvent(o.ID, "s")

	// One entry per step, a second apart: oldest first.
	type made struct {
		ev     hotzone.Event
		device string
		at     time.Time
	}
	var order []made
	for _, st := range []struct {
		ev     hotzone.Event
		device string
		reason string
	}{{ev1, "a", ""}, {ev1, "b", ""}, {ev1, "c", "quiet_hours"}, {ev2, "a", ""}, {ev2, "c", ""}} {
		e.clock.Advance(time.Second)
		e.consider(st.ev, hold(st.reason), st.device)
		order = append(order, made{st.ev, st.device, e.now()})
	}
	e.queue(evO, "a")
	sent := e.claim(apnsLane(b.ID), 1, time.Minute)
	e.clock.Advance(time.Second)
	e.recordAll(sent, hotzone.StatusSent)

	all := e.logOf(b.ID, hotzone.NotificationQuery{})
	if len(all) != len(order) {
		t.Fatalf("the log has %d entries, want %d", len(all), len(order))
	}
	for i, n := range all {
		m := order[len(order)-1-i]
		if n.ID == "" || n.BrandID != b.ID || n.EventID != m.ev.ID || n.StoreID != m.ev.StoreID || n.DeviceID != m.device ||
			n.Provider != hotzone.ProviderAPNs || !n.CreatedAt.Equal(m.at) {
			t.Errorf("log entry %d (newest first) = %+v; want %s's for %s created at %v", i, n, m.device, m.ev.ID, m.at)
		}
	}
	if n := all[2]; n.Status != hotzone.StatusSuppressed || n.Reason != "quiet_hours" {
		t.Errorf("a suppressed entry = %s %q", n.Status, n.Reason)
	}
	if n := all[4]; n.ID != sent[0].ID || n.Status != hotzone.StatusSent || n.Attempts != 1 || n.SentAt == nil || !n.SentAt.Equal(e.now()) || n.ProviderID != "pid-"+n.ID {
		t.Errorf("the sent entry = %+v; want sent now in one attempt with the provider's id", n)
	}
	id := func(i int) string { return all[i].ID }
	cases := []struct {
		name string
		q    hotzone.NotificationQuery
		want []string
		more bool
	}{
		{"all", hotzone.NotificationQuery{Limit: 10}, []string{id(0), id(1), id(2), id(3), id(4)}, false},
		{"no limit", hotzone.NotificationQuery{}, []string{id(0), id(1), id(2), id(3), id(4)}, false},
		{"event", hotzone.NotificationQuery{EventID: ev1.ID, Limit: 10}, []string{id(2), id(3), id(4)}, false},
		{"device", hotzone.NotificationQuery{DeviceID: "a", Limit: 10}, []string{id(1), id(4)}, false},
		{"status", hotzone.NotificationQuery{Status: hotzone.StatusQueued, Limit: 10}, []string{id(0), id(1), id(3)}, false},
		{"event and device", hotzone.NotificationQuery{EventID: ev2.ID, DeviceID: "c", Limit: 10}, []string{id(0)}, false},
		{"first page", hotzone.NotificationQuery{Limit: 2}, []string{id(0), id(1)}, true},
		{"middle page", hotzone.NotificationQuery{Before: id(1), Limit: 2}, []string{id(2), id(3)}, true},
		{"exact last page", hotzone.NotificationQuery{Before: id(2), Limit: 2}, []string{id(3), id(4)}, false},
		{"short last page", hotzone.NotificationQuery{Before: id(3), Limit: 2}, []string{id(4)}, false},
		{"filtered page", hotzone.NotificationQuery{EventID: ev1.ID, Before: id(2), Limit: 1}, []string{id(3)}, true},
		{"before the oldest", hotzone.NotificationQuery{Before: id(4), Limit: 10}, nil, false},
		{"unknown device", hotzone.NotificationQuery{DeviceID: "nope", Limit: 10}, nil, false},
	}
	check := func(when string) {
		t.Helper()
		for _, tc := range cases {
			ns, more, err := e.s.Notifications(e.ctx, b.ID, tc.q)
			got := make([]string, len(ns))
			for i, n := range ns {
				got[i] = n.ID
			}
			if err != nil || !slices.Equal(got, tc.want) || more != tc.more {
				t.Errorf("Notifications(%s) %s = %v more %v, %v; want %v more %v", tc.name, when, got, more, err, tc.want, tc.more)
			}
		}
		if ns := e.logOf(o.ID, hotzone.NotificationQuery{}); len(ns) != 1 || ns[0].BrandID != o.ID {
			t.Errorf("the other brand's log %s = %+v; want its one entry", when, ns)
		}
	}
	check("")
	e.restart()
	check("after a restart")
	sameJSON(t, "the log after a restart", e.logOf(b.ID, hotzone.NotificationQuery{}), all)
}

// testStats: the operator's numbers follow what is stored.
func testStats(t *testing.T, open Opener) {
	e := newEnv(t, open)
	e.wantStats("fresh storage", hotzone.Stats{})
	if err := e.s.Ping(e.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	b, o := e.newBrand("b"), e.newBrand("o")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putStore(circleStore(b.ID, "s2", placeB))
	e.putStore(circleStore(o.ID, "s", placeA))
	for _, id := range []string{"d1", "d2", "d3"} {
		e.putDevice(newDevice(b.ID, id))
	}
	e.putDevice(newDevice(o.ID, "d1"))
	ended := e.startEvent(b.ID, "s2")
	e.endEvent(ended)
	evB, evO := e.startEvent(b.ID, "s"), e.startEvent(o.ID, "s")
	t1 := e.clock.Advance(time.Minute)
	e.queue(evB, "d1", "d2")
	t2 := e.clock.Advance(time.Minute)
	e.queue(evO, "d1")
	e.suppress(evB, "quiet_hours", "d3")
	e.wantStats("with three queued", hotzone.Stats{Brands: 2, Stores: 3, Devices: 4, LiveEvents: 2, OutboxDepth: 3, OutboxOldest: t1})

	e.clock.Advance(time.Minute)
	e.recordAll(e.claim(apnsLane(b.ID), 10, time.Minute), hotzone.StatusSent)
	e.wantStats("with one queued", hotzone.Stats{Brands: 2, Stores: 3, Devices: 4, LiveEvents: 2, OutboxDepth: 1, OutboxOldest: t2})
	e.restart()
	e.wantStats("after a restart", hotzone.Stats{Brands: 2, Stores: 3, Devices: 4, LiveEvents: 2, OutboxDepth: 1, OutboxOldest: t2})

	e.endEvent(evO)
	if err := e.s.DeleteDevice(e.ctx, b.ID, "d3"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteStore(e.ctx, b.ID, "s"); err != nil {
		t.Fatal(err)
	}
	e.wantStats("with nothing queued", hotzone.Stats{Brands: 2, Stores: 2, Devices: 3})
}

// wantStats checks Stats; OutboxOldest is when the oldest queued
// notification was queued, to the millisecond.
func (e *env) wantStats(when string, want hotzone.Stats) {
	e.t.Helper()
	got, err := e.s.Stats(e.ctx)
	if err != nil {
		e.t.Fatalf("Stats %s: %v", when, err)
	}
	oldest, wantOldest := got.OutboxOldest, want.OutboxOldest
	got.OutboxOldest, want.OutboxOldest = time.Time{}, time.Time{}
	if got != want {
		e.t.Errorf("Stats %s = %+v, want %+v", when, got, want)
	}
	if wantOldest.IsZero() != oldest.IsZero() || oldest.After(wantOldest) || wantOldest.Sub(oldest) >= time.Millisecond {
		e.t.Errorf("Stats %s: outbox oldest %v, want %v", when, oldest, wantOldest)
	}
}

// testCredentials: credentials are kept per brand and provider; every
// upload has a version never used before for them, and a verdict on
// another version is ignored.
func testCredentials(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	_, err := e.s.Credentials(e.ctx, b.ID, hotzone.ProviderAPNs)
	e.wantNotFound(err, "Credentials before any upload")

	apns := hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: []byte("-----BEGIN PRIVATE KEY-----\nMIG…\n-----END PRIVATE KEY-----\n"),
		KeyID: "ABC123DEFG", TeamID: "DEF123GHIJ", Topic: "com.example.app", Environment: "production"}
	fcm := hotzone.PushCredentials{Provider: hotzone.ProviderFCM, Secret: []byte(`{"type":"service_account","private_key":"…"}`),
		ProjectID: "example", ClientEmail: "push@example.iam.gserviceaccount.com", TokenURI: "https://oauth2.googleapis.com/token"}
	type version struct {
		p hotzone.Provider
		v int64
	}
	versions := map[version]bool{}
	put := func(c hotzone.PushCredentials) hotzone.PushCredentials {
		t.Helper()
		if err := e.s.PutCredentials(e.ctx, b.ID, c); err != nil {
			t.Fatalf("PutCredentials(%s): %v", c.Provider, err)
		}
		got, err := e.s.Credentials(e.ctx, b.ID, c.Provider)
		if err != nil {
			t.Fatalf("Credentials(%s): %v", c.Provider, err)
		}
		if got.Status != "ok" || got.Error != nil || !got.UpdatedAt.Equal(e.now()) {
			t.Errorf("uploaded credentials = status %q error %v updated %v; want ok, no error, updated now", got.Status, got.Error, got.UpdatedAt)
		}
		if v := (version{c.Provider, got.Version}); versions[v] {
			t.Errorf("an upload of %s credentials has version %d, used before", c.Provider, got.Version)
		} else {
			versions[v] = true
		}
		want := c
		want.Status, want.Version, want.UpdatedAt = "ok", got.Version, got.UpdatedAt
		sameJSON(t, "uploaded credentials", got, want)
		return got
	}
	mark := func(c hotzone.PushCredentials, version int64, broken bool, reason string) {
		t.Helper()
		if err := e.s.MarkCredentials(e.ctx, b.ID, c.Provider, version, broken, reason); err != nil {
			t.Fatalf("MarkCredentials: %v", err)
		}
	}
	want := func(what string, c hotzone.PushCredentials, status string, reason string) {
		t.Helper()
		got, err := e.s.Credentials(e.ctx, b.ID, c.Provider)
		if err != nil {
			t.Fatalf("Credentials %s: %v", what, err)
		}
		if got.Status != status || (reason == "") != (got.Error == nil) || (got.Error != nil && *got.Error != reason) || got.Version != c.Version {
			t.Errorf("credentials %s = status %q error %v version %d; want %q %q version %d", what, got.Status, got.Error, got.Version, status, reason, c.Version)
		}
	}

	v1 := put(apns)
	f1 := put(fcm)
	e.clock.Advance(time.Minute)
	apns.KeyID = "NEWKEY4567"
	v2 := put(apns)
	want("after a second upload", v2, "ok", "")
	mark(v2, v1.Version, true, "403 InvalidProviderToken")
	want("after a verdict on an older version", v2, "ok", "")
	mark(v2, v2.Version, true, "403 InvalidProviderToken")
	want("marked broken", v2, "broken", "403 InvalidProviderToken")
	mark(v2, v2.Version, false, "")
	want("marked ok again", v2, "ok", "")
	mark(v2, v2.Version, true, "403 ExpiredProviderToken")
	e.clock.Advance(time.Minute)
	v3 := put(apns) // a new upload is ok whatever the old one was
	want("the other provider", f1, "ok", "")

	if err := e.s.DeleteCredentials(e.ctx, b.ID, hotzone.ProviderAPNs); err != nil {
		t.Fatalf("DeleteCredentials: %v", err)
	}
	_, err = e.s.Credentials(e.ctx, b.ID, hotzone.ProviderAPNs)
	e.wantNotFound(err, "Credentials after DeleteCredentials")
	if err := e.s.DeleteCredentials(e.ctx, b.ID, hotzone.ProviderAPNs); err != nil {
		t.Errorf("DeleteCredentials of none = %v, want nil", err)
	}
	mark(v3, v3.Version, true, "late verdict")
	_, err = e.s.Credentials(e.ctx, b.ID, hotzone.ProviderAPNs)
	e.wantNotFound(err, "Credentials after a verdict on deleted ones")
	want("the other provider after a delete", f1, "ok", "")

	// Uploaded again after the delete: a verdict on any earlier upload
	// must not reach the new one.
	e.clock.Advance(time.Minute)
	v4 := put(apns)
	for _, old := range []hotzone.PushCredentials{v1, v2, v3} {
		mark(v4, old.Version, true, "stale verdict")
	}
	want("after verdicts on uploads before the delete", v4, "ok", "")

	e.restart()
	got, err := e.s.Credentials(e.ctx, b.ID, hotzone.ProviderAPNs)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "credentials after a restart", got, v4)
	want("the other provider after a restart", f1, "ok", "")
	mark(v4, v4.Version, true, "403 BadCertificate")
	want("marked after a restart", v4, "broken", "403 BadCertificate")
	e.clock.Advance(time.Minute)
	v5 := put(apns)
	for _, old := range []hotzone.PushCredentials{v1, v2, v3, v4} {
		mark(v5, old.Version, true, "stale verdict")
	}
	want("after stale verdicts, uploaded after a restart", v5, "ok", "")
	e.wantNotFound(e.s.PutCredentials(e.ctx, "nope", apns), "PutCredentials of an unknown brand")
}
