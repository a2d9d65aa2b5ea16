package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testOncePerEventConcurrent: however many callers race to consider a
// device for an event, one of them queues it and every other hears
// already_notified; a fan-out racing with pings keeps the same rule.
func testOncePerEventConcurrent(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putDevice(newDevice(b.ID, "d"))
	ev := e.startEvent(b.ID, "s")

	const callers = 50
	outs := make([]hotzone.Outcome, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-gate
			out, err := e.s.Consider(e.ctx, ev, []string{"d"}, queueAll)
			errs[i] = err
			if err == nil && len(out) == 1 {
				outs[i] = out[0]
			}
		})
	}
	close(gate)
	wg.Wait()
	queued := 0
	for i, o := range outs {
		switch {
		case errs[i] != nil:
			t.Errorf("caller %d: Consider: %v", i, errs[i])
		case o.Status == hotzone.StatusQueued && o.Changed && o.Prev == "" && o.DeviceID == "d":
			queued++
		case o != (hotzone.Outcome{DeviceID: "d", Reason: hotzone.ReasonAlreadyNotified}):
			t.Errorf("caller %d: outcome %+v; want queued or already_notified", i, o)
		}
	}
	if queued != 1 {
		t.Errorf("%d concurrent callers queued the device %d times, want once", callers, queued)
	}
	check := func(when string) {
		t.Helper()
		log := e.eventLog(ev)
		if len(log) != 1 || log[0].Status != hotzone.StatusQueued || log[0].DeviceID != "d" || log[0].EventID != ev.ID || log[0].StoreID != "s" {
			t.Errorf("log %s = %+v; want one queued entry", when, log)
		}
		want := hotzone.Counts{DevicesInFence: 1, Queued: 1}
		e.wantCounts(ev, want)
		if _, c, err := e.s.LiveEvent(e.ctx, b.ID, "s"); err != nil || c != want {
			t.Errorf("LiveEvent counts %s = %+v, %v; want %+v", when, c, err, want)
		}
		if out := e.consider(ev, queueAll, "d"); out[0] != (hotzone.Outcome{DeviceID: "d", Reason: hotzone.ReasonAlreadyNotified}) {
			t.Errorf("Consider %s = %+v; want already_notified", when, out[0])
		}
	}
	check("after the race")
	e.restart()
	check("after a restart")
	if out := e.consider(ev, queueAll, "nope"); out[0] != (hotzone.Outcome{DeviceID: "nope"}) {
		t.Errorf("Consider of an unknown device = %+v; want an empty outcome", out[0])
	}
	if log := e.eventLog(ev); len(log) != 1 {
		t.Errorf("Consider of an unknown device wrote to the log: %+v", log)
	}

	// A fan-out (batches of every device, in any order) races with
	// pings (one device each): still one entry per device.
	const devices = 40
	fanned := e.putDevices(b.ID, "f", devices)
	e.endEvent(ev)
	ev = e.startEvent(b.ID, "s")
	outcomes := make([][]hotzone.Outcome, 0, 64)
	var mu sync.Mutex
	run := func(batch []string) {
		out, err := e.s.Consider(e.ctx, ev, batch, queueAll)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("Consider(%d devices): %v", len(batch), err)
			return
		}
		outcomes = append(outcomes, out)
	}
	gate = make(chan struct{})
	for w := range 4 {
		batch := slices.Clone(fanned)
		rand.New(rand.NewPCG(uint64(w), 1)).Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		wg.Go(func() { <-gate; run(batch[:devices/2]); run(batch[devices/2:]) })
	}
	for _, id := range fanned {
		wg.Go(func() { <-gate; run([]string{id}) })
	}
	close(gate)
	wg.Wait()
	times := map[string]int{}
	for _, out := range outcomes {
		for _, o := range out {
			switch {
			case o.Changed && o.Status == hotzone.StatusQueued:
				times[o.DeviceID]++
			case o.Reason != hotzone.ReasonAlreadyNotified || o.Status != "":
				t.Errorf("outcome %+v; want queued or already_notified", o)
			}
		}
	}
	for _, id := range fanned {
		if times[id] != 1 {
			t.Errorf("device %s was queued %d times, want once", id, times[id])
		}
	}
	if log := e.eventLog(ev); len(log) != devices || tally(log) != (hotzone.Counts{DevicesInFence: devices, Queued: devices}) {
		t.Errorf("log after the fan-out race: %d entries, %+v; want %d queued", len(log), tally(log), devices)
	}
	e.wantCounts(ev, hotzone.Counts{DevicesInFence: devices, Queued: devices})
}

