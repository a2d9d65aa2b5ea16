package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testOneLiveEventPerStore: a store has at most one live event, however
// many start at once; an Idempotency-Key makes a start repeatable for
// IdempotencyWindow.
func testOneLiveEventPerStore(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	for _, id := range []string{"s", "s2", "s3", "s4", "s5"} {
		e.putStore(circleStore(b.ID, id, placeA))
	}
	e.putDevice(newDevice(b.ID, "d"))

	// A started event is live whatever the caller left in Status.
	first := e.event(b.ID, "s")
	unset := first
	unset.Status = ""
	got, c, created, err := e.s.StartEvent(e.ctx, unset, "")
	if err != nil || !created || c != (hotzone.Counts{}) {
		t.Fatalf("StartEvent = created %v, counts %+v, %v; want created with no counts", created, c, err)
	}
	sameJSON(t, "StartEvent's event", got, first)
	e.queue(first, "d")

	e.clock.Advance(time.Second)
	second := e.event(b.ID, "s")
	got, c, created, err = e.s.StartEvent(e.ctx, second, "")
	if !errors.Is(err, hotzone.ErrConflict) || created || got.ID != first.ID || c != (hotzone.Counts{DevicesInFence: 1, Queued: 1}) {
		t.Errorf("a second start = %s created %v counts %+v, %v; want ErrConflict with the live event %s and its counts", got.ID, created, c, err, first.ID)
	}
	if live, _, err := e.s.LiveEvent(e.ctx, b.ID, "s"); err != nil || live.ID != first.ID {
		t.Errorf("LiveEvent after a refused start = %s, %v; want %s", live.ID, err, first.ID)
	}
	_, _, err = e.s.Event(e.ctx, b.ID, second.ID)
	e.wantNotFound(err, "Event of a refused start")

	// The same key within the window answers the same event, live or
	// ended, and starts nothing.
	keyed := e.event(b.ID, "s2")
	if _, _, created, err := e.s.StartEvent(e.ctx, keyed, "k1"); err != nil || !created {
		t.Fatalf("StartEvent with a new key = created %v, %v", created, err)
	}
	replay := func(what string, want hotzone.Event) {
		t.Helper()
		retry := e.event(b.ID, "s2")
		got, c, created, err := e.s.StartEvent(e.ctx, retry, "k1")
		if err != nil || created || got.ID != want.ID || got.Status != want.Status {
			t.Errorf("StartEvent with a seen key %s = %s %s created %v, %v; want %s %s, not created", what, got.ID, got.Status, created, err, want.ID, want.Status)
			return
		}
		if _, wc, _ := e.s.Event(e.ctx, b.ID, want.ID); c != wc {
			t.Errorf("StartEvent with a seen key %s: counts %+v, want the event's %+v", what, c, wc)
		}
	}
	e.clock.Advance(time.Hour)
	replay("while it is live", keyed)
	e.queue(keyed, "d")
	e.clock.Advance(time.Hour)
	ended, _ := e.endEvent(keyed)
	replay("after it ended", ended)
	if _, _, err := e.s.LiveEvent(e.ctx, b.ID, "s2"); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("a replayed start started something: LiveEvent = %v", err)
	}
	// Another live event at the store does not hide the keyed one.
	e.clock.Advance(time.Hour)
	unkeyed := e.startEvent(b.ID, "s2")
	replay("while another event is live", ended)
	e.endEvent(unkeyed)
	// Keys are per store.
	if _, _, created, err := e.s.StartEvent(e.ctx, e.event(b.ID, "s3"), "k1"); err != nil || !created {
		t.Errorf("StartEvent at another store with a key seen elsewhere = created %v, %v; want created", created, err)
	}
	e.clock.Set(keyed.StartsAt.Add(hotzone.IdempotencyWindow - time.Minute))
	replay("just inside the window", ended)

	// After the window the key is forgotten.
	e.clock.Set(keyed.StartsAt.Add(hotzone.IdempotencyWindow + time.Minute))
	later := e.event(b.ID, "s2")
	got, _, created, err = e.s.StartEvent(e.ctx, later, "k1")
	if err != nil || !created || got.ID != later.ID {
		t.Fatalf("StartEvent with a key past the window = %s created %v, %v; want %s created", got.ID, created, err, later.ID)
	}
	replay("for the new event", later)

	_, _, _, err = e.s.StartEvent(e.ctx, e.event(b.ID, "nope"), "")
	e.wantNotFound(err, "StartEvent at an unknown store")
	_, _, _, err = e.s.StartEvent(e.ctx, e.event("nope", "s"), "")
	e.wantNotFound(err, "StartEvent of an unknown brand")

	// Concurrent starts: one wins, the others see it.
	const starters = 10
	type start struct {
		ev      hotzone.Event
		created bool
		err     error
	}
	race := func(storeID, key string) []start {
		evs := make([]hotzone.Event, starters)
		for i := range evs {
			evs[i] = e.event(b.ID, storeID)
		}
		out := make([]start, starters)
		var wg sync.WaitGroup
		for i := range starters {
			wg.Go(func() {
				out[i].ev, _, out[i].created, out[i].err = e.s.StartEvent(e.ctx, evs[i], key)
			})
		}
		wg.Wait()
		return out
	}
	winner := func(starts []start) string {
		var won []string
		for _, s := range starts {
			if s.created {
				won = append(won, s.ev.ID)
			}
		}
		if len(won) != 1 {
			t.Fatalf("%d concurrent starts created %d events, want 1", starters, len(won))
		}
		return won[0]
	}
	starts := race("s4", "")
	w := winner(starts)
	for _, s := range starts {
		if !s.created && (!errors.Is(s.err, hotzone.ErrConflict) || s.ev.ID != w) {
			t.Errorf("a losing concurrent start = %s, %v; want ErrConflict with %s", s.ev.ID, s.err, w)
		}
	}
	starts = race("s5", "same-key")
	w = winner(starts)
	for _, s := range starts {
		if s.err != nil || s.ev.ID != w {
			t.Errorf("a concurrent start with the same key = %s, %v; want %s", s.ev.ID, s.err, w)
		}
	}

	// Keys and live events survive a restart.
	e.restart()
	replay("after a restart", later)
	if _, _, _, err := e.s.StartEvent(e.ctx, e.event(b.ID, "s"), ""); !errors.Is(err, hotzone.ErrConflict) {
		t.Errorf("a second start after a restart = %v, want ErrConflict", err)
	}
}

