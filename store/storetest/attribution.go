package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// testHeldBackStays: a device held back is decided for the event, as a
// notified one is: considering it again (a later ping) answers the hold
// and writes nothing, even when the policy would now queue it; other
// holds are still upgraded.
func testHeldBackStays(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "a", placeA))
	e.putDevice(newDevice(b.ID, "held"))
	e.putDevice(newDevice(b.ID, "quiet"))
	ev := e.startEvent(b.ID, "a")
	e.suppress(ev, hotzone.ReasonHoldout, "held")
	e.suppress(ev, "quiet_hours", "quiet")
	first := e.eventLog(ev)
	e.clock.Advance(time.Minute)
	out := e.consider(ev, queueAll, "held", "quiet")
	if o := out[0]; o.Status != hotzone.StatusSuppressed || o.Reason != hotzone.ReasonHoldout || o.Changed {
		t.Errorf("held back, considered again: %+v; want suppressed for holdout, unchanged", o)
	}
	if o := out[1]; o.Status != hotzone.StatusQueued || !o.Changed {
		t.Errorf("held for quiet hours, considered again: %+v; want queued", o)
	}
	for _, n := range e.eventLog(ev) {
		if n.DeviceID != "held" {
			continue
		}
		i := slices.IndexFunc(first, func(f hotzone.Notification) bool { return f.ID == n.ID })
		if n.Status != hotzone.StatusSuppressed || n.Reason != hotzone.ReasonHoldout || i < 0 || !n.DecidedAt.Equal(first[i].DecidedAt) || n.DecidedAt.IsZero() {
			t.Errorf("held back entry after another look: %+v", n)
		}
	}
	e.countsMatchLog(ev, "after holds")
	e.restart()
	if o := e.consider(ev, queueAll, "held")[0]; o.Reason != hotzone.ReasonHoldout || o.Changed {
		t.Errorf("held back, after a restart: %+v", o)
	}
}

// testOpens: the first report of a tap marks the entry and counts in
// its event's opened; later reports change nothing; only the device's
// own notification of the brand is found; an erased device takes its
// open out of the counts.
func testOpens(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	other := e.newBrand("other")
	e.putStore(circleStore(b.ID, "a", placeA))
	for _, id := range []string{"d1", "d2", "d3"} {
		e.putDevice(newDevice(b.ID, id))
	}
	ev := e.startEvent(b.ID, "a")
	e.queue(ev, "d1", "d2", "d3")
	ids := map[string]string{}
	for _, n := range e.eventLog(ev) {
		ids[n.DeviceID] = n.ID
	}
	e.clock.Advance(time.Second)
	first, err := e.s.Open(e.ctx, b.ID, ids["d1"], "d1", e.now())
	if err != nil || !first {
		t.Fatalf("Open(d1) = %v, %v; want the first", first, err)
	}
	again, err := e.s.Open(e.ctx, b.ID, ids["d1"], "d1", e.now().Add(time.Minute))
	if err != nil || again {
		t.Fatalf("Open(d1) again = %v, %v; want not the first", again, err)
	}
	for _, c := range []struct {
		brand, id, device string
	}{
		{b.ID, ids["d1"], "d2"},       // another device's
		{b.ID, "nope", "d1"},          // no such notification
		{other.ID, ids["d1"], "d1"},   // another brand
		{b.ID, ids["d2"], "nobody"},   // no such device
		{b.ID, ids["d2"], "d2\x00x"},  // a damaged id
		{b.ID, "", "d2"},              // no id at all
		{b.ID, ids["d2"], ids["d2"]},  // the id as a device
		{b.ID, ids["d3"], "d3-other"}, // a near miss
	} {
		if _, err := e.s.Open(e.ctx, c.brand, c.id, c.device, e.now()); !errors.Is(err, hotzone.ErrNotFound) {
			t.Errorf("Open(%q, %q, %q) = %v, want ErrNotFound", c.brand, c.id, c.device, err)
		}
	}
	if _, err := e.s.Open(e.ctx, b.ID, ids["d2"], "d2", e.now()); err != nil {
		t.Fatal(err)
	}
	if c := e.countsMatchLog(ev, "after opens"); c.Opened != 2 {
		t.Errorf("opened = %d, want 2", c.Opened)
	}
	for _, n := range e.eventLog(ev) {
		if n.DeviceID == "d1" && (n.OpenedAt == nil || !n.OpenedAt.Equal(epoch.Add(time.Second))) {
			t.Errorf("d1's entry opened at %v, want the first report's time %v", n.OpenedAt, epoch.Add(time.Second))
		}
	}
	e.restart()
	if c := e.countsMatchLog(ev, "after a restart"); c.Opened != 2 {
		t.Errorf("opened after a restart = %d, want 2", c.Opened)
	}
	if err := e.s.DeleteDevice(e.ctx, b.ID, "d1"); err != nil {
		t.Fatal(err)
	}
	if c := e.countsMatchLog(ev, "after erasing d1"); c.Opened != 1 {
		t.Errorf("opened after erasing d1 = %d, want 1", c.Opened)
	}
	if _, err := e.s.Open(e.ctx, b.ID, ids["d1"], "d1", e.now()); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("Open of an erased device's notification = %v, want ErrNotFound", err)
	}
}