// testSuppressedUpgraded: a suppressed entry is the device's one entry
// for the event; it changes with the reason and becomes queued (same
// notification) when the device later qualifies, never the other way.
func testSuppressedUpgraded(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putDevice(newDevice(b.ID, "d"))
	ev := e.startEvent(b.ID, "s")
	lane := apnsLane(b.ID)

	var (
		notifID  string
		queuedAt time.Time
	)
	steps := []struct {
		name     string
		reason   string // decide's answer
		restart  bool   // before the step
		want     hotzone.Outcome
		log      hotzone.NotificationStatus
		logWhy   string
		counts   hotzone.Counts
		inOutbox bool
	}{
		{"held", "quiet_hours", false,
			hotzone.Outcome{DeviceID: "d", Status: hotzone.StatusSuppressed, Reason: "quiet_hours", Changed: true},
			hotzone.StatusSuppressed, "quiet_hours", hotzone.Counts{DevicesInFence: 1, Suppressed: 1}, false},
		{"held again for the same reason", "quiet_hours", false,
			hotzone.Outcome{DeviceID: "d", Status: hotzone.StatusSuppressed, Reason: "quiet_hours"},
			hotzone.StatusSuppressed, "quiet_hours", hotzone.Counts{DevicesInFence: 1, Suppressed: 1}, false},
		{"held for another reason", "daily_cap", true,
			hotzone.Outcome{DeviceID: "d", Status: hotzone.StatusSuppressed, Reason: "daily_cap", Changed: true, Prev: hotzone.StatusSuppressed},
			hotzone.StatusSuppressed, "daily_cap", hotzone.Counts{DevicesInFence: 1, Suppressed: 1}, false},
		{"qualifies", "", true,
			hotzone.Outcome{DeviceID: "d", Status: hotzone.StatusQueued, Changed: true, Prev: hotzone.StatusSuppressed},
			hotzone.StatusQueued, "", hotzone.Counts{DevicesInFence: 1, Queued: 1}, true},
		{"qualifies again", "", false,
			hotzone.Outcome{DeviceID: "d", Reason: hotzone.ReasonAlreadyNotified},
			hotzone.StatusQueued, "", hotzone.Counts{DevicesInFence: 1, Queued: 1}, true},
		{"held once queued", "quiet_hours", true,
			hotzone.Outcome{DeviceID: "d", Reason: hotzone.ReasonAlreadyNotified},
			hotzone.StatusQueued, "", hotzone.Counts{DevicesInFence: 1, Queued: 1}, true},
	}
	for _, st := range steps {
		if st.restart {
			e.restart()
		}
		e.clock.Advance(time.Minute)
		var seen []time.Time
		out := e.consider(ev, func(_ hotzone.Device, h []time.Time) string { seen = h; return st.reason }, "d")
		o := out[0]
		if !o.Changed {
			o.Prev = "" // Prev means nothing when nothing changed
		}
		if o != st.want {
			t.Errorf("%s: Consider = %+v, want %+v", st.name, out[0], st.want)
		}
		if o.Changed && o.Status == hotzone.StatusQueued {
			queuedAt = e.now()
		}
		if len(seen) != 0 {
			t.Errorf("%s: decide saw history %v; a suppressed entry is no queue time", st.name, seen)
		}
		log := e.eventLog(ev)
		if len(log) != 1 {
			t.Fatalf("%s: %d log entries, want the device's one", st.name, len(log))
		}
		n := log[0]
		if notifID == "" {
			notifID = n.ID
		}
		if n.ID != notifID || n.Status != st.log || n.Reason != st.logWhy {
			t.Errorf("%s: log entry %s %s %q; want %s %s %q", st.name, n.ID, n.Status, n.Reason, notifID, st.log, st.logWhy)
		}
		e.wantCounts(ev, st.counts)
		// What is queued is in the outbox under the same id; a claim
		// taken here is given up by the time the next step claims.
		got := e.claim(lane, 10, time.Second)
		if st.inOutbox != (len(got) == 1 && got[0].ID == notifID) || len(got) > 1 {
			t.Errorf("%s: Claim = %v; want the notification %v", st.name, notifIDs(got), st.inOutbox)
		}
	}
	// The upgrade is a queue time: the next event's decide sees it.
	e.endEvent(ev)
	e.clock.Advance(time.Hour)
	next := e.startEvent(b.ID, "s")
	var seen []time.Time
	e.consider(next, func(_ hotzone.Device, h []time.Time) string { seen = h; return "x" }, "d")
	if len(seen) != 1 || !seen[0].Equal(queuedAt) {
		t.Errorf("decide after the upgrade saw history %v, want [%v]", seen, queuedAt)
	}
}

