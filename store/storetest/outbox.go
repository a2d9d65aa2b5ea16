package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testOutboxLeases: consumers share a lane through leases: while a lease
// is live nobody else gets the notification, so nothing is recorded
// twice; once it has passed the work is handed out again, so nothing is
// lost; a result under a lapsed claim that another consumer took over is
// not applied.
func testOutboxLeases(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	for _, id := range []string{"s", "s2", "s3", "s4", "s5", "s6"} {
		e.putStore(circleStore(b.ID, id, placeA))
	}
	const n = 300
	devs := e.putDevices(b.ID, "d", n)
	ev := e.startEvent(b.ID, "s")
	for i := 0; i < n; i += 100 {
		e.queue(ev, devs[i:i+100]...)
	}
	lane := apnsLane(b.ID)

	// Two consumers drain the lane; the clock stands still, so no lease
	// passes and a notification handed out twice is a broken lease.
	var (
		mu     sync.Mutex
		handed = map[string][]int{} // notification -> consumers it was handed to
		wg     sync.WaitGroup
	)
	for c := range 2 {
		wg.Go(func() {
			for {
				ns, err := e.s.Claim(e.ctx, lane, e.now(), 7, time.Hour)
				if err != nil {
					t.Errorf("consumer %d: Claim: %v", c, err)
					return
				}
				if len(ns) == 0 {
					return
				}
				ds := make([]hotzone.Delivery, len(ns))
				mu.Lock()
				for i, n := range ns {
					handed[n.ID] = append(handed[n.ID], c)
					ds[i] = result(n, hotzone.StatusSent, e.now())
				}
				mu.Unlock()
				if err := e.s.Record(e.ctx, ds); err != nil {
					t.Errorf("consumer %d: Record: %v", c, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for id, cs := range handed {
		if len(cs) != 1 {
			t.Errorf("notification %s was handed to consumers %v under live leases", id, cs)
		}
	}
	log := e.eventLog(ev)
	if len(handed) != n || len(log) != n {
		t.Errorf("%d of %d notifications were handed out; the log has %d", len(handed), n, len(log))
	}
	for _, entry := range log {
		if entry.Status != hotzone.StatusSent || entry.Attempts != 1 || entry.SentAt == nil || !entry.SentAt.Equal(e.now()) || len(handed[entry.ID]) != 1 {
			t.Errorf("log entry %+v; want sent once, in one attempt", entry)
		}
	}
	e.wantCounts(ev, hotzone.Counts{DevicesInFence: n, Sent: n})
	if got := e.claim(lane, 10, time.Hour); len(got) != 0 {
		t.Errorf("Claim after the lane was drained = %d notifications", len(got))
	}
	if lanes, err := e.s.Lanes(e.ctx); err != nil || slices.Contains(lanes, lane) {
		t.Errorf("Lanes after the lane was drained = %v, %v", lanes, err)
	}

	// A consumer claims and vanishes: nobody gets its work until the
	// lease has passed, then it is handed out again, all of it.
	const lease = time.Minute
	ev2 := e.startEvent(b.ID, "s2")
	e.queue(ev2, devs[:20]...)
	vanished := e.claim(lane, 100, lease)
	if len(vanished) != 20 {
		t.Fatalf("Claim = %d notifications, want 20", len(vanished))
	}
	if got := e.claim(lane, 100, lease); len(got) != 0 {
		t.Errorf("Claim while another consumer's lease is live = %d notifications", len(got))
	}
	e.clock.Advance(lease / 2)
	if got := e.claim(lane, 100, lease); len(got) != 0 {
		t.Errorf("Claim halfway through another consumer's lease = %d notifications", len(got))
	}
	e.clock.Advance(lease/2 + time.Second)
	takeover := e.claim(lane, 100, lease)
	if !slices.Equal(notifIDs(takeover), notifIDs(vanished)) {
		t.Fatalf("Claim after the lease passed = %v, want every notification of the vanished consumer %v", notifIDs(takeover), notifIDs(vanished))
	}
	// The first consumer comes back: its results are not applied.
	e.recordAll(vanished, hotzone.StatusFailed)
	for _, entry := range e.eventLog(ev2) {
		if entry.Status != hotzone.StatusQueued || entry.Attempts != 0 {
			t.Errorf("a result under a lapsed, taken-over claim was applied: %+v", entry)
		}
	}
	e.wantCounts(ev2, hotzone.Counts{DevicesInFence: 20, Queued: 20})
	e.recordAll(takeover, hotzone.StatusSent)
	for _, entry := range e.eventLog(ev2) {
		if entry.Status != hotzone.StatusSent || entry.Attempts != 1 {
			t.Errorf("the consumer that took over: log entry %+v; want sent in one attempt", entry)
		}
	}
	e.wantCounts(ev2, hotzone.Counts{DevicesInFence: 20, Sent: 20})

	// A lapsed claim that nobody took over still counts.
	ev3 := e.startEvent(b.ID, "s3")
	e.queue(ev3, devs[:5]...)
	late := e.claim(lane, 10, lease)
	e.clock.Advance(2 * lease)
	e.recordAll(late, hotzone.StatusDryRun)
	for _, entry := range e.eventLog(ev3) {
		if entry.Status != hotzone.StatusDryRun {
			t.Errorf("a result under a lapsed claim nobody took over was not applied: %+v", entry)
		}
	}
	e.wantCounts(ev3, hotzone.Counts{DevicesInFence: 5, Sent: 5})

	// Taken over, then the taker's lease lapsed too: the claim that took
	// it over is the one that counts (Record judges no lease by a clock),
	// so the first consumer's late result is dropped and the taker's
	// applies.
	ev4 := e.startEvent(b.ID, "s4")
	e.queue(ev4, devs[0])
	first := e.claim(lane, 10, lease)
	e.clock.Advance(2 * lease)
	second := e.claim(lane, 10, lease)
	if len(first) != 1 || !slices.Equal(notifIDs(first), notifIDs(second)) {
		t.Fatalf("claims %v then %v; want the same notification twice", notifIDs(first), notifIDs(second))
	}
	e.clock.Advance(2 * lease)
	e.recordAll(first, hotzone.StatusFailed)
	e.recordAll(second, hotzone.StatusSent)
	if log := e.eventLog(ev4); len(log) != 1 || log[0].Status != hotzone.StatusSent || log[0].Attempts != 1 {
		t.Errorf("log after two lapsed claims answered = %+v; want the taker's result only", log)
	}
	e.wantCounts(ev4, hotzone.Counts{DevicesInFence: 1, Sent: 1})

	// One call carrying a result twice, or two final results for one
	// notification, applies the first only.
	ev5 := e.startEvent(b.ID, "s5")
	e.queue(ev5, devs[:2]...)
	two := e.claim(lane, 10, lease)
	if len(two) != 2 {
		t.Fatalf("Claim = %d notifications, want 2", len(two))
	}
	e.record(result(two[0], hotzone.StatusSent, e.now()), result(two[0], hotzone.StatusSent, e.now()),
		result(two[1], hotzone.StatusFailed, e.now()), result(two[1], hotzone.StatusSent, e.now()))
	for _, entry := range e.eventLog(ev5) {
		want := hotzone.StatusSent
		if entry.ID == two[1].ID {
			want = hotzone.StatusFailed
		}
		if entry.Status != want || entry.Attempts != 1 {
			t.Errorf("after one call with two results each: log entry %+v; want %s in one attempt", entry, want)
		}
	}
	e.wantCounts(ev5, hotzone.Counts{DevicesInFence: 2, Sent: 1, Failed: 1})

	// A visit marked while the notification is out for sending stays
	// once its result is recorded.
	ev6 := e.startEvent(b.ID, "s6")
	e.queue(ev6, devs[0])
	out := e.claim(lane, 10, lease)
	if len(out) != 1 {
		t.Fatalf("Claim = %d notifications, want 1", len(out))
	}
	if marked, err := e.s.Attribute(e.ctx, b.ID, []hotzone.VisitMark{{EventID: ev6.ID, DeviceID: devs[0], At: e.now(), Within: time.Hour}}); err != nil || len(marked) != 1 {
		t.Fatalf("Attribute while out for sending = %v, %v; want the entry marked", marked, err)
	}
	e.recordAll(out, hotzone.StatusSent)
	if log := e.eventLog(ev6); len(log) != 1 || log[0].Status != hotzone.StatusSent || log[0].Attempts != 1 || log[0].Visit != hotzone.VisitVisited {
		t.Errorf("log after a visit while out for sending = %+v; want sent once, and visited", log)
	}
}

// testOutboxRetries: Claim hands out the oldest due first; a retry
// result waits until its NextAttempt; Release makes the lane due at
// once but takes nothing from a live lease.
func testOutboxRetries(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	devs := e.putDevices(b.ID, "r", 4)
	ev := e.startEvent(b.ID, "s")
	for _, id := range devs {
		e.clock.Advance(time.Second)
		e.queue(ev, id)
	}
	lane := apnsLane(b.ID)
	const lease = time.Minute
	deviceIDs := func(ns []hotzone.Notification) []string {
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = n.DeviceID
		}
		return out
	}
	if got := e.claim(lane, 2, lease); !slices.Equal(deviceIDs(got), devs[:2]) {
		t.Errorf("Claim(2) = %v, want the two oldest %v in order", deviceIDs(got), devs[:2])
	}
	claimed := e.claim(lane, 10, lease)
	if !slices.Equal(deviceIDs(claimed), devs[2:]) {
		t.Errorf("Claim(10) = %v, want the rest %v in order", deviceIDs(claimed), devs[2:])
	}
	e.clock.Advance(2 * lease)
	all := byDevice(e.claim(lane, 10, lease))
	if len(all) != 4 {
		t.Fatalf("Claim after the leases passed = %d, want 4", len(all))
	}

	t0 := e.now()
	retry := func(id string, after time.Duration) hotzone.Delivery {
		d := result(all[id], hotzone.StatusQueued, t0)
		d.Error, d.Code, d.NextAttempt = "503 Service Unavailable", "503", t0.Add(after)
		return d
	}
	e.record(retry("r000", 5*time.Minute), retry("r001", 10*time.Minute), retry("r002", time.Hour), result(all["r003"], hotzone.StatusSent, t0))
	if got := e.claim(lane, 10, lease); len(got) != 0 {
		t.Errorf("Claim before any retry is due = %v", deviceIDs(got))
	}
	log := byDevice(e.eventLog(ev))
	if n := log["r000"]; n.Status != hotzone.StatusQueued || n.Attempts != 1 || n.LastError == nil || *n.LastError != "503 Service Unavailable" || !n.NextAttempt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("log entry of a retry = %+v; want queued after one attempt, its error and next attempt", n)
	}
	e.wantCounts(ev, hotzone.Counts{DevicesInFence: 4, Queued: 3, Sent: 1})

	e.clock.Set(t0.Add(5*time.Minute - time.Second))
	if got := e.claim(lane, 10, lease); len(got) != 0 {
		t.Errorf("Claim a second before the first retry is due = %v", deviceIDs(got))
	}
	e.clock.Set(t0.Add(5 * time.Minute))
	due := e.claim(lane, 10, lease)
	if !slices.Equal(deviceIDs(due), []string{"r000"}) {
		t.Fatalf("Claim when the first retry is due = %v, want [r000]", deviceIDs(due))
	}
	e.recordAll(due, hotzone.StatusSent)

	// Release: the rest is due at once, except what is leased.
	if err := e.s.Release(e.ctx, lane); err != nil {
		t.Fatalf("Release: %v", err)
	}
	released := e.claim(lane, 10, lease)
	if !slices.Equal(deviceIDs(released), []string{"r001", "r002"}) {
		t.Fatalf("Claim after Release = %v, want [r001 r002]", deviceIDs(released))
	}
	if err := e.s.Release(e.ctx, lane); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got := e.claim(lane, 10, lease); len(got) != 0 {
		t.Errorf("Claim after a Release while leased = %v; a Release takes no lease", deviceIDs(got))
	}
	e.record(result(released[0], hotzone.StatusDryRun, e.now()), result(released[1], hotzone.StatusFailed, e.now()))
	e.wantCounts(ev, hotzone.Counts{DevicesInFence: 4, Sent: 3, Failed: 1})
	log = byDevice(e.eventLog(ev))
	for id, want := range map[string]struct {
		status   hotzone.NotificationStatus
		attempts int
	}{"r000": {hotzone.StatusSent, 2}, "r001": {hotzone.StatusDryRun, 2}, "r002": {hotzone.StatusFailed, 2}, "r003": {hotzone.StatusSent, 1}} {
		if n := log[id]; n.Status != want.status || n.Attempts != want.attempts {
			t.Errorf("log entry of %s = %s after %d attempts, want %s after %d", id, n.Status, n.Attempts, want.status, want.attempts)
		}
	}
	if n := log["r000"]; n.SentAt == nil || !n.SentAt.Equal(t0.Add(5*time.Minute)) || n.ProviderID != "pid-"+n.ID {
		t.Errorf("log entry of a retried send = %+v; want sent_at and provider id of the send", n)
	}
	if n := log["r002"]; n.SentAt != nil || n.LastError == nil {
		t.Errorf("log entry of a failure = %+v; want no sent_at, an error", n)
	}
}

// testOutboxLanes: each brand and provider is a lane of its own.
func testOutboxLanes(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	o := e.newBrand("o")
	for _, br := range []string{b.ID, o.ID} {
		e.putStore(circleStore(br, "s", placeA))
	}
	e.putDevice(newDevice(b.ID, "ios"))
	e.putDevice(android(b.ID, "android"))
	e.putDevice(newDevice(o.ID, "ios"))
	evB, evO := e.startEvent(b.ID, "s"), e.startEvent(o.ID, "s")
	e.queue(evB, "ios", "android")
	e.queue(evO, "ios")
	bAPNs, bFCM, oAPNs := apnsLane(b.ID), hotzone.Lane{BrandID: b.ID, Provider: hotzone.ProviderFCM}, apnsLane(o.ID)
	wantLanes := func(want ...hotzone.Lane) {
		t.Helper()
		got, err := e.s.Lanes(e.ctx)
		key := func(l hotzone.Lane) string { return l.BrandID + "/" + string(l.Provider) }
		gs, ws := make([]string, len(got)), make([]string, len(want))
		for i, l := range got {
			gs[i] = key(l)
		}
		for i, l := range want {
			ws[i] = key(l)
		}
		slices.Sort(gs)
		slices.Sort(ws)
		if err != nil || !slices.Equal(gs, ws) {
			t.Errorf("Lanes = %v, %v; want %v", gs, err, ws)
		}
	}
	wantLanes(bAPNs, bFCM, oAPNs)
	for _, tc := range []struct {
		lane   hotzone.Lane
		ev     hotzone.Event
		device string
	}{{bAPNs, evB, "ios"}, {bFCM, evB, "android"}, {oAPNs, evO, "ios"}} {
		got := e.claim(tc.lane, 10, time.Minute)
		if len(got) != 1 || got[0].DeviceID != tc.device || got[0].EventID != tc.ev.ID {
			t.Errorf("Claim(%+v) = %+v; want the one of %s", tc.lane, got, tc.device)
		}
		if tc.lane == bAPNs {
			e.recordAll(got, hotzone.StatusSent)
		}
	}
	wantLanes(bFCM, oAPNs)
}
