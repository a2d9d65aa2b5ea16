package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the cap rules need real zones wherever the suite runs

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Opener opens storage for a test with the given clock. Called again with
// the same t after the storage it returned was closed, it must open the
// same data (a restart); for any other t it opens fresh, empty data. The
// storage must use now as its clock and must be able to keep push
// credentials (a server key is configured).
type Opener func(t *testing.T, now func() time.Time) hotzone.Storage

// Run checks every rule of the storage contract against the backend open
// opens, each as a subtest with storage of its own.
func Run(t *testing.T, open Opener) {
	rules := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"OperatorKey", testOperatorKey},
		{"ManagerKeys", testManagerKeys},
		{"Brands", testBrands},
		{"PolicyConcurrentUpdates", testPolicyConcurrentUpdates},
		{"Stores", testStores},
		{"FencesNear", testFencesNear},
		{"DeleteStore", testDeleteStore},
		{"Devices", testDevices},
		{"TokenMoves", testTokenMoves},
		{"InvalidTokenClears", testInvalidTokenClears},
		{"EraseCascades", testEraseCascades},
		{"OneLiveEventPerStore", testOneLiveEventPerStore},
		{"EndExpires", testEndExpires},
		{"EventsList", testEventsList},
		{"Changed", testChanged},
		{"OncePerEventConcurrent", testOncePerEventConcurrent},
		{"SuppressedUpgraded", testSuppressedUpgraded},
		{"VariantChosenWhenQueued", testVariantChosenWhenQueued},
		{"DeviceTags", testDeviceTags},
		{"Presets", testPresets},
		{"HeldBackStays", testHeldBackStays},
		{"Opens", testOpens},
		{"Visits", testVisits},
		{"VisitsAt", testVisitsAt},
		{"DeviceIDs", testDeviceIDs},
		{"Retention", testRetention},
		{"CapsAcrossLocalMidnight", testCapsAcrossLocalMidnight},
		{"OutboxLeases", testOutboxLeases},
		{"OutboxRetries", testOutboxRetries},
		{"OutboxLanes", testOutboxLanes},
		{"CountsEqualLog", testCountsEqualLog},
		{"CountsEqualLogConcurrent", testCountsEqualLogConcurrent},
		{"Log", testLog},
		{"Credentials", testCredentials},
		{"Stats", testStats},
		{"BrandsIsolated", testBrandsIsolated},
		{"NotFound", testNotFound},
		{"Presence", testPresence},
		{"PresenceConcurrent", testPresenceConcurrent},
		{"Lingering", testLingering},
		{"Webhooks", testWebhooks},
		{"WebhookQueue", testWebhookQueue},
		{"WebhookDisable", testWebhookDisable},
		{"Restart", testRestart},
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) { r.fn(t, open) })
	}
}

// Clock is a settable clock for the storage under test; safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time; hand it to the Opener.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (backwards too).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock on by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// epoch is where every subtest's clock starts: whole seconds, so any
// backend keeps the times it is given exactly.
var epoch = time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)

// env is one subtest's storage, its clock, and the helpers that drive
// them. Its helpers fail the test, so they are called from the test's
// goroutine only.
type env struct {
	t     *testing.T
	ctx   context.Context
	open  Opener
	clock *Clock
	s     hotzone.Storage
}

func newEnv(t *testing.T, open Opener) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), open: open, clock: NewClock(epoch)}
	e.s = open(t, e.clock.Now)
	if e.s == nil {
		t.Fatal("Opener returned nil storage")
	}
	return e
}

// restart closes the storage and opens the same data again.
func (e *env) restart() {
	e.t.Helper()
	if err := e.s.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	e.s = e.open(e.t, e.clock.Now)
	if e.s == nil {
		e.t.Fatal("Opener returned nil storage on reopen")
	}
	if err := e.s.Ping(e.ctx); err != nil {
		e.t.Fatalf("Ping after reopen: %v", err)
	}
}

// now is the clock's time.
func (e *env) now() time.Time { return e.clock.Now() }

// brandKeys is a new brand and the keys CreateBrand answered.
type brandKeys struct {
	hotzone.Brand
	admin, app string
}

func (e *env) newBrand(name string) brandKeys {
	e.t.Helper()
	b, admin, app, err := e.s.CreateBrand(e.ctx, name)
	if err != nil {
		e.t.Fatalf("CreateBrand(%q): %v", name, err)
	}
	return brandKeys{b, admin, app}
}

// Places the suite's fences and devices use. A store's fence is a 100 m
// circle around its place; "away" is about 1 km north of each.
var (
	placeA = geo.Point{Lat: 1, Lon: 2}
	placeB = geo.Point{Lat: 1, Lon: 2.1}
	placeC = geo.Point{Lat: 1, Lon: 2.2}
)

func away(p geo.Point) geo.Point { return geo.Point{Lat: p.Lat + 0.01, Lon: p.Lon} }

