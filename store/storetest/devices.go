package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// testDevices: PutDevice creates or updates; positions keep the newest
// report, the qualifying one apart; DevicesIn finds the devices whose
// last qualifying position is in a fence and recent enough.
func testDevices(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	t0 := e.now()
	d, isNew, err := e.s.PutDevice(e.ctx, newDevice(b.ID, "d"))
	if err != nil || !isNew {
		t.Fatalf("PutDevice(new) = created %v, %v", isNew, err)
	}
	if d.BrandID != b.ID || !d.CreatedAt.Equal(t0) || !d.UpdatedAt.Equal(t0) || !d.TokenAt.Equal(t0) || d.Token != "tok-d" {
		t.Errorf("PutDevice(new) = %+v; want created, updated and its token registered now", d)
	}
	e.wantDevice(d, nil)

	e.clock.Advance(time.Minute)
	upd := newDevice(b.ID, "d")
	upd.Locale, upd.OptIn = "fr", false
	d, isNew, err = e.s.PutDevice(e.ctx, upd)
	if err != nil || isNew {
		t.Fatalf("PutDevice(existing) = created %v, %v", isNew, err)
	}
	if !d.CreatedAt.Equal(t0) || !d.UpdatedAt.Equal(e.now()) || !d.TokenAt.Equal(t0) || d.Locale != "fr" || d.OptIn {
		t.Errorf("PutDevice(existing) = %+v; want created_at and token_at kept, updated now", d)
	}
	e.wantDevice(d, nil)
	bare := e.putDevice(hotzone.Device{ID: "bare", BrandID: b.ID, Platform: hotzone.PlatformAndroid, Timezone: "UTC"})
	if bare.Token != "" || !bare.TokenAt.IsZero() {
		t.Errorf("a device without a token = %+v; want no token_at", bare)
	}
	e.wantDevice(bare, nil)

	// Reports arrive out of order; the qualifying position is kept apart.
	at := func(p geo.Point, d time.Duration) hotzone.Position {
		return hotzone.Position{Lat: p.Lat, Lon: p.Lon, AccuracyM: 20, TS: t0.Add(d)}
	}
	steps := []struct {
		name       string
		pos        hotzone.Position
		qualifying bool
		last, qual hotzone.Position
	}{
		{"first", at(placeA, 0), true, at(placeA, 0), at(placeA, 0)},
		{"older qualifying", at(placeB, -time.Minute), true, at(placeA, 0), at(placeA, 0)},
		{"newer, not qualifying", at(placeB, time.Minute), false, at(placeB, time.Minute), at(placeA, 0)},
		{"older than the last, newer than the qualifying", at(placeC, 30*time.Second), true, at(placeB, time.Minute), at(placeC, 30*time.Second)},
		{"older, not qualifying", at(placeA, 45*time.Second), false, at(placeB, time.Minute), at(placeC, 30*time.Second)},
		{"newest qualifying", at(placeA, 2*time.Minute), true, at(placeA, 2*time.Minute), at(placeA, 2*time.Minute)},
	}
	for _, st := range steps {
		if err := e.s.RecordPosition(e.ctx, b.ID, "d", st.pos, st.qualifying); err != nil {
			t.Fatalf("RecordPosition(%s): %v", st.name, err)
		}
		_, pos, err := e.s.Device(e.ctx, b.ID, "d")
		if err != nil || pos == nil || pos.Qualifying == nil {
			t.Fatalf("Device after %s = %+v, %v", st.name, pos, err)
		}
		if !pos.Last.TS.Equal(st.last.TS) || pos.Last.Point() != st.last.Point() || !pos.Qualifying.TS.Equal(st.qual.TS) || pos.Qualifying.Point() != st.qual.Point() {
			t.Errorf("after %s: last %+v qualifying %+v; want %+v and %+v", st.name, pos.Last, *pos.Qualifying, st.last, st.qual)
		}
	}
	e.wantNotFound(e.s.RecordPosition(e.ctx, b.ID, "nope", at(placeA, 0), true), "RecordPosition of an unknown device")

	// DevicesIn: the last qualifying position, inside, recent enough.
	fenceA, fenceB := circleStore(b.ID, "a", placeA).Fence, circleStore(b.ID, "b", placeB).Fence
	now := t0.Add(10 * time.Minute)
	e.clock.Set(now)
	report := func(id string, p geo.Point, ago time.Duration, qualifying bool) {
		t.Helper()
		e.putDevice(newDevice(b.ID, id))
		pos := hotzone.Position{Lat: p.Lat, Lon: p.Lon, AccuracyM: 20, TS: now.Add(-ago)}
		if err := e.s.RecordPosition(e.ctx, b.ID, id, pos, qualifying); err != nil {
			t.Fatalf("RecordPosition(%s): %v", id, err)
		}
	}
	report("in", placeA, 0, true)
	report("old", placeA, 10*time.Minute, true)
	report("out", away(placeA), 0, true)
	report("unqualified", placeA, 0, false)
	report("moved", placeA, 2*time.Minute, true)
	report("moved", placeB, time.Minute, true)
	report("left", placeA, 2*time.Minute, true)
	report("left", away(placeA), time.Minute, false) // not qualifying: fan-out still sees it inside
	o := e.newBrand("other")
	e.putDevice(newDevice(o.ID, "foreign"))
	if err := e.s.RecordPosition(e.ctx, o.ID, "foreign", hotzone.Position{Lat: placeA.Lat, Lon: placeA.Lon, AccuracyM: 5, TS: now}, true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		fence *geo.Fence
		since time.Time
		want  []string
	}{
		{"recent", fenceA, now.Add(-5 * time.Minute), []string{"in", "left"}},
		{"at since exactly", fenceA, now.Add(-10 * time.Minute), []string{"d", "in", "left", "old"}},
		{"just after", fenceA, now.Add(-10*time.Minute + time.Nanosecond), []string{"d", "in", "left"}},
		{"all of them stale", fenceA, now.Add(time.Nanosecond), nil},
		{"moved in", fenceB, now.Add(-time.Hour), []string{"moved"}},
	}
	check := func() {
		t.Helper()
		for _, tc := range cases {
			got, err := e.s.DevicesIn(e.ctx, b.ID, tc.fence, tc.since)
			slices.Sort(got)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("DevicesIn(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
			}
		}
	}
	check()
	_, before, _ := e.s.Device(e.ctx, b.ID, "d")

	// Positions are written behind, and Close writes them.
	e.restart()
	check()
	got, after, err := e.s.Device(e.ctx, b.ID, "d")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "position after a restart", after, before)
	sameJSON(t, "device after a restart", got, d)
}