// testEndExpires: ending an event expires what is still queued before
// it returns; an ended event takes no more decisions or results.
func testEndExpires(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	for _, id := range []string{"queued", "held", "sent", "quiet", "late"} {
		e.putDevice(newDevice(b.ID, id))
	}
	ev := e.startEvent(b.ID, "s")
	e.queue(ev, "queued", "held", "sent")
	e.suppress(ev, "quiet_hours", "quiet")
	lane := apnsLane(b.ID)
	claimed := byDevice(e.claim(lane, 10, time.Hour))
	e.record(result(claimed["sent"], hotzone.StatusSent, e.now()))
	// "held" stays claimed by a consumer that has not answered yet;
	// "queued" is released for a retry.
	retry := result(claimed["queued"], hotzone.StatusQueued, e.now())
	retry.NextAttempt = e.now().Add(time.Minute)
	e.record(retry)
	if got := e.counts(ev); got != (hotzone.Counts{DevicesInFence: 4, Queued: 2, Sent: 1, Suppressed: 1}) {
		t.Fatalf("counts before the end = %+v", got)
	}

	ch, err := e.s.Changed(e.ctx, b.ID, "s")
	if err != nil {
		t.Fatal(err)
	}
	at := e.clock.Advance(10 * time.Minute)
	wantCounts := hotzone.Counts{DevicesInFence: 4, Expired: 2, Sent: 1, Suppressed: 1}
	ended, c, err := e.s.EndEvent(e.ctx, b.ID, ev.ID, at)
	if err != nil {
		t.Fatalf("EndEvent: %v", err)
	}
	if ended.ID != ev.ID || ended.Status != hotzone.EventEnded || !ended.EndsAt.Equal(at) || !ended.StartsAt.Equal(ev.StartsAt) || c != wantCounts {
		t.Errorf("EndEvent = %+v %+v; want ended at %v with %+v", ended, c, at, wantCounts)
	}
	waitClosed(t, ch, "the event ended")

	// The consumer holding "held" answers late; a result for an expired
	// notification is not applied.
	e.record(result(claimed["held"], hotzone.StatusSent, e.now()))

	check := func(when string) {
		t.Helper()
		_, _, err := e.s.LiveEvent(e.ctx, b.ID, "s")
		e.wantNotFound(err, "LiveEvent of an ended event "+when)
		e.wantNotFound(func() error { _, _, err := e.s.EndEvent(e.ctx, b.ID, ev.ID, e.now()); return err }(), "EndEvent of an ended event "+when)
		live, err := e.s.LiveEvents(e.ctx)
		if err != nil || slices.ContainsFunc(live, func(l hotzone.Event) bool { return l.ID == ev.ID }) {
			t.Errorf("LiveEvents %s = %v, %v; want the ended event gone", when, live, err)
		}
		got, c, err := e.s.Event(e.ctx, b.ID, ev.ID)
		if err != nil {
			t.Fatalf("Event %s: %v", when, err)
		}
		sameJSON(t, "Event of an ended event "+when, got, ended)
		if c != wantCounts {
			t.Errorf("Event counts %s = %+v, want %+v", when, c, wantCounts)
		}
		list, _, err := e.s.Events(e.ctx, b.ID, hotzone.EventQuery{Status: hotzone.EventEnded})
		if err != nil || len(list) != 1 || list[0].Event.ID != ev.ID || list[0].Counts != wantCounts {
			t.Errorf("Events(ended) %s = %+v, %v", when, list, err)
		}
		log := byDevice(e.eventLog(ev))
		for dev, want := range map[string]hotzone.NotificationStatus{
			"queued": hotzone.StatusExpired, "held": hotzone.StatusExpired, "sent": hotzone.StatusSent, "quiet": hotzone.StatusSuppressed,
		} {
			if log[dev].Status != want {
				t.Errorf("log entry of %s %s = %s, want %s", dev, when, log[dev].Status, want)
			}
		}
		if n := log["held"]; n.Attempts != 0 || n.SentAt != nil {
			t.Errorf("the late result was applied to an expired notification: %+v", n)
		}
		// Nothing of the event is due, even once every lease and retry
		// time has passed.
		e.clock.Advance(2 * time.Hour)
		if got := e.claim(lane, 10, time.Minute); len(got) != 0 {
			t.Errorf("Claim %s handed out %d notifications of an ended event", when, len(got))
		}
		for _, o := range e.consider(ev, queueAll, "quiet", "late", "nope") {
			if o != (hotzone.Outcome{DeviceID: o.DeviceID}) {
				t.Errorf("Consider for an ended event %s = %+v; want an empty outcome", when, o)
			}
		}
		if got := e.counts(ev); got != wantCounts {
			t.Errorf("counts after Consider for an ended event = %+v", got)
		}
	}
	check("after it ended")
	e.restart()
	check("after a restart")

	// An end later than planned keeps the planned end.
	next := e.startEvent(b.ID, "s")
	ended, _, err = e.s.EndEvent(e.ctx, b.ID, next.ID, next.EndsAt.Add(time.Hour))
	if err != nil || !ended.EndsAt.Equal(next.EndsAt) {
		t.Errorf("EndEvent after the planned end = ends_at %v, %v; want %v", ended.EndsAt, err, next.EndsAt)
	}
	_, _, err = e.s.EndEvent(e.ctx, b.ID, "nope", e.now())
	e.wantNotFound(err, "EndEvent of an unknown event")
}