// circleStore is a store of brandID with a 100 m circle around p; its
// Fence is built.
func circleStore(brandID, id string, p geo.Point, tags ...string) hotzone.Store {
	st := hotzone.Store{ID: id, BrandID: brandID, Name: "Store " + id, Timezone: "UTC", Tags: tags,
		Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: p.Lat, Lon: p.Lon, RadiusM: 100}}}
	f, err := st.Spec.Build()
	if err != nil {
		panic(err)
	}
	st.Fence = f
	return st
}

func (e *env) putStore(st hotzone.Store) hotzone.Store {
	e.t.Helper()
	out, _, err := e.s.PutStore(e.ctx, st)
	if err != nil {
		e.t.Fatalf("PutStore(%s): %v", st.ID, err)
	}
	return out
}

// newDevice is an iOS device of brandID, opted in, with an APNs token
// of its own.
func newDevice(brandID, id string) hotzone.Device {
	return hotzone.Device{ID: id, BrandID: brandID, Platform: hotzone.PlatformIOS, Provider: hotzone.ProviderAPNs,
		Token: "tok-" + id, OptIn: true, Timezone: "UTC", Locale: "en"}
}

// android is newDevice on FCM.
func android(brandID, id string) hotzone.Device {
	d := newDevice(brandID, id)
	d.Platform, d.Provider = hotzone.PlatformAndroid, hotzone.ProviderFCM
	return d
}

func (e *env) putDevice(d hotzone.Device) hotzone.Device {
	e.t.Helper()
	out, _, err := e.s.PutDevice(e.ctx, d)
	if err != nil {
		e.t.Fatalf("PutDevice(%s): %v", d.ID, err)
	}
	return out
}

// putDevices registers n iOS devices named prefix000… and returns their
// ids.
func (e *env) putDevices(brandID, prefix string, n int) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%03d", prefix, i)
		e.putDevice(newDevice(brandID, ids[i]))
	}
	return ids
}

// ping records a qualifying position at p, reported now.
func (e *env) ping(brandID, deviceID string, p geo.Point) {
	e.t.Helper()
	pos := hotzone.Position{Lat: p.Lat, Lon: p.Lon, AccuracyM: 10, TS: e.now()}
	if err := e.s.RecordPosition(e.ctx, brandID, deviceID, pos, true); err != nil {
		e.t.Fatalf("RecordPosition(%s): %v", deviceID, err)
	}
}

// event is a live event of the store starting now and planned for an
// hour; it is not started.
func (e *env) event(brandID, storeID string) hotzone.Event {
	now := e.now()
	return hotzone.Event{ID: hotzone.NewID(now), BrandID: brandID, StoreID: storeID, Title: "Hot", Body: "Fresh now",
		StartsAt: now, EndsAt: now.Add(time.Hour), Status: hotzone.EventLive}
}

// startEvent starts a new live event at the store.
func (e *env) startEvent(brandID, storeID string) hotzone.Event {
	e.t.Helper()
	ev, _, created, err := e.s.StartEvent(e.ctx, e.event(brandID, storeID), "")
	if err != nil || !created {
		e.t.Fatalf("StartEvent(%s) = created %v, %v; want a new event", storeID, created, err)
	}
	return ev
}

func (e *env) endEvent(ev hotzone.Event) (hotzone.Event, hotzone.Counts) {
	e.t.Helper()
	ended, c, err := e.s.EndEvent(e.ctx, ev.BrandID, ev.ID, e.now())
	if err != nil {
		e.t.Fatalf("EndEvent(%s): %v", ev.ID, err)
	}
	return ended, c
}

// queueAll is a decide that queues every device.
func queueAll(hotzone.Device, []time.Time) string { return "" }

// hold is a decide that suppresses every device for reason.
func hold(reason string) hotzone.DecideFunc {
	return func(hotzone.Device, []time.Time) string { return reason }
}

func (e *env) consider(ev hotzone.Event, decide hotzone.DecideFunc, ids ...string) []hotzone.Outcome {
	e.t.Helper()
	out, err := e.s.Consider(e.ctx, ev, ids, decide)
	if err != nil {
		e.t.Fatalf("Consider(%v): %v", ids, err)
	}
	if len(out) != len(ids) {
		e.t.Fatalf("Consider(%v) answered %d outcomes, want %d", ids, len(out), len(ids))
	}
	for i, o := range out {
		if o.DeviceID != ids[i] {
			e.t.Fatalf("Consider outcome %d is for %q, want %q (outcomes follow the ids)", i, o.DeviceID, ids[i])
		}
	}
	return out
}

// queue queues each device for the event, checking each was new.
func (e *env) queue(ev hotzone.Event, ids ...string) {
	e.t.Helper()
	for _, o := range e.consider(ev, queueAll, ids...) {
		if o.Status != hotzone.StatusQueued || !o.Changed {
			e.t.Fatalf("Consider(%s) = %+v; want newly queued", o.DeviceID, o)
		}
	}
}

// suppress logs each device as suppressed for reason.
func (e *env) suppress(ev hotzone.Event, reason string, ids ...string) {
	e.t.Helper()
	for _, o := range e.consider(ev, hold(reason), ids...) {
		if o.Status != hotzone.StatusSuppressed || o.Reason != reason || !o.Changed {
			e.t.Fatalf("Consider(%s) = %+v; want newly suppressed for %s", o.DeviceID, o, reason)
		}
	}
}