// testVisits: marks apply to entries in a group, once, within the
// window after the decision; already there is a mark of its own; the
// event's log walks every entry.
func testVisits(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "a", placeA))
	ids := []string{"sent", "held", "quiet", "there", "late", "twice", "none"}
	for _, id := range ids {
		e.putDevice(newDevice(b.ID, id))
	}
	ev := e.startEvent(b.ID, "a")
	decided := e.now()
	e.queue(ev, "sent", "there", "late", "twice")
	e.suppress(ev, hotzone.ReasonHoldout, "held")
	e.suppress(ev, "quiet_hours", "quiet")
	within := 2 * time.Hour
	mark := func(id string, after time.Duration, there bool) hotzone.VisitMark {
		return hotzone.VisitMark{EventID: ev.ID, DeviceID: id, At: decided.Add(after), AlreadyThere: there, Within: within}
	}
	marked, err := e.s.Attribute(e.ctx, b.ID, []hotzone.VisitMark{
		mark("there", 0, true),
		mark("sent", time.Hour, false),
		mark("held", 90*time.Minute, false),
		mark("quiet", time.Hour, false),         // in no group
		mark("late", within+time.Second, false), // after the window
		mark("none", time.Hour, false),          // no entry
		mark("nobody", time.Hour, false),        // no device
		mark("twice", time.Hour, false),
		mark("twice", time.Hour+time.Minute, false), // one mark, ever
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range marked {
		if _, dup := got[n.DeviceID]; dup {
			t.Errorf("%s marked twice", n.DeviceID)
		}
		got[n.DeviceID] = n.Visit
	}
	want := map[string]string{"there": hotzone.VisitAlreadyThere, "sent": hotzone.VisitVisited, "held": hotzone.VisitVisited, "twice": hotzone.VisitVisited}
	if len(got) != len(want) {
		t.Errorf("marked %v, want %v", got, want)
	}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("%s marked %q, want %q", id, got[id], v)
		}
	}
	// A mark on a marked entry changes nothing, also after a restart.
	e.restart()
	if again, err := e.s.Attribute(e.ctx, b.ID, []hotzone.VisitMark{mark("sent", time.Hour, false), mark("there", time.Hour, false)}); err != nil || len(again) != 0 {
		t.Errorf("marking marked entries again = %v, %v; want none", again, err)
	}
	var r hotzone.Report
	walked := map[string]bool{}
	if err := e.s.EventLog(e.ctx, b.ID, ev.ID, func(n *hotzone.Notification) error {
		walked[n.DeviceID] = true
		r.Tally(n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 6 {
		t.Errorf("EventLog walked %v, want the 6 entries", walked)
	}
	if r.Notified != 4 || r.HeldBack != 1 || r.Visits != (hotzone.Pair{Notified: 2, HeldBack: 1}) || r.AlreadyThere != (hotzone.Pair{Notified: 1}) {
		t.Errorf("tally %+v", r)
	}
	for _, n := range e.eventLog(ev) {
		if n.DeviceID == "sent" && !n.VisitAt.Equal(decided.Add(time.Hour)) {
			t.Errorf("sent's visit at %v, want %v", n.VisitAt, decided.Add(time.Hour))
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := e.s.EventLog(e.ctx, b.ID, ev.ID, func(*hotzone.Notification) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("EventLog with fn failing: %v after %d calls; want fn's error after 1", err, calls)
	}
	if err := e.s.EventLog(e.ctx, b.ID, "nope", func(*hotzone.Notification) error { t.Error("called for an unknown event"); return nil }); err != nil {
		t.Errorf("EventLog of an unknown event: %v", err)
	}
	// Marks survive the sending of a notification.
	claimed, err := e.s.Claim(e.ctx, hotzone.Lane{BrandID: b.ID, Provider: hotzone.ProviderAPNs}, e.now(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ds []hotzone.Delivery
	for _, n := range claimed {
		ds = append(ds, hotzone.Delivery{NotificationID: n.ID, Claim: n.Claim, BrandID: b.ID, Provider: hotzone.ProviderAPNs, Status: hotzone.StatusSent, At: e.now()})
	}
	if err := e.s.Record(e.ctx, ds); err != nil {
		t.Fatal(err)
	}
	for _, n := range e.eventLog(ev) {
		if want[n.DeviceID] != n.Visit {
			t.Errorf("after sending, %s has visit %q, want %q", n.DeviceID, n.Visit, want[n.DeviceID])
		}
	}
}

// testVisitsAt: a store's visit area is its own, else 50 m around a
// circle fence's centre.
func testVisitsAt(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "a", placeA))
	own := circleStore(b.ID, "own", placeB)
	own.Visit = &hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: placeB.Lat + 0.001, Lon: placeB.Lon, RadiusM: 20}}
	e.putStore(own)
	at := func(p geo.Point) []string {
		hits, err := e.s.VisitsAt(e.ctx, b.ID, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hits {
			out = append(out, h.ID)
		}
		return out
	}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			p    geo.Point
			want []string
		}{
			{placeA, []string{"a"}},
			{geo.Point{Lat: placeA.Lat + 0.0006, Lon: placeA.Lon}, nil}, // 67 m: in the fence, not the visit area
			{placeB, nil}, // the fence's centre, not its own visit area
			{geo.Point{Lat: placeB.Lat + 0.001, Lon: placeB.Lon}, []string{"own"}},
		} {
			if got := at(c.p); !slices.Equal(got, c.want) {
				t.Errorf("%s: VisitsAt(%v) = %v, want %v", when, c.p, got, c.want)
			}
		}
	}
	check("as put")
	e.restart()
	check("after a restart")
	if st, err := e.s.Store(e.ctx, b.ID, "own"); err != nil || st.Visit == nil || st.Visit.Circle.RadiusM != 20 {
		t.Errorf("the store's own visit area as stored: %+v, %v", st.Visit, err)
	}
	if err := e.s.DeleteStore(e.ctx, b.ID, "own"); err != nil {
		t.Fatal(err)
	}
	if got := at(geo.Point{Lat: placeB.Lat + 0.001, Lon: placeB.Lon}); len(got) != 0 {
		t.Errorf("a deleted store's visit area still matches: %v", got)
	}
}

// testDeviceIDs: a brand's devices, all of them, in id order; not
// another brand's, not an erased one; after a restart too.
func testDeviceIDs(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b, other := e.newBrand("b"), e.newBrand("other")
	for _, id := range []string{"c", "a", "gone", "b", "never-pinged"} {
		e.putDevice(newDevice(b.ID, id))
	}
	e.putDevice(newDevice(other.ID, "x"))
	if err := e.s.RecordPosition(e.ctx, b.ID, "a", hotzone.Position{Lat: placeA.Lat, Lon: placeA.Lon, AccuracyM: 5, TS: e.now()}, true); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteDevice(e.ctx, b.ID, "gone"); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", "c", "never-pinged"}
	check := func(when string) {
		t.Helper()
		got, err := e.s.DeviceIDs(e.ctx, b.ID)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: DeviceIDs = %v, %v; want %v", when, got, err, want)
		}
	}
	check("as written")
	e.restart()
	check("after a restart")
	if _, err := e.s.DeviceIDs(e.ctx, "nope"); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("DeviceIDs of an unknown brand = %v, want ErrNotFound", err)
	}
}

