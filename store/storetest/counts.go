package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// allStatuses is every notification status of the contract.
var allStatuses = []hotzone.NotificationStatus{hotzone.StatusQueued, hotzone.StatusSent, hotzone.StatusDryRun,
	hotzone.StatusSuppressed, hotzone.StatusFailed, hotzone.StatusExpired, hotzone.StatusInvalidToken}

// countsMatchLog checks that every way of reading an event's counts
// agrees with a tally of its log, and returns the tally.
func (e *env) countsMatchLog(ev hotzone.Event, when string) hotzone.Counts {
	e.t.Helper()
	log := e.eventLog(ev)
	want := tally(log)
	got, c, err := e.s.Event(e.ctx, ev.BrandID, ev.ID)
	if err != nil {
		e.t.Fatalf("Event(%s): %v", ev.ID, err)
	}
	if c != want {
		e.t.Errorf("%s: Event(%s) counts %+v, its log tallies %+v", when, ev.ID, c, want)
	}
	list, _, err := e.s.Events(e.ctx, ev.BrandID, hotzone.EventQuery{StoreID: ev.StoreID})
	if err != nil {
		e.t.Fatalf("Events: %v", err)
	}
	i := slices.IndexFunc(list, func(ec hotzone.EventCounts) bool { return ec.Event.ID == ev.ID })
	if i < 0 || list[i].Counts != want {
		e.t.Errorf("%s: Events lists %s with %+v, its log tallies %+v", when, ev.ID, list, want)
	}
	if got.Status == hotzone.EventLive {
		if live, lc, err := e.s.LiveEvent(e.ctx, ev.BrandID, ev.StoreID); err != nil || live.ID != ev.ID || lc != want {
			e.t.Errorf("%s: LiveEvent = %s %+v, %v; its log tallies %+v", when, live.ID, lc, err, want)
		}
	}
	// The status filter agrees with the entries' statuses.
	for _, s := range allStatuses {
		n := 0
		for _, entry := range log {
			if entry.Status == s {
				n++
			}
		}
		if got := e.logOf(ev.BrandID, hotzone.NotificationQuery{EventID: ev.ID, Status: s}); len(got) != n {
			e.t.Errorf("%s: Notifications(status %s) = %d entries, want %d", when, s, len(got), n)
		}
	}
	return want
}

// testCountsEqualLog: after a workload touching every status, each
// event's counts, however read, equal a tally of its log by status.
func testCountsEqualLog(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s1", placeA))
	e.putStore(circleStore(b.ID, "s2", placeB))
	devs := make([]string, 12)
	for i := range devs {
		devs[i] = fmt.Sprintf("d%02d", i)
		d := newDevice(b.ID, devs[i])
		if i%2 == 1 {
			d = android(b.ID, devs[i])
		}
		e.putDevice(d)
	}
	e1, e2 := e.startEvent(b.ID, "s1"), e.startEvent(b.ID, "s2")
	e.queue(e1, devs[:8]...)
	e.suppress(e1, "quiet_hours", devs[8:10]...)
	e.suppress(e1, "daily_cap", devs[10])
	e.clock.Advance(time.Minute)
	e.queue(e1, devs[10]) // upgraded
	e.queue(e2, devs[:6]...)
	e.suppress(e2, "min_interval", devs[6])

	// Every kind of result, in turn, for what the two lanes hand out;
	// every sixth stays claimed and unanswered.
	var claimed []hotzone.Notification
	for _, p := range []hotzone.Provider{hotzone.ProviderAPNs, hotzone.ProviderFCM} {
		claimed = append(claimed, e.claim(hotzone.Lane{BrandID: b.ID, Provider: p}, 100, time.Hour)...)
	}
	slices.SortFunc(claimed, func(x, y hotzone.Notification) int {
		return strings.Compare(x.EventID+x.DeviceID, y.EventID+y.DeviceID)
	})
	var ds []hotzone.Delivery
	for i, n := range claimed {
		switch i % 6 {
		case 0:
			ds = append(ds, result(n, hotzone.StatusSent, e.now()))
		case 1:
			ds = append(ds, result(n, hotzone.StatusDryRun, e.now()))
		case 2:
			ds = append(ds, result(n, hotzone.StatusFailed, e.now()))
		case 3:
			ds = append(ds, result(n, hotzone.StatusInvalidToken, e.now()))
		case 4:
			r := result(n, hotzone.StatusQueued, e.now())
			r.NextAttempt = e.now().Add(time.Hour)
			ds = append(ds, r)
		}
	}
	e.record(ds...)
	e.countsMatchLog(e1, "after the results")
	e.countsMatchLog(e2, "after the results")

	if err := e.s.DeleteDevice(e.ctx, b.ID, devs[1]); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	e.endEvent(e1)

	check := func(when string) {
		t.Helper()
		c1 := e.countsMatchLog(e1, when)
		c2 := e.countsMatchLog(e2, when)
		// Not a vacuous agreement: the workload reached every bucket.
		if c1.Queued != 0 || c1.Sent == 0 || c1.Failed == 0 || c1.Expired == 0 || c1.Suppressed != 2 || c1.DevicesInFence != 10 {
			t.Errorf("%s: the ended event's counts %+v; want 10 entries (one erased) in every final bucket", when, c1)
		}
		if c2.Queued == 0 || c2.Sent+c2.Failed == 0 || c2.Suppressed != 1 || c2.DevicesInFence != 6 {
			t.Errorf("%s: the live event's counts %+v; want 6 entries (one erased), some queued", when, c2)
		}
	}
	check("after the end")
	e.restart()
	check("after a restart")
}