// testEventsList: Events lists a brand's events newest first, filtered
// by status and store, in pages through the Before cursor, each with its
// counts.
func testEventsList(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putStore(circleStore(b.ID, "s2", placeB))
	e.putDevice(newDevice(b.ID, "d"))
	var evs []hotzone.Event // e1..e5, oldest first
	for i, st := range []string{"s", "s2", "s", "s2", "s"} {
		e.clock.Advance(time.Minute)
		ev := e.startEvent(b.ID, st)
		e.queue(ev, "d")
		if i < 3 {
			e.endEvent(ev)
		}
		evs = append(evs, ev)
	}
	e1, e2, e3, e4, e5 := evs[0].ID, evs[1].ID, evs[2].ID, evs[3].ID, evs[4].ID
	cases := []struct {
		name string
		q    hotzone.EventQuery
		want []string
		more bool
	}{
		{"all", hotzone.EventQuery{}, []string{e5, e4, e3, e2, e1}, false},
		{"live", hotzone.EventQuery{Status: hotzone.EventLive}, []string{e5, e4}, false},
		{"ended", hotzone.EventQuery{Status: hotzone.EventEnded}, []string{e3, e2, e1}, false},
		{"store", hotzone.EventQuery{StoreID: "s"}, []string{e5, e3, e1}, false},
		{"store and status", hotzone.EventQuery{StoreID: "s", Status: hotzone.EventEnded}, []string{e3, e1}, false},
		{"first page", hotzone.EventQuery{Limit: 2}, []string{e5, e4}, true},
		{"middle page", hotzone.EventQuery{Before: e4, Limit: 2}, []string{e3, e2}, true},
		{"exact last page", hotzone.EventQuery{Before: e3, Limit: 2}, []string{e2, e1}, false},
		{"short last page", hotzone.EventQuery{Before: e2, Limit: 2}, []string{e1}, false},
		{"filtered page", hotzone.EventQuery{StoreID: "s2", Limit: 1}, []string{e4}, true},
		{"filtered last page", hotzone.EventQuery{StoreID: "s2", Before: e4, Limit: 1}, []string{e2}, false},
		{"before the oldest", hotzone.EventQuery{Before: e1}, nil, false},
		{"unknown store", hotzone.EventQuery{StoreID: "nope"}, nil, false},
	}
	check := func(when string) {
		t.Helper()
		for _, tc := range cases {
			list, more, err := e.s.Events(e.ctx, b.ID, tc.q)
			got := make([]string, len(list))
			for i, ec := range list {
				got[i] = ec.Event.ID
				ev, c, err := e.s.Event(e.ctx, b.ID, ec.Event.ID)
				if err != nil || c != ec.Counts || ev.Status != ec.Event.Status {
					t.Errorf("Events(%s) %s lists %s %s %+v; Event answers %s %+v, %v", tc.name, when, ec.Event.ID, ec.Event.Status, ec.Counts, ev.Status, c, err)
				}
			}
			if err != nil || !slices.Equal(got, tc.want) || more != tc.more {
				t.Errorf("Events(%s) %s = %v more %v, %v; want %v more %v", tc.name, when, got, more, err, tc.want, tc.more)
			}
		}
		live, err := e.s.LiveEvents(e.ctx)
		got := make([]string, len(live))
		for i, ev := range live {
			got[i] = ev.ID
		}
		slices.Sort(got)
		if want := []string{e4, e5}; err != nil || !slices.Equal(got, want) {
			t.Errorf("LiveEvents %s = %v, %v; want %v", when, got, err, want)
		}
	}
	check("")
	e.restart()
	check("after a restart")
}