// testRetention: past a brand's retention_days, ended events go with
// their log entries and counts, and positions reported before then go
// (also from disk: a restart does not bring them back); live and recent
// ones stay, and another brand keeps its own longer retention.
func testRetention(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b, other := e.newBrand("b"), e.newBrand("other")
	if _, err := e.s.UpdatePolicy(e.ctx, b.ID, func(p *hotzone.Policy) error { p.RetentionDays = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, br := range []string{b.ID, other.ID} {
		e.putStore(circleStore(br, "a", placeA))
		for _, id := range []string{"d1", "d2", "d3", "d4", "d5"} {
			e.putDevice(newDevice(br, id))
		}
	}
	at := func(br, id string) {
		t.Helper()
		if err := e.s.RecordPosition(e.ctx, br, id, hotzone.Position{Lat: placeA.Lat, Lon: placeA.Lon, AccuracyM: 5, TS: e.now()}, true); err != nil {
			t.Fatal(err)
		}
	}
	var olds []hotzone.Event
	for _, br := range []string{b.ID, other.ID} {
		ev := e.startEvent(br, "a")
		e.queue(ev, "d1")
		e.suppress(ev, "quiet_hours", "d2")
		e.endEvent(ev)
		at(br, "d4")
		olds = append(olds, ev)
	}
	e.clock.Advance(50 * time.Hour)
	recent := e.startEvent(b.ID, "a")
	e.queue(recent, "d3")
	at(b.ID, "d5")
	if err := e.s.Prune(e.ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if _, _, err := e.s.Event(e.ctx, b.ID, olds[0].ID); !errors.Is(err, hotzone.ErrNotFound) {
			t.Errorf("%s: an event ended 50 h ago under a 1-day retention: %v, want it gone", when, err)
		}
		if got := e.logOf(b.ID, hotzone.NotificationQuery{}); len(got) != 1 || got[0].EventID != recent.ID {
			t.Errorf("%s: the log holds %d entries, want the live event's one", when, len(got))
		}
		e.countsMatchLog(recent, when)
		if _, _, err := e.s.Event(e.ctx, other.ID, olds[1].ID); err != nil {
			t.Errorf("%s: another brand's event under its 30 days: %v", when, err)
		}
		if got := e.logOf(other.ID, hotzone.NotificationQuery{}); len(got) != 2 {
			t.Errorf("%s: another brand's log holds %d entries, want 2", when, len(got))
		}
		for _, c := range []struct {
			brand, id string
			kept      bool
		}{{b.ID, "d4", false}, {b.ID, "d5", true}, {other.ID, "d4", true}} {
			_, pos, err := e.s.Device(e.ctx, c.brand, c.id)
			if err != nil || (pos != nil) != c.kept {
				t.Errorf("%s: %s's position %+v, %v; kept %v wanted", when, c.id, pos, err, c.kept)
			}
		}
		ids, err := e.s.DevicesIn(e.ctx, b.ID, circleStore(b.ID, "a", placeA).Fence, epoch)
		if err != nil || !slices.Equal(ids, []string{"d5"}) {
			t.Errorf("%s: DevicesIn = %v, %v; want d5 alone", when, ids, err)
		}
	}
	check("after pruning")
	e.restart()
	check("after a restart")
	if err := e.s.Prune(e.ctx); err != nil {
		t.Errorf("pruning again: %v", err)
	}
	check("after pruning again")
}