// testCountsEqualLogConcurrent: counts kept as they change stay equal
// to the log when decisions, upgrades, results and erasures race.
func testCountsEqualLogConcurrent(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	const n = 60
	devs := make([]string, n)
	for i := range devs {
		devs[i] = fmt.Sprintf("c%02d", i)
		d := newDevice(b.ID, devs[i])
		if i%2 == 1 {
			d = android(b.ID, devs[i])
		}
		e.putDevice(d)
	}
	index := func(id string) int {
		var i int
		fmt.Sscanf(id, "c%02d", &i)
		return i
	}
	ev := e.startEvent(b.ID, "s")

	var producers, consumers sync.WaitGroup
	var producing atomic.Bool
	producing.Store(true)
	fanOut := func(d hotzone.Device, _ []time.Time) string {
		if index(d.ID)%4 == 0 {
			return "quiet_hours"
		}
		return ""
	}
	producers.Go(func() { // the fan-out, in chunks
		for i := 0; i < n; i += 10 {
			if _, err := e.s.Consider(e.ctx, ev, devs[i:i+10], fanOut); err != nil {
				t.Errorf("fan-out: %v", err)
			}
		}
	})
	producers.Go(func() { // pings of the held devices, which qualify
		for range 2 {
			for i := 0; i < n; i += 4 {
				if _, err := e.s.Consider(e.ctx, ev, devs[i:i+1], queueAll); err != nil {
					t.Errorf("ping: %v", err)
				}
			}
		}
	})
	producers.Go(func() { // erasures
		for i := 4; i < n; i += 9 {
			if err := e.s.DeleteDevice(e.ctx, b.ID, devs[i]); err != nil {
				t.Errorf("DeleteDevice: %v", err)
			}
		}
	})
	for _, p := range []hotzone.Provider{hotzone.ProviderAPNs, hotzone.ProviderFCM} {
		lane := hotzone.Lane{BrandID: b.ID, Provider: p}
		for range 2 {
			consumers.Go(func() {
				for {
					ns, err := e.s.Claim(e.ctx, lane, e.now(), 5, time.Hour)
					if err != nil {
						t.Errorf("Claim: %v", err)
						return
					}
					if len(ns) == 0 {
						if !producing.Load() {
							return
						}
						time.Sleep(time.Millisecond) // backoff, not a timing assumption
						continue
					}
					ds := make([]hotzone.Delivery, len(ns))
					for j, n := range ns {
						i := index(n.DeviceID)
						switch {
						case n.Attempts == 0 && i%5 == 1:
							ds[j] = result(n, hotzone.StatusQueued, e.now())
							ds[j].NextAttempt = e.now() // due again at once
						default:
							ds[j] = result(n, []hotzone.NotificationStatus{hotzone.StatusSent, hotzone.StatusDryRun, hotzone.StatusFailed, hotzone.StatusInvalidToken}[i%4], e.now())
						}
					}
					if err := e.s.Record(e.ctx, ds); err != nil {
						t.Errorf("Record: %v", err)
						return
					}
				}
			})
		}
	}
	producers.Wait()
	producing.Store(false)
	consumers.Wait()

	e.countsMatchLog(ev, "after the race")
	e.clock.Advance(time.Minute)
	e.endEvent(ev)
	c := e.countsMatchLog(ev, "after the end")
	if erased := (n - 4 + 8) / 9; c.DevicesInFence != n-erased || c.Queued != 0 {
		t.Errorf("counts after the end = %+v; want %d entries (%d erased), none queued", c, n-erased, erased)
	}
	e.restart()
	e.countsMatchLog(ev, "after a restart")

	// An end racing decisions: a device considered meanwhile may still
	// be queued, but the counts agree with the log, and nothing is
	// decided once the end has returned.
	ev = e.startEvent(b.ID, "s")
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, id := range devs {
		wg.Go(func() {
			<-gate
			if _, err := e.s.Consider(e.ctx, ev, []string{id}, queueAll); err != nil {
				t.Errorf("Consider(%s): %v", id, err)
			}
		})
	}
	wg.Go(func() {
		<-gate
		if _, _, err := e.s.EndEvent(e.ctx, b.ID, ev.ID, e.now()); err != nil {
			t.Errorf("EndEvent: %v", err)
		}
	})
	close(gate)
	wg.Wait()
	e.countsMatchLog(ev, "after an end racing decisions")
	before := len(e.eventLog(ev))
	for _, o := range e.consider(ev, queueAll, devs...) {
		if o != (hotzone.Outcome{DeviceID: o.DeviceID}) {
			t.Errorf("Consider after the end returned = %+v; want an empty outcome", o)
		}
	}
	if after := len(e.eventLog(ev)); after != before {
		t.Errorf("Consider after the end returned wrote %d log entries", after-before)
	}
}