// testChanged: Changed closes at every change a live stream shows: an
// event starting or ending, its counts moving.
func testChanged(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	for _, id := range []string{"a", "b", "c"} {
		e.putDevice(newDevice(b.ID, id))
	}
	var ev hotzone.Event
	var held []hotzone.Notification
	steps := []struct {
		name  string
		setup func() // before Changed is asked
		do    func()
	}{
		{"an event started", nil, func() { ev = e.startEvent(b.ID, "s") }},
		{"a device was queued", nil, func() { e.queue(ev, "a") }},
		{"a device was suppressed", nil, func() { e.suppress(ev, "quiet_hours", "b") }},
		{"a suppressed device was queued", nil, func() { e.queue(ev, "b") }},
		{"a result was recorded", func() { held = e.claim(apnsLane(b.ID), 10, time.Minute) }, func() {
			e.record(result(held[0], hotzone.StatusSent, e.now()))
		}},
		{"a device with a log entry was erased", func() { e.queue(ev, "c") }, func() {
			if err := e.s.DeleteDevice(e.ctx, b.ID, "c"); err != nil {
				t.Fatal(err)
			}
		}},
		{"the event ended", nil, func() { e.endEvent(ev) }},
	}
	for _, st := range steps {
		if st.setup != nil {
			st.setup()
		}
		ch, err := e.s.Changed(e.ctx, b.ID, "s")
		if err != nil {
			t.Fatalf("Changed: %v", err)
		}
		st.do()
		waitClosed(t, ch, st.name)
	}
}