// capRule is the suite's own policy, applied inside Consider: at most
// max notifications per calendar day in the device's zone, and gap at
// least between two. It insists on a history oldest first.
func capRule(now time.Time, max int, gap time.Duration) hotzone.DecideFunc {
	return func(d hotzone.Device, h []time.Time) string {
		if !slices.IsSortedFunc(h, time.Time.Compare) {
			return "history_out_of_order"
		}
		loc, err := time.LoadLocation(d.Timezone)
		if err != nil {
			return "bad_zone"
		}
		if n := len(h); n > 0 && now.Sub(h[n-1]) < gap {
			return "min_interval"
		}
		y, m, day := now.In(loc).Date()
		today := 0
		for _, at := range h {
			if ay, am, ad := at.In(loc).Date(); ay == y && am == m && ad == day {
				today++
			}
		}
		if today >= max {
			return "daily_cap"
		}
		return ""
	}
}

// testCapsAcrossLocalMidnight: the queue history a device carries from
// event to event, across restarts, is what a daily cap by the device's
// own calendar day and a min interval are decided on.
func testCapsAcrossLocalMidnight(t *testing.T, open Opener) {
	// Local times on 23 November 2026 (+days): in both zones the local
	// midnight falls inside one UTC day, so a cap counted by UTC day
	// would decide differently.
	steps := []struct {
		day      int
		clock    string // local
		max      int
		gap      time.Duration
		want     string
		restart  bool
		wantSeen int // queue times decide sees
	}{
		{0, "22:00", 1, time.Hour, "", false, 0},
		{0, "23:30", 1, time.Hour, "daily_cap", true, 1},
		{1, "00:10", 1, time.Hour, "", false, 1},
		{1, "00:40", 2, time.Hour, "min_interval", false, 2},
		{1, "01:20", 2, time.Hour, "", true, 2},
		{1, "23:00", 2, time.Hour, "daily_cap", false, 3},
		{2, "00:00", 2, time.Hour, "", false, 3},
		{2, "00:30", 5, 3 * time.Hour, "min_interval", false, 4},
		// Six days on, every queue time is still within HistoryWindow.
		{6, "20:00", 1, time.Hour, "", true, 4},
	}
	for _, zone := range []string{"Pacific/Auckland", "America/Los_Angeles"} {
		t.Run(zone, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, open)
			b := e.newBrand("b")
			e.putStore(circleStore(b.ID, "s", placeA))
			d := newDevice(b.ID, "d")
			d.Timezone = zone
			e.putDevice(d)
			var queued []time.Time
			for i, st := range steps {
				if st.restart {
					e.restart()
				}
				var hh, mm int
				if _, err := fmt.Sscanf(st.clock, "%d:%d", &hh, &mm); err != nil {
					t.Fatal(err)
				}
				now := time.Date(2026, 11, 23+st.day, hh, mm, 0, 0, loc).UTC()
				e.clock.Set(now)
				ev := e.startEvent(b.ID, "s")
				var seen []time.Time
				rule := capRule(now, st.max, st.gap)
				out := e.consider(ev, func(d hotzone.Device, h []time.Time) string { seen = slices.Clone(h); return rule(d, h) }, "d")
				name := fmt.Sprintf("step %d (day %d %s local, cap %d, gap %v)", i, st.day, st.clock, st.max, st.gap)
				wantStatus := hotzone.StatusSuppressed
				if st.want == "" {
					wantStatus = hotzone.StatusQueued
				}
				if o := out[0]; o.Status != wantStatus || o.Reason != st.want {
					t.Errorf("%s: %s %q, want %s %q", name, o.Status, o.Reason, wantStatus, st.want)
				}
				if len(seen) != st.wantSeen || !slices.EqualFunc(seen, queued, time.Time.Equal) {
					t.Errorf("%s: decide saw %v, want the queue times %v, oldest first", name, seen, queued)
				}
				if out[0].Status == hotzone.StatusQueued {
					queued = append(queued, now)
				}
				e.endEvent(ev)
			}
		})
	}
}