// logOf reads every entry of the brand's log the query selects, newest
// first, page by page through the Before cursor.
func (e *env) logOf(brandID string, q hotzone.NotificationQuery) []hotzone.Notification {
	e.t.Helper()
	q.Limit = 37 // an odd page size, so pages end anywhere
	var all []hotzone.Notification
	for {
		page, more, err := e.s.Notifications(e.ctx, brandID, q)
		if err != nil {
			e.t.Fatalf("Notifications(%+v): %v", q, err)
		}
		if len(page) > q.Limit {
			e.t.Fatalf("Notifications(%+v) answered %d entries, over its limit", q, len(page))
		}
		all = append(all, page...)
		if !more {
			return all
		}
		if len(page) == 0 {
			e.t.Fatalf("Notifications(%+v) answered an empty page with more", q)
		}
		q.Before = page[len(page)-1].ID
	}
}

// eventLog is every log entry of an event.
func (e *env) eventLog(ev hotzone.Event) []hotzone.Notification {
	e.t.Helper()
	return e.logOf(ev.BrandID, hotzone.NotificationQuery{EventID: ev.ID})
}

// byDevice indexes log entries by device.
func byDevice(ns []hotzone.Notification) map[string]hotzone.Notification {
	m := make(map[string]hotzone.Notification, len(ns))
	for _, n := range ns {
		m[n.DeviceID] = n
	}
	return m
}

// tally counts log entries by status as the Counts definition does.
func tally(ns []hotzone.Notification) hotzone.Counts {
	var c hotzone.Counts
	for _, n := range ns {
		c.Add(n.Status, 1)
		if n.OpenedAt != nil {
			c.Opened++
		}
	}
	return c
}

// counts is an event's counts through Event.
func (e *env) counts(ev hotzone.Event) hotzone.Counts {
	e.t.Helper()
	_, c, err := e.s.Event(e.ctx, ev.BrandID, ev.ID)
	if err != nil {
		e.t.Fatalf("Event(%s): %v", ev.ID, err)
	}
	return c
}

func (e *env) wantCounts(ev hotzone.Event, want hotzone.Counts) {
	e.t.Helper()
	if got := e.counts(ev); got != want {
		e.t.Errorf("Event(%s) counts = %+v, want %+v", ev.ID, got, want)
	}
}

// apnsLane is the brand's APNs lane.
func apnsLane(brandID string) hotzone.Lane {
	return hotzone.Lane{BrandID: brandID, Provider: hotzone.ProviderAPNs}
}

func (e *env) claim(lane hotzone.Lane, limit int, lease time.Duration) []hotzone.Notification {
	e.t.Helper()
	ns, err := e.s.Claim(e.ctx, lane, e.now(), limit, lease)
	if err != nil {
		e.t.Fatalf("Claim(%+v): %v", lane, err)
	}
	if len(ns) > limit {
		e.t.Fatalf("Claim(limit %d) handed out %d", limit, len(ns))
	}
	for _, n := range ns {
		if n.Status != hotzone.StatusQueued || n.BrandID != lane.BrandID || n.Provider != lane.Provider || n.Claim == "" {
			e.t.Fatalf("Claim(%+v) handed out %+v; want a queued notification of the lane with its claim", lane, n)
		}
	}
	return ns
}

// result is the delivery of status for a claimed notification.
func result(n hotzone.Notification, s hotzone.NotificationStatus, at time.Time) hotzone.Delivery {
	d := hotzone.Delivery{NotificationID: n.ID, Claim: n.Claim, BrandID: n.BrandID, Provider: n.Provider, Status: s, At: at}
	switch s {
	case hotzone.StatusSent, hotzone.StatusDryRun:
		d.ProviderID = "pid-" + n.ID
	case hotzone.StatusFailed, hotzone.StatusInvalidToken, hotzone.StatusQueued:
		d.Error, d.Code = "provider said no", "400 BadDeviceToken"
	}
	return d
}

func (e *env) record(ds ...hotzone.Delivery) {
	e.t.Helper()
	if err := e.s.Record(e.ctx, ds); err != nil {
		e.t.Fatalf("Record: %v", err)
	}
}

// recordAll records status for each claimed notification.
func (e *env) recordAll(ns []hotzone.Notification, s hotzone.NotificationStatus) {
	e.t.Helper()
	ds := make([]hotzone.Delivery, len(ns))
	for i, n := range ns {
		ds[i] = result(n, s, e.now())
	}
	e.record(ds...)
}

// notifIDs is the notifications' ids, sorted.
func notifIDs(ns []hotzone.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	slices.Sort(out)
	return out
}

func (e *env) wantNotFound(err error, what string) {
	e.t.Helper()
	wantNotFound(e.t, err, what)
}

func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

// waitClosed fails the test unless ch is closed; a backend may close it
// from another goroutine, so it waits a little.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * hotzone.ViewLag):
		t.Errorf("Changed was not closed after %s", what)
	}
}

// sameJSON compares values as the API would show them.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}