// wantDevice checks what Device answers.
func (e *env) wantDevice(d hotzone.Device, pos *hotzone.DevicePosition) {
	e.t.Helper()
	got, gotPos, err := e.s.Device(e.ctx, d.BrandID, d.ID)
	if err != nil {
		e.t.Fatalf("Device(%s): %v", d.ID, err)
	}
	sameJSON(e.t, "Device("+d.ID+")", got, d)
	sameJSON(e.t, "position of "+d.ID, gotPos, pos)
}

// testTokenMoves: a push token belongs to one device of a brand; the
// device that registers it takes it from the one that held it.
func testTokenMoves(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	t0 := e.now()
	a := newDevice(b.ID, "a")
	a.Token = "T"
	if got := e.putDevice(a); !got.TokenAt.Equal(t0) {
		t.Errorf("token_at of a new token = %v, want %v", got.TokenAt, t0)
	}

	// The same token again keeps its token_at.
	e.clock.Advance(time.Minute)
	a.Locale = "de"
	if got := e.putDevice(a); !got.TokenAt.Equal(t0) || got.Token != "T" {
		t.Errorf("re-registering the same token: token %q at %v; want T at %v", got.Token, got.TokenAt, t0)
	}

	// Device b registers T: it moves.
	t2 := e.clock.Advance(time.Minute)
	bd := newDevice(b.ID, "b")
	bd.Token = "T"
	if got := e.putDevice(bd); got.Token != "T" || !got.TokenAt.Equal(t2) {
		t.Errorf("b registering T = %q at %v; want T at %v", got.Token, got.TokenAt, t2)
	}
	e.wantToken("a", b.ID, "", time.Time{})
	e.wantToken("b", b.ID, "T", t2)

	// Decisions see a without its token.
	tokens := map[string]string{}
	ev := e.startEvent(b.ID, "s")
	e.consider(ev, func(d hotzone.Device, _ []time.Time) string {
		tokens[d.ID] = d.Token
		return ""
	}, "a", "b")
	if tokens["a"] != "" || tokens["b"] != "T" {
		t.Errorf("decide saw tokens %v; want a without one, b with T", tokens)
	}

	// A new token gets the current time; a's old one stays with b.
	t3 := e.clock.Advance(time.Minute)
	a.Token = "U"
	if got := e.putDevice(a); got.Token != "U" || !got.TokenAt.Equal(t3) {
		t.Errorf("a registering U = %q at %v; want U at %v", got.Token, got.TokenAt, t3)
	}
	e.wantToken("b", b.ID, "T", t2)

	// b moves on to V: T is free, and c takes it without touching b.
	t4 := e.clock.Advance(time.Minute)
	bd.Token = "V"
	e.putDevice(bd)
	c := newDevice(b.ID, "c")
	c.Token = "T"
	e.putDevice(c)
	e.wantToken("b", b.ID, "V", t4)
	e.wantToken("c", b.ID, "T", t4)
	e.wantToken("a", b.ID, "U", t3)

	// Tokens belong to a brand: another brand's device with V takes
	// nothing from b.
	o := e.newBrand("other")
	x := newDevice(o.ID, "x")
	x.Token = "V"
	e.putDevice(x)
	e.wantToken("b", b.ID, "V", t4)
	e.wantToken("x", o.ID, "V", t4)

	// Dropping a token frees it too.
	e.clock.Advance(time.Minute)
	a.Token, a.Provider = "", ""
	if got := e.putDevice(a); got.Token != "" || !got.TokenAt.IsZero() {
		t.Errorf("a dropping its token = %q at %v", got.Token, got.TokenAt)
	}
	dd := newDevice(b.ID, "d")
	dd.Token = "U"
	e.putDevice(dd)
	e.wantToken("a", b.ID, "", time.Time{})

	// Devices racing for one token: one of them ends up with it.
	racers := make([]string, 10)
	var wg sync.WaitGroup
	for i := range racers {
		racers[i] = fmt.Sprintf("racer%d", i)
		d := newDevice(b.ID, racers[i])
		d.Token = "Z"
		wg.Go(func() {
			if _, _, err := e.s.PutDevice(e.ctx, d); err != nil {
				t.Errorf("PutDevice(%s): %v", d.ID, err)
			}
		})
	}
	wg.Wait()
	holders := 0
	for _, id := range racers {
		d, _, err := e.s.Device(e.ctx, b.ID, id)
		if err != nil {
			t.Fatalf("Device(%s): %v", id, err)
		}
		if d.Token == "Z" {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("%d devices registered token Z at once; %d hold it, want 1", len(racers), holders)
	}

	e.restart()
	e.wantToken("a", b.ID, "", time.Time{})
	e.wantToken("b", b.ID, "V", t4)
	e.wantToken("c", b.ID, "T", t4)
	e.wantToken("d", b.ID, "U", e.now())
	e.wantToken("x", o.ID, "V", t4)
	// And ownership is still enforced after the restart.
	e.clock.Advance(time.Minute)
	c.Token = "V"
	e.putDevice(c)
	e.wantToken("b", b.ID, "", time.Time{})
	e.wantToken("c", b.ID, "V", e.now())
}

// wantToken checks a device's token and when it was registered.
func (e *env) wantToken(deviceID, brandID, token string, at time.Time) {
	e.t.Helper()
	d, _, err := e.s.Device(e.ctx, brandID, deviceID)
	if err != nil {
		e.t.Fatalf("Device(%s): %v", deviceID, err)
	}
	if d.Token != token || !d.TokenAt.Equal(at) {
		e.t.Errorf("device %s has token %q at %v; want %q at %v", deviceID, d.Token, d.TokenAt, token, at)
	}
}

// testInvalidTokenClears: an invalid_token result clears the device's
// token when it was registered before TokenInvalidSince (zero: always),
// and keeps a newer registration.
func testInvalidTokenClears(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	t0 := e.now()
	for _, id := range []string{"stale", "renewed", "always"} {
		e.putDevice(newDevice(b.ID, id))
	}
	ev := e.startEvent(b.ID, "s")
	e.queue(ev, "stale", "renewed", "always")
	claimed := byDevice(e.claim(apnsLane(b.ID), 10, time.Hour))

	// renewed registers a new token before the verdict on its old one.
	t1 := e.clock.Advance(time.Hour)
	renewed := newDevice(b.ID, "renewed")
	renewed.Token = "fresh"
	e.putDevice(renewed)

	invalid := func(id string, since time.Time) hotzone.Delivery {
		d := result(claimed[id], hotzone.StatusInvalidToken, e.now())
		d.TokenInvalidSince = since
		return d
	}
	e.record(invalid("stale", t0.Add(time.Minute)), invalid("renewed", t0.Add(30*time.Minute)), invalid("always", time.Time{}))

	check := func() {
		t.Helper()
		e.wantToken("stale", b.ID, "", time.Time{})
		e.wantToken("renewed", b.ID, "fresh", t1)
		e.wantToken("always", b.ID, "", time.Time{})
		for _, n := range e.eventLog(ev) {
			if n.Status != hotzone.StatusInvalidToken || n.Attempts != 1 || n.LastError == nil {
				t.Errorf("log entry of %s = %+v; want invalid_token after one attempt, with its error", n.DeviceID, n)
			}
		}
		e.wantCounts(ev, hotzone.Counts{DevicesInFence: 3, Failed: 3})
	}
	check()
	e.restart()
	check()
	// The cleared token is free for another device.
	other := newDevice(b.ID, "other")
	other.Token = "tok-stale"
	if _, isNew, err := e.s.PutDevice(e.ctx, other); err != nil || !isNew {
		t.Fatalf("PutDevice with a cleared token = %v, %v", isNew, err)
	}
	e.wantToken("other", b.ID, "tok-stale", e.now())
	e.wantToken("renewed", b.ID, "fresh", t1)
}

// testEraseCascades: erasing a device removes everything of it: record,
// token, position, queue history and log entries, with its events'
// counts; nothing of it comes back through the outbox or a restart.
func testEraseCascades(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putDevice(newDevice(b.ID, "d"))
	e.putDevice(newDevice(b.ID, "keep"))
	e.ping(b.ID, "d", placeA)
	e.ping(b.ID, "keep", placeA)
	fence := circleStore(b.ID, "s", placeA).Fence
	lane := apnsLane(b.ID)

	// An ended event where both were sent, a live one where both wait
	// and d's notification is claimed by a consumer.
	ended := e.startEvent(b.ID, "s")
	e.queue(ended, "d", "keep")
	e.recordAll(e.claim(lane, 10, time.Minute), hotzone.StatusSent)
	e.endEvent(ended)
	e.clock.Advance(time.Minute)
	live := e.startEvent(b.ID, "s")
	e.queue(live, "d", "keep")
	var held hotzone.Notification
	for _, n := range e.claim(lane, 10, time.Minute) {
		if n.DeviceID == "d" {
			held = n
		}
	}
	if held.ID == "" {
		t.Fatal("Claim did not hand out d's notification")
	}
	e.wantCounts(ended, hotzone.Counts{DevicesInFence: 2, Sent: 2})
	e.wantCounts(live, hotzone.Counts{DevicesInFence: 2, Queued: 2})
	// Its position is on disk too, and a fan-out has seen it.
	e.restart()
	if in, err := e.s.DevicesIn(e.ctx, b.ID, fence, epoch.Add(-time.Hour)); err != nil || len(in) != 2 {
		t.Fatalf("DevicesIn before the erasure = %v, %v; want d and keep", in, err)
	}

	if err := e.s.DeleteDevice(e.ctx, b.ID, "d"); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	// The consumer that held d's notification reports on it.
	e.record(result(held, hotzone.StatusSent, e.now()))

	check := func(when string) {
		t.Helper()
		_, _, err := e.s.Device(e.ctx, b.ID, "d")
		e.wantNotFound(err, "Device of an erased device "+when)
		e.wantNotFound(e.s.RecordPosition(e.ctx, b.ID, "d", hotzone.Position{Lat: 1, Lon: 2, AccuracyM: 5, TS: e.now()}, true), "RecordPosition of an erased device "+when)
		e.wantNotFound(e.s.DeleteDevice(e.ctx, b.ID, "d"), "DeleteDevice of an erased device "+when)
		in, err := e.s.DevicesIn(e.ctx, b.ID, fence, epoch.Add(-time.Hour))
		if err != nil || !slices.Equal(in, []string{"keep"}) {
			t.Errorf("DevicesIn %s = %v, %v; want only keep", when, in, err)
		}
		if ns := e.logOf(b.ID, hotzone.NotificationQuery{DeviceID: "d"}); len(ns) != 0 {
			t.Errorf("log of the erased device %s = %+v; want nothing", when, ns)
		}
		for _, ev := range []hotzone.Event{ended, live} {
			ns := e.eventLog(ev)
			if len(ns) != 1 || ns[0].DeviceID != "keep" {
				t.Errorf("log of event %s %s = %+v; want only keep's entry", ev.ID, when, ns)
			}
		}
		e.wantCounts(ended, hotzone.Counts{DevicesInFence: 1, Sent: 1})
		e.wantCounts(live, hotzone.Counts{DevicesInFence: 1, Queued: 1})
		if _, c, err := e.s.LiveEvent(e.ctx, b.ID, "s"); err != nil || c != (hotzone.Counts{DevicesInFence: 1, Queued: 1}) {
			t.Errorf("LiveEvent counts %s = %+v, %v", when, c, err)
		}
		if out := e.consider(live, queueAll, "d"); out[0] != (hotzone.Outcome{DeviceID: "d"}) {
			t.Errorf("Consider of an erased device %s = %+v; want an empty outcome", when, out[0])
		}
		// Once every lease has passed only keep's notification is due.
		e.clock.Advance(2 * time.Minute)
		got := e.claim(lane, 10, time.Minute)
		if len(got) != 1 || got[0].DeviceID != "keep" {
			t.Errorf("Claim %s handed out %+v; want only keep's notification", when, got)
		}
	}
	check("after erasure")
	e.restart()
	check("after a restart")

	// A device registered under its id starts afresh: no position, no
	// history, and no tie to the erased device's token.
	e.eraseRacing(live)
	reborn := newDevice(b.ID, "d")
	reborn.Token = "tok-reborn"
	again, isNew, err := e.s.PutDevice(e.ctx, reborn)
	if err != nil || !isNew {
		t.Fatalf("PutDevice of the erased id = created %v, %v; want created", isNew, err)
	}
	e.wantDevice(again, nil)
	// The erased device's token is free: another device takes it from
	// nobody.
	other := newDevice(b.ID, "other")
	other.Token = "tok-d"
	if _, isNew, err := e.s.PutDevice(e.ctx, other); err != nil || !isNew {
		t.Fatalf("PutDevice with the erased device's token = %v, %v", isNew, err)
	}
	e.wantToken("other", b.ID, "tok-d", e.now())
	e.wantToken("d", b.ID, "tok-reborn", e.now())
	e.wantToken("keep", b.ID, "tok-keep", epoch)
	e.restart()
	e.wantDevice(again, nil)
	e.endEvent(live)
	next := e.startEvent(b.ID, "s")
	var seen []time.Time
	e.consider(next, func(_ hotzone.Device, h []time.Time) string { seen = h; return "" }, "d")
	if len(seen) != 0 {
		t.Errorf("decide saw history %v for a device registered after an erasure; want none", seen)
	}
}

// eraseRacing erases devices while they ping and are considered for the
// live event: once the erasure has returned nothing of a device is left,
// whatever ran alongside, and counts still equal the log.
func (e *env) eraseRacing(live hotzone.Event) {
	e.t.Helper()
	t := e.t
	const n = 20
	racers := e.putDevices(live.BrandID, "gone", n)
	var wg sync.WaitGroup
	for _, id := range racers {
		pos := hotzone.Position{Lat: placeA.Lat, Lon: placeA.Lon, AccuracyM: 5, TS: e.now()}
		wg.Go(func() {
			// Both may find the device gone: only errors other than
			// ErrNotFound are wrong.
			if err := e.s.RecordPosition(e.ctx, live.BrandID, id, pos, true); err != nil && !errors.Is(err, hotzone.ErrNotFound) {
				t.Errorf("RecordPosition(%s): %v", id, err)
			}
		})
		wg.Go(func() {
			if _, err := e.s.Consider(e.ctx, live, []string{id}, queueAll); err != nil {
				t.Errorf("Consider(%s): %v", id, err)
			}
		})
		wg.Go(func() {
			if err := e.s.DeleteDevice(e.ctx, live.BrandID, id); err != nil {
				t.Errorf("DeleteDevice(%s): %v", id, err)
			}
		})
	}
	wg.Wait()
	check := func(when string) {
		t.Helper()
		in, err := e.s.DevicesIn(e.ctx, live.BrandID, circleStore(live.BrandID, live.StoreID, placeA).Fence, epoch.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range racers {
			if _, _, err := e.s.Device(e.ctx, live.BrandID, id); !errors.Is(err, hotzone.ErrNotFound) {
				t.Errorf("Device(%s) erased %s = %v, want ErrNotFound", id, when, err)
			}
			if ns := e.logOf(live.BrandID, hotzone.NotificationQuery{DeviceID: id}); len(ns) != 0 {
				t.Errorf("device %s erased %s has log entries %+v", id, when, ns)
			}
			if slices.Contains(in, id) {
				t.Errorf("DevicesIn finds %s erased %s", id, when)
			}
		}
		e.countsMatchLog(live, "erasures racing decisions "+when)
	}
	check("while it pinged")
	e.restart()
	check("after a restart")
}
