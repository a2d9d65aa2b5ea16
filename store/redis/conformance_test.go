package redis

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
	"github.com/hotzone/hotzone/push"
	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone/store/redis/redistest"
	"github.com/hotzone/hotzone/store/storetest"
)

// The Redis backend keeps fan-out leases and the shared send rate.
var (
	_ push.FanOutLeases = (*DB)(nil)
	_ push.SendQuota    = (*DB)(nil)
)

// TestRedis runs everything that needs a cluster on one real cluster of
// three primaries with a replica each (starting one takes seconds):
// the storage contract's suite, then the rules only several nodes have.
// Each subtest keeps its data under a key prefix of its own.
func TestRedis(t *testing.T) {
	c := redistest.Start(t, 3, 1)
	var n atomic.Int64
	prefix := func() string { return "t" + strconv.FormatInt(n.Add(1), 10) }
	open := func(t *testing.T, p string, now func() time.Time) *DB {
		t.Helper()
		key := sha256.Sum256([]byte("test"))
		db, err := Open(t.Context(), c.Addrs, Options{Now: now, SecretKey: key[:], Prefix: p, WaitReplicas: 1})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return db
	}
	t.Run("Conformance", func(t *testing.T) {
		var prefixes sync.Map // *testing.T -> prefix, so a reopen finds its data
		storetest.Run(t, func(t *testing.T, now func() time.Time) hotzone.Storage {
			p, _ := prefixes.LoadOrStore(t, prefix())
			return open(t, p.(string), now)
		})
	})
	t.Run("ViewsInStep", func(t *testing.T) { testViewsInStep(t, open, prefix()) })
	t.Run("FanOutLease", func(t *testing.T) { testFanOutLease(t, open(t, prefix(), time.Now)) })
	t.Run("PositionsReadWhileFlushing", func(t *testing.T) { testPositionsWhileFlushing(t, open(t, prefix(), time.Now)) })
	t.Run("DecisionRoundTrips", func(t *testing.T) {
		// No polls or flushes of its own to count in between.
		key := sha256.Sum256([]byte("test"))
		p := prefix()
		db, err := Open(t.Context(), c.Addrs, Options{SecretKey: key[:], Prefix: p, Poll: time.Hour, FlushInterval: time.Hour, WaitReplicas: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		testDecisionRoundTrips(t, db, open(t, p, time.Now))
	})
	t.Run("ScriptsForgotten", func(t *testing.T) { testScriptsForgotten(t, open(t, prefix(), time.Now)) })
	t.Run("SendQuota", func(t *testing.T) {
		p := prefix()
		testSendQuota(t, open(t, p, time.Now), open(t, p, time.Now))
	})
	t.Run("WaitedWriteMoved", func(t *testing.T) {
		p := prefix()
		testWaitedWriteMoved(t, c, open(t, p, time.Now), p)
	})
	t.Run("IdleConnsClose", func(t *testing.T) { testIdleConnsClose(t, c, prefix()) })
	t.Run("WaitWithoutReplicas", func(t *testing.T) { testWaitWithoutReplicas(t, c, open(t, prefix(), time.Now)) })
	t.Run("FarPingThroughAnotherNode", func(t *testing.T) {
		p := prefix()
		testFarPing(t, open(t, p, time.Now), open(t, p, time.Now))
	})
	t.Run("ClaimLeasesAnIdOnce", func(t *testing.T) { testClaimLeasesOnce(t, open(t, prefix(), time.Now)) })
	t.Run("LargeClaimInOneShard", func(t *testing.T) { testLargeClaim(t, open(t, prefix(), time.Now)) })
	t.Run("DecisionOnAChangedDevice", func(t *testing.T) { testDecisionOnChangedDevice(t, open(t, prefix(), time.Now)) })
	t.Run("HoldOnAKeptState", func(t *testing.T) {
		p := prefix()
		testHoldOnKeptState(t, open(t, p, time.Now), open(t, p, time.Now))
	})
	t.Run("PositionsWrittenBefore", func(t *testing.T) { testPositionsWrittenBefore(t, open(t, prefix(), time.Now)) })
	t.Run("PositionTimes", func(t *testing.T) { testPositionTimes(t, open(t, prefix(), time.Now)) })
	t.Run("StaleCells", func(t *testing.T) { testStaleCells(t, open(t, prefix(), time.Now)) })
	t.Run("SearchWhileFlushing", func(t *testing.T) { testSearchWhileFlushing(t, open(t, prefix(), time.Now)) })
	t.Run("FlushEarly", func(t *testing.T) {
		key := sha256.Sum256([]byte("test"))
		p := prefix()
		db, err := Open(t.Context(), c.Addrs, Options{SecretKey: key[:], Prefix: p, FlushInterval: time.Hour, WaitReplicas: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		testFlushEarly(t, db, open(t, p, time.Now))
	})
	t.Run("FlushDeferredToFanOut", func(t *testing.T) {
		// Restored after both nodes closed (cleanups run last first).
		early, chunk, hold := flushEarly, flushChunk, fanOutHold
		t.Cleanup(func() { flushEarly, flushChunk, fanOutHold = early, chunk, hold })
		flushEarly, flushChunk, fanOutHold = 40, 15, 2*time.Second
		key := sha256.Sum256([]byte("test"))
		p := prefix()
		db, err := Open(t.Context(), c.Addrs, Options{SecretKey: key[:], Prefix: p, FlushInterval: time.Hour, WaitReplicas: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		testFlushDeferred(t, db, open(t, p, time.Now))
	})
	t.Run("ClaimOldestAcrossShards", func(t *testing.T) {
		clock := storetest.NewClock(time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second))
		testClaimOldest(t, open(t, prefix(), clock.Now), clock)
	})
	t.Run("RunsInLua", func(t *testing.T) { testRunsInLua(t, open(t, prefix(), time.Now)) })
	t.Run("Retention", func(t *testing.T) {
		// Ahead of every id made so far: ids never go back in time, and
		// pruning goes by the time in the id.
		clock := storetest.NewClock(time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second))
		testRetention(t, open(t, prefix(), clock.Now), clock)
	})
	t.Run("LogRuns", func(t *testing.T) {
		// Ahead of Retention's clock, for the same reason.
		clock := storetest.NewClock(time.Now().Add(400 * 24 * time.Hour).Truncate(time.Second))
		testLogRuns(t, open(t, prefix(), clock.Now), clock)
	})
	t.Run("OldestQueued", func(t *testing.T) {
		clock := storetest.NewClock(time.Now().Add(440 * 24 * time.Hour).Truncate(time.Second))
		testOldestQueued(t, open(t, prefix(), clock.Now), clock)
	})
}

// testRetention: past the retention, log entries and ended events go,
// in many pruning steps per shard; recent entries and live events stay.
func testRetention(t *testing.T, db *DB, clock *storetest.Clock) {
	ctx := t.Context()
	defer func(n int) { pruneBatch = n }(pruneBatch)
	pruneBatch = 3
	br, _ := brandStore(t, db, "Old")
	const n = 300 // about ten per shard: several steps of three
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "d" + strconv.Itoa(i)
		mustPutDevice(t, db, apnsDevice(br.ID, ids[i]))
	}
	// A position as old as the old event goes with it, in the record and
	// in the shard's copy (see qualsOf).
	if err := db.RecordPosition(ctx, br.ID, "d1", hotzone.Position{Lat: 52.37, Lon: 4.89, AccuracyM: 5, TS: clock.Now()}, true); err != nil {
		t.Fatal(err)
	}
	if err := db.FlushPositions(ctx); err != nil {
		t.Fatal(err)
	}
	old := mustStartEvent(t, db, br.ID, clock.Now())
	// All but one suppressed; that one is queued, and expired at the end.
	if _, err := db.Consider(ctx, old, ids, func(d hotzone.Device, _ []time.Time) string {
		if d.ID == "d0" {
			return ""
		}
		return "quiet_hours"
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.EndEvent(ctx, br.ID, old.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * 24 * time.Hour)
	recent := mustStartEvent(t, db, br.ID, clock.Now())
	if _, err := db.Consider(ctx, recent, ids[:10], func(hotzone.Device, []time.Time) string { return "quiet_hours" }); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * 24 * time.Hour) // the old event is 31 days old
	if err := db.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Event(ctx, br.ID, old.ID); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("an event ended 31 days ago: %v, want it gone", err)
	}
	sh := db.devShard(br.ID, "d1")
	for key, field := range map[string]string{sh + ":q": "d1", sh + ":d:d1": "qual"} {
		if n, err := db.do(ctx, db.cmd("HEXISTS", []string{key}, field)).AsInt64(); err != nil || n != 0 {
			t.Errorf("a position reported 31 days ago is still in %s (%d, %v)", key, n, err)
		}
	}
	if _, _, err := db.Event(ctx, br.ID, recent.ID); err != nil {
		t.Errorf("a live event: %v, want it kept", err)
	}
	left, _, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{})
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]int{}
	for _, e := range left {
		kept[e.EventID]++
	}
	if kept[recent.ID] != 10 || kept[old.ID] != 0 || len(left) != 10 {
		t.Errorf("after pruning the log holds %v (of %d entries), want the recent event's 10 alone", kept, len(left))
	}
	// The expired entry of the old event went too; a device's own log
	// agrees.
	if mine, _, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{DeviceID: "d0"}); err != nil || len(mine) != 1 {
		t.Errorf("d0's log after pruning = %d entries, %v; want its recent one", len(mine), err)
	}
}

// testFanOutLease: one owner at a time, another once the lease lapsed,
// nobody once done or ended.
func testFanOutLease(t *testing.T, db *DB) {
	ctx := t.Context()
	now := time.Now()
	lease := func(owner string, at time.Time) bool {
		t.Helper()
		ok, err := db.LeaseFanOut(ctx, "b", "e", owner, at, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("a", now) || !lease("a", now.Add(time.Second)) {
		t.Fatal("the first owner cannot take and renew its lease")
	}
	if lease("b", now.Add(5*time.Second)) {
		t.Error("a second owner took a live lease")
	}
	if !lease("b", now.Add(12*time.Second)) {
		t.Error("a second owner cannot take a lapsed lease")
	}
	if lease("a", now.Add(13*time.Second)) {
		t.Error("the first owner renewed a lease taken over")
	}
	if err := db.FanOutDone(ctx, "b", "e"); err != nil {
		t.Fatal(err)
	}
	if lease("c", now.Add(time.Hour)) {
		t.Error("a done fan-out was leased again")
	}
}

// testViewsInStep: two nodes on one cluster. What one changes (policy,
// stores, a key's revocation, an event's start, its counts, its end) the
// other's views show within ViewLag; a published change normally much
// sooner, and a poll catches what a lost message would miss.
func testViewsInStep(t *testing.T, open func(*testing.T, string, func() time.Time) *DB, p string) {
	ctx := t.Context()
	a, b := open(t, p, time.Now), open(t, p, time.Now)
	within := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > hotzone.ViewLag {
				t.Fatalf("%s: not seen by the other node within %v", what, hotzone.ViewLag)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s: seen by the other node after %v", what, time.Since(start).Round(time.Millisecond))
	}
	br, _, _, err := a.CreateBrand(ctx, "Two Nodes")
	if err != nil {
		t.Fatal(err)
	}
	within("a new brand", func() bool { _, err := b.Brand(ctx, br.ID); return err == nil })
	if _, err := a.UpdatePolicy(ctx, br.ID, func(p *hotzone.Policy) error { p.DailyCap = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	within("a policy change", func() bool { p, _ := b.Policy(ctx, br.ID); return p.DailyCap == 7 })
	st := hotzone.Store{ID: "s", BrandID: br.ID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 52.37, Lon: 4.89, RadiusM: 200}}}
	st.Fence, _ = st.Spec.Build()
	if _, _, err := a.PutStore(ctx, st); err != nil {
		t.Fatal(err)
	}
	within("a new store's fence", func() bool {
		hits, _ := b.FencesAt(ctx, br.ID, st.Fence.Circle.Center, nil)
		return len(hits) == 1
	})
	k, secret, err := a.CreateManagerKey(ctx, br.ID, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	within("a new manager key", func() bool { _, err := b.Authenticate(ctx, secret); return err == nil })
	onB, _ := b.Authenticate(ctx, secret)
	changed, _ := b.Changed(ctx, br.ID, "s")
	if err := a.DeleteManagerKey(ctx, br.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	within("a revoked key", func() bool { ok, _ := b.KeyActive(ctx, onB); return !ok })
	within("a revoked key waking the store's streams", func() bool {
		select {
		case <-changed:
			return true
		default:
			return false
		}
	})

	// An event started through a, decided through a, is live with its
	// counts on b; a poll (not a message) brings the counts.
	d := hotzone.Device{ID: "d", BrandID: br.ID, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: "t"}
	if _, _, err := b.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	ev := hotzone.Event{ID: hotzone.NewID(now), BrandID: br.ID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: now, EndsAt: now.Add(time.Hour)}
	if _, _, _, err := a.StartEvent(ctx, ev, ""); err != nil {
		t.Fatal(err)
	}
	within("an event going live", func() bool { _, _, err := b.LiveEvent(ctx, br.ID, "s"); return err == nil })
	if _, err := a.Consider(ctx, ev, []string{"d"}, func(hotzone.Device, []time.Time) string { return "" }); err != nil {
		t.Fatal(err)
	}
	within("the event's counts", func() bool { _, c, _ := b.LiveEvent(ctx, br.ID, "s"); return c.Queued == 1 })
	if _, _, err := a.EndEvent(ctx, br.ID, ev.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	within("the event's end", func() bool { _, _, err := b.LiveEvent(ctx, br.ID, "s"); return err != nil })
	if _, c, err := b.Event(ctx, br.ID, ev.ID); err != nil || c.Expired != 1 {
		t.Errorf("the ended event on the other node = %+v, %v; want its one queued notification expired", c, err)
	}

	// A lost message: the brand's version moves without a word; the poll
	// alone brings the change.
	if err := a.do(context.Background(), a.cmd("SET", []string{a.bkey(br.ID, "policy")}, `{"min_interval_s":60,"daily_cap":9,"quiet_hours":null,"max_accuracy_m":100,"presence_ttl_s":600,"max_ping_age_s":60}`)).Error(); err != nil {
		t.Fatal(err)
	}
	if err := a.do(context.Background(), a.cmd("HINCRBY", []string{a.gkey("ver")}, br.ID+"/"+partCatalog, "1")).Error(); err != nil {
		t.Fatal(err)
	}
	within("a change whose message was lost", func() bool { p, _ := b.Policy(ctx, br.ID); return p.DailyCap == 9 })
}

// testSendQuota: two nodes draw on one lane's budget: together they get
// one second's worth at once, not one each.
func testSendQuota(t *testing.T, a, b *DB) {
	ctx := t.Context()
	lane := hotzone.Lane{BrandID: "b", Provider: hotzone.ProviderAPNs}
	const perSecond = 1000
	total := 0
	start := time.Now()
	for i := range 100 {
		db := a
		if i%2 == 1 {
			db = b
		}
		got, err := db.TakeSends(ctx, lane, perSecond, 50)
		if err != nil {
			t.Fatal(err)
		}
		total += got
	}
	// 100 asks of 50 is 5,000; the shared budget holds 1,000 plus what
	// refilled while the asks ran (the server's clock; ours bounds it).
	most := perSecond + int(perSecond*time.Since(start).Seconds()) + 1
	if total < perSecond || total > most {
		t.Errorf("two nodes got %d sends from a budget of %d per second, want %d to %d", total, perSecond, perSecond, most)
	}
	other := hotzone.Lane{BrandID: "b", Provider: hotzone.ProviderFCM}
	if got, err := b.TakeSends(ctx, other, perSecond, 50); err != nil || got != 50 {
		t.Errorf("another lane's budget = %d, %v; want its own 50", got, err)
	}
}

// testScriptsForgotten: nodes that lost their script cache (a restart, a
// promoted replica) get each script again by EVAL, and calls succeed.
func testScriptsForgotten(t *testing.T, db *DB) {
	ctx := t.Context()
	br, _, _, err := db.CreateBrand(ctx, "Forgetful")
	if err != nil {
		t.Fatal(err)
	}
	flush := func() {
		t.Helper()
		for addr, n := range db.c.Nodes() {
			if err := n.Do(ctx, n.B().ScriptFlush().Build()).Error(); err != nil {
				t.Fatalf("SCRIPT FLUSH on %s: %v", addr, err)
			}
		}
	}
	flush()
	d := hotzone.Device{ID: "d", BrandID: br.ID, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC"}
	if _, _, err := db.PutDevice(ctx, d); err != nil {
		t.Fatalf("one script call after the flush: %v", err)
	}
	flush()
	if err := db.Release(ctx, hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}); err != nil {
		t.Fatalf("a batch of script calls after the flush: %v", err)
	}
}

// testPositionsWhileFlushing: positions a flush has taken but not yet
// written are still read (a fan-out that started then missed three
// quarters of its devices).
func testPositionsWhileFlushing(t *testing.T, db *DB) {
	ctx := t.Context()
	br, st := brandStore(t, db, "Flushing")
	mustPutDevice(t, db, apnsDevice(br.ID, "d"))
	now := time.Now().UTC()
	if err := db.RecordPosition(ctx, br.ID, "d", hotzone.Position{Lat: 52.37, Lon: 4.89, AccuracyM: 5, TS: now}, true); err != nil {
		t.Fatal(err)
	}
	db.flushMu.Lock() // a flush in progress: taken, not yet written
	db.pos.take(flushChunk)
	defer func() { db.pos.flushed(); db.flushMu.Unlock() }()
	if _, pos, err := db.Device(ctx, br.ID, "d"); err != nil || pos == nil || pos.Qualifying == nil {
		t.Errorf("Device during a flush = %+v, %v; want its position", pos, err)
	}
	if ids, err := db.DevicesIn(ctx, br.ID, st.Fence, now.Add(-time.Minute)); err != nil || len(ids) != 1 {
		t.Errorf("DevicesIn during a flush = %v, %v; want the device", ids, err)
	}
}

// testDecisionRoundTrips: a decision that queues a device this node
// knows is one round trip (its write with the WAIT behind it); for a
// device it does not know, or knows stale, two (the read it is made
// on, or the refused write that answers it). A final result is one
// (its write with the WAIT), a presence change two (the read, then the
// write with the WAIT); once a device is notified for an event, its
// next decisions for it (a ping that triggers nothing new) make no
// round trip; erased, it is decided anew. other is another node.
func testDecisionRoundTrips(t *testing.T, db, other *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, db, "Quiet")
	d := apnsDevice(br.ID, "d")
	mustPutDevice(t, db, d)
	ev := mustStartEvent(t, db, br.ID, time.Now().UTC())
	queue := func(hotzone.Device, []time.Time) string { return "" }
	consider := func() hotzone.Outcome { t.Helper(); return considerOne(t, db, ev, "d", queue) }
	if o := consider(); o.Status != hotzone.StatusQueued {
		t.Fatalf("first decision = %+v, want queued", o)
	}
	// The brand's lane is known now: the next device's decision makes
	// only its own round trips.
	mustPutDevice(t, db, apnsDevice(br.ID, "e"))
	before := quietCount(t, db)
	if out, err := db.Consider(ctx, ev, []string{"e"}, queue); err != nil || out[0].Status != hotzone.StatusQueued {
		t.Fatalf("decision of e = %+v, %v; want queued", out, err)
	}
	if n := db.Metrics().Snapshot().Count - before; n != 1 {
		t.Errorf("a decision that queues a device this node registered made %d round trips, want 1", n)
	}
	// Registered through the other node: this one reads it first.
	if err := other.reloadBrand(ctx, br.ID); err != nil {
		t.Fatal(err)
	}
	mustPutDevice(t, other, apnsDevice(br.ID, "f"))
	before = quietCount(t, db)
	if out, err := db.Consider(ctx, ev, []string{"f"}, queue); err != nil || out[0].Status != hotzone.StatusQueued {
		t.Fatalf("decision of f = %+v, %v; want queued", out, err)
	}
	if n := db.Metrics().Snapshot().Count - before; n != 2 {
		t.Errorf("a decision that queues a device this node did not know made %d round trips, want 2", n)
	}
	// Known here, then registered anew through the other node: the
	// write made on the old record is refused and answers the new one.
	g := apnsDevice(br.ID, "g")
	mustPutDevice(t, db, g)
	g.Locale = "fr-FR"
	mustPutDevice(t, other, g)
	before = quietCount(t, db)
	var locales []string
	if out, err := db.Consider(ctx, ev, []string{"g"}, func(d hotzone.Device, _ []time.Time) string {
		locales = append(locales, d.Locale)
		return ""
	}); err != nil || out[0].Status != hotzone.StatusQueued {
		t.Fatalf("decision of g = %+v, %v; want queued", out, err)
	}
	if n := db.Metrics().Snapshot().Count - before; n != 2 {
		t.Errorf("a decision that queues a device this node knew stale made %d round trips, want 2", n)
	}
	if len(locales) != 2 || locales[1] != "fr-FR" {
		t.Errorf("g decided on locales %q, want twice, the last on fr-FR", locales)
	}
	if short := db.Metrics().Snapshot().WaitShort; short != 0 {
		t.Errorf("%d WAITs came back short with every replica up", short)
	}
	got, err := db.Claim(ctx, hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}, time.Now(), 10, time.Minute)
	if err != nil || len(got) != 4 {
		t.Fatalf("Claim = %d, %v; want all four queued", len(got), err)
	}
	before = quietCount(t, db)
	if err := db.Record(ctx, []hotzone.Delivery{{NotificationID: got[0].ID, Claim: got[0].Claim, BrandID: br.ID,
		Provider: got[0].Provider, Status: hotzone.StatusSent, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if n := db.Metrics().Snapshot().Count - before; n != 1 {
		t.Errorf("recording a sent result made %d round trips, want 1", n)
	}
	before = quietCount(t, db)
	if _, err := db.UpdatePresence(ctx, br.ID, "e", func(p *hotzone.Presence) bool {
		p.Visits = append(p.Visits, hotzone.Visit{StoreID: "s", EnteredAt: time.Now(), SeenAt: time.Now()})
		p.AsOf = time.Now()
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if n := db.Metrics().Snapshot().Count - before; n != 2 {
		t.Errorf("a presence change made %d round trips, want 2", n)
	}
	before = quietCount(t, db)
	if o := consider(); o.Reason != hotzone.ReasonAlreadyNotified {
		t.Fatalf("second decision = %+v, want already notified", o)
	}
	if n := db.Metrics().Snapshot().Count - before; n != 0 {
		t.Errorf("a decision for a device already notified made %d round trips, want none", n)
	}
	if err := db.DeleteDevice(ctx, br.ID, "d"); err != nil {
		t.Fatal(err)
	}
	mustPutDevice(t, db, d)
	if o := consider(); o.Status != hotzone.StatusQueued {
		t.Errorf("after an erasure, the device registered anew = %+v, want queued again", o)
	}
}

// testWaitWithoutReplicas: with the replicas gone, a queued notification
// still stands, and its WAIT comes back short (the WAIT runs where the
// write went: a WAIT on another node, or on a connection that wrote
// nothing, would answer at once with every replica). It kills the
// replicas, so it runs after every other subtest that needs them.
func testWaitWithoutReplicas(t *testing.T, c *redistest.Cluster, db *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, db, "Alone")
	mustPutDevice(t, db, apnsDevice(br.ID, "d"))
	ev := mustStartEvent(t, db, br.ID, time.Now().UTC())
	for i := 3; i < len(c.Addrs); i++ { // the replicas, as created
		c.Kill(i)
	}
	before := db.Metrics().Snapshot().WaitShort
	out, err := db.Consider(ctx, ev, []string{"d"}, func(hotzone.Device, []time.Time) string { return "" })
	if err != nil || out[0].Status != hotzone.StatusQueued {
		t.Fatalf("Consider without replicas = %+v, %v; want queued", out, err)
	}
	if db.Metrics().Snapshot().WaitShort == before {
		t.Error("a queued notification's WAIT came back with a replica that is dead")
	}
}

// testClaimOldest: a claim reads each shard's fair share first; when one
// shard holds most of what is due, its further entries are read too, so
// the claims still hand out exactly the oldest due.
func testClaimOldest(t *testing.T, db *DB, clock *storetest.Clock) {
	ctx := t.Context()
	br, _ := brandStore(t, db, "Skewed")
	var ids []string
	for i := 0; len(ids) < 240; i++ {
		id := "d" + strconv.Itoa(i)
		// Two thirds in shard 5, the rest wherever they fall.
		if shardOf(id) == 5 || i%64 == 0 {
			ids = append(ids, id)
		}
	}
	ev := mustStartEvent(t, db, br.ID, clock.Now())
	for _, id := range ids {
		mustPutDevice(t, db, apnsDevice(br.ID, id))
		clock.Advance(time.Millisecond) // each due a millisecond after the last
		if _, err := db.Consider(ctx, ev, []string{id}, func(hotzone.Device, []time.Time) string { return "" }); err != nil {
			t.Fatal(err)
		}
	}
	lane := hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}
	for from := 0; from < len(ids); from += 40 {
		got, err := db.Claim(ctx, lane, clock.Now(), 40, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		want := ids[from:min(from+40, len(ids))]
		if len(got) != len(want) {
			t.Fatalf("claim from %d handed out %d, want %d", from, len(got), len(want))
		}
		for k, n := range got {
			if n.DeviceID != want[k] {
				t.Fatalf("claim from %d: pick %d is %s (shard %d), want %s (shard %d)", from, k, n.DeviceID, shardOf(n.DeviceID), want[k], shardOf(want[k]))
			}
		}
	}
}

// testFarPing: a visit opened through node a; the device's next ping,
// far from every fence, goes through node b, which knew of no visit and
// so made no presence update: b's flush notes it, and Lingering (on any
// node) lists the device once, so the sweep applies that ping.
func testFarPing(t *testing.T, a, b *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, a, "Far")
	// Presence is kept for a brand that uses it: the dwell trigger.
	if _, err := a.UpdatePolicy(ctx, br.ID, func(p *hotzone.Policy) error { p.Trigger = hotzone.TriggerDwell; return nil }); err != nil {
		t.Fatal(err)
	}
	mustPutDevice(t, a, apnsDevice(br.ID, "d1"))
	mustPutDevice(t, a, apnsDevice(br.ID, "d2"))
	now := time.Now()
	for _, id := range []string{"d1", "d2"} {
		if _, err := a.UpdatePresence(ctx, br.ID, id, func(p *hotzone.Presence) bool {
			p.Visits = []hotzone.Visit{{StoreID: "s", EnteredAt: now, SeenAt: now}}
			p.AsOf = now
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.reloadBrand(ctx, br.ID); err != nil {
		t.Fatal(err)
	}
	if b.MayBePresent(br.ID, "d1") {
		t.Fatal("node b knows of a visit it never saw")
	}
	far := hotzone.Position{Lat: 52.47, Lon: 4.89, AccuracyM: 10, TS: now.Add(time.Second)}  // 11 km north
	near := hotzone.Position{Lat: 52.37, Lon: 4.89, AccuracyM: 10, TS: now.Add(time.Second)} // inside
	if err := b.RecordPosition(ctx, br.ID, "d1", far, true); err != nil {
		t.Fatal(err)
	}
	if err := b.RecordPosition(ctx, br.ID, "d2", near, true); err != nil {
		t.Fatal(err)
	}
	if err := b.FlushPositions(ctx); err != nil {
		t.Fatal(err)
	}
	refs, err := a.Lingering(ctx, now.Add(2*time.Second), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		if r.BrandID == br.ID {
			got = append(got, r.DeviceID)
		}
	}
	if len(got) != 1 || got[0] != "d1" {
		t.Errorf("Lingering after a far ping through another node = %v, want d1 (d2's ping was near: its node updated presence itself)", got)
	}
	if refs, _ := a.Lingering(ctx, now.Add(2*time.Second), 100); len(refs) != 0 {
		t.Errorf("Lingering again = %v, want none: a far ping is listed once", refs)
	}
}

// testDecisionOnChangedDevice: a device that changes between the read a
// decision is made on and its write (here: opts out while decide runs)
// is decided again on the record as it is now, also when a batch of
// other devices is decided in the same call.
func testDecisionOnChangedDevice(t *testing.T, db *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, db, "Changed")
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		mustPutDevice(t, db, apnsDevice(br.ID, id))
	}
	ev := mustStartEvent(t, db, br.ID, time.Now())
	calls := map[string]int{}
	out, err := db.Consider(ctx, ev, ids, func(d hotzone.Device, _ []time.Time) string {
		calls[d.ID]++
		if !d.OptIn {
			return "opted_out"
		}
		if d.ID == "b" && calls[d.ID] == 1 {
			off := apnsDevice(br.ID, "b")
			off.OptIn = false
			mustPutDevice(t, db, off)
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		want := hotzone.StatusQueued
		if o.DeviceID == "b" {
			want = hotzone.StatusSuppressed
		}
		if o.Status != want {
			t.Errorf("%s: %+v, want %s", o.DeviceID, o, want)
		}
	}
	if calls["b"] != 2 {
		t.Errorf("b decided %d times, want twice (again on its new record)", calls["b"])
	}
}

// testHoldOnKeptState: a node answers a hold that writes nothing only
// on the device as it is now, never on the state it kept: a device held
// back as opted out on node a, then opted in through node b, is queued
// by a's next decision.
func testHoldOnKeptState(t *testing.T, a, b *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, a, "Kept")
	if err := b.reloadBrand(ctx, br.ID); err != nil {
		t.Fatal(err)
	}
	d := apnsDevice(br.ID, "d")
	d.OptIn = false
	mustPutDevice(t, a, d)
	ev := mustStartEvent(t, a, br.ID, time.Now())
	optIn := func(d hotzone.Device, _ []time.Time) string {
		if !d.OptIn {
			return "opted_out"
		}
		return ""
	}
	consider := func() hotzone.Outcome { t.Helper(); return considerOne(t, a, ev, "d", optIn) }
	if o := consider(); o.Status != hotzone.StatusSuppressed {
		t.Fatalf("opted out: %+v, want suppressed", o)
	}
	d.OptIn = true
	mustPutDevice(t, b, d)
	if o := consider(); o.Status != hotzone.StatusQueued {
		t.Errorf("opted in through another node: %+v, want queued", o)
	}
}

// testLargeClaim: a claim as large as --push-concurrency allows, of
// notifications all in one shard, hands them all out and records them
// (a script given thousands of ids at once fails in Lua's unpack).
func testLargeClaim(t *testing.T, db *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, db, "Large")
	var ids []string
	for i := 0; len(ids) < 8500; i++ {
		if id := "d" + strconv.Itoa(i); shardOf(id) == 7 {
			ids = append(ids, id)
		}
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(ids); i += 16 {
				if _, _, err := db.PutDevice(ctx, apnsDevice(br.ID, ids[i])); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ev := mustStartEvent(t, db, br.ID, time.Now())
	for from := 0; from < len(ids); from += 4096 {
		if _, err := db.Consider(ctx, ev, ids[from:min(from+4096, len(ids))], func(hotzone.Device, []time.Time) string { return "" }); err != nil {
			t.Fatal(err)
		}
	}
	lane := hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}
	got, err := db.Claim(ctx, lane, time.Now(), 10000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("Claim(10000) handed out %d of %d queued", len(got), len(ids))
	}
	ds := make([]hotzone.Delivery, len(got))
	for i, n := range got {
		ds[i] = hotzone.Delivery{NotificationID: n.ID, Claim: n.Claim, BrandID: n.BrandID, Provider: n.Provider, Status: hotzone.StatusSent, At: time.Now()}
	}
	if err := db.Record(ctx, ds); err != nil {
		t.Fatal(err)
	}
	_, c, err := db.Event(ctx, br.ID, ev.ID)
	if err != nil || c.Sent != len(ids) || c.Queued != 0 {
		t.Errorf("counts after recording all = %+v, %v; want %d sent", c, err, len(ids))
	}
}

// testClaimLeasesOnce: an id given twice to one claim script (two reads
// of a shard's outbox that overlapped) is leased and handed out once.
func testClaimLeasesOnce(t *testing.T, db *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, db, "Once")
	mustPutDevice(t, db, apnsDevice(br.ID, "d1"))
	ev := mustStartEvent(t, db, br.ID, time.Now())
	if _, err := db.Consider(ctx, ev, []string{"d1"}, func(hotzone.Device, []time.Time) string { return "" }); err != nil {
		t.Fatal(err)
	}
	log, _, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{EventID: ev.ID})
	if err != nil || len(log) != 1 {
		t.Fatalf("log = %v, %v; want one entry", log, err)
	}
	now := time.Now()
	id := log[0].ID
	rs, err := db.execMulti(ctx, claim, []valkey.LuaExec{{Keys: []string{db.devShard(br.ID, "d1")},
		Args: []string{string(hotzone.ProviderAPNs), millis(now), millis(now.Add(time.Minute)), "0:c", id, id}}})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := strs(rs[0])
	if err != nil || len(vals) != 2 || vals[0] != id {
		t.Errorf("claim given %s twice answered %d values (%v), want it once", id, len(vals), err)
	}
}

// testPositionTimes: tsOf, run by Redis's own Lua, answers what
// string.match(v, '%d+$') does for packed positions and for anything
// else, and "" for none.
func testPositionTimes(t *testing.T, db *DB) {
	check := newScript(tsLua + `
local out = {tsOf(nil)}
for i = 1, #ARGV do
  out[#out+1] = tsOf(ARGV[i])
  out[#out+1] = string.match(ARGV[i], '%d+$') or ''
end
return out`)
	at := time.Date(2026, 12, 7, 4, 5, 6, 7, time.UTC)
	in := []string{
		packPos(hotzone.Position{Lat: 40.7128, Lon: -74.006, AccuracyM: 12.5, TS: at}),
		packPos(hotzone.Position{Lat: -33.9, Lon: 151.2, AccuracyM: 0, TS: time.Unix(0, 5)}),
		"", "x", "1 2 3 5", "1 2 3 012345678901234567891", "1 2 3 12345678901234567890x",
		"abc,12345678901234567890", "12345678901234567890", " 12345678901234567890", "1 2 3 000000000000000000-5",
	}
	vals, err := strs(db.exec(t.Context(), check, []string{"{pt}"}, in))
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 1+2*len(in) || vals[0] != "" {
		t.Fatalf("answered %q", vals)
	}
	for i, v := range in {
		if got, want := vals[1+2*i], vals[2+2*i]; got != want {
			t.Errorf("tsOf(%q) = %q, string.match %q", v, got, want)
		}
	}
	if want := nanos(at); vals[1] != want {
		t.Errorf("tsOf(%q) = %q, want %q", in[0], vals[1], want)
	}
}

// testPositionsWrittenBefore: a position is two hash fields, its time
// read from the packed form; a hash that an earlier build wrote with the
// times apart (lts, qts) is compared by the same times, and pruning
// takes the old fields too.
func testPositionsWrittenBefore(t *testing.T, db *DB) {
	ctx := t.Context()
	br, _ := brandStore(t, db, "Before")
	mustPutDevice(t, db, apnsDevice(br.ID, "old"))
	mustPutDevice(t, db, apnsDevice(br.ID, "new"))
	key := func(id string) string { return db.devShard(br.ID, id) + ":d:" + id }
	t1 := time.Now().UTC().Truncate(time.Millisecond)
	at := func(lat float64, ts time.Time) hotzone.Position {
		return hotzone.Position{Lat: lat, Lon: 4.89, AccuracyM: 5, TS: ts}
	}
	p1 := at(52.37, t1)
	if err := db.do(ctx, db.cmd("HSET", []string{key("old")}, "last", packPos(p1), "lts", nanos(t1), "qual", packPos(p1), "qts", nanos(t1))).Error(); err != nil {
		t.Fatal(err)
	}
	want := func(when string, lat float64, ts time.Time) {
		t.Helper()
		_, pos, err := db.Device(ctx, br.ID, "old")
		if err != nil || pos == nil || pos.Qualifying == nil {
			t.Fatalf("%s: Device = %+v, %v", when, pos, err)
		}
		if pos.Last.Lat != lat || !pos.Last.TS.Equal(ts) || pos.Qualifying.Lat != lat || !pos.Qualifying.TS.Equal(ts) {
			t.Errorf("%s: last %+v, qualifying %+v; want %v at %v", when, pos.Last, *pos.Qualifying, lat, ts)
		}
	}
	record := func(id string, p hotzone.Position) {
		t.Helper()
		if err := db.RecordPosition(ctx, br.ID, id, p, true); err != nil {
			t.Fatal(err)
		}
		if err := db.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want("as written before", 52.37, t1)
	record("old", at(52.1, t1.Add(-time.Minute)))
	want("after an older report", 52.37, t1)
	record("old", at(52.5, t1.Add(time.Minute)))
	want("after a newer report", 52.5, t1.Add(time.Minute))

	record("new", at(52.37, t1))
	fields, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{key("new")})))
	if err != nil {
		t.Fatal(err)
	}
	if fields["last"] != packPos(at(52.37, t1)) || fields["qual"] != fields["last"] {
		t.Errorf("a new device's positions: last %q, qual %q", fields["last"], fields["qual"])
	}
	if _, ok := fields["lts"]; ok {
		t.Error("a position written now has its time apart (lts) as well")
	}

	if err := db.prunePositions(ctx, br.ID, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"old", "new"} {
		fields, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{key(id)})))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"last", "lts", "qual", "qts"} {
			if _, ok := fields[f]; ok {
				t.Errorf("%s after pruning still has %s", id, f)
			}
		}
		if fields["rec"] == "" {
			t.Errorf("%s after pruning lost its record", id)
		}
	}
}

// testStaleCells: a fence search takes a device only on its record's
// qualifying position, whatever a grid cell still holds of it: a cell
// entry left behind by a move through another node, of a device that
// does not exist, or of a device that never pinged is not a device in
// the fence. Both searches are checked: the cells' and, for a fence too big
// for them, the brand's whole list of devices.
func testStaleCells(t *testing.T, db *DB) {
	ctx := t.Context()
	br, st := brandStore(t, db, "Stale")
	now := time.Now().UTC()
	at := func(lat, lon float64, ago time.Duration) hotzone.Position {
		return hotzone.Position{Lat: lat, Lon: lon, AccuracyM: 5, TS: now.Add(-ago)}
	}
	// Both inside the 200 m fence, in cells either side of 52.37.
	south, north := at(52.3695, 4.89, 2*time.Minute), at(52.3705, 4.89, time.Minute)
	far := at(48.85, 2.35, time.Minute) // Paris
	for _, id := range []string{"here", "shifted", "left", "never"} {
		mustPutDevice(t, db, apnsDevice(br.ID, id))
	}
	for id, p := range map[string]hotzone.Position{"here": south, "shifted": north, "left": far} {
		if err := db.RecordPosition(ctx, br.ID, id, p, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.FlushPositions(ctx); err != nil {
		t.Fatal(err)
	}
	// What a lost race between two nodes' flushes leaves in the cell of
	// south, and an entry of a device that is not there at all.
	stale := db.cellKey(br.ID, geo.CellOf(south.Point()))
	if err := db.do(ctx, db.cmd("HSET", []string{stale},
		"shifted", packPos(south), "left", packPos(south), "never", packPos(south), "gone", packPos(south))).Error(); err != nil {
		t.Fatal(err)
	}
	big, err := hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 52.37, Lon: 4.89, RadiusM: 50000}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n := geo.CellsCovering(big.BBox(), maxCells, func(geo.Cell) bool { return true }); n <= maxCells {
		t.Fatalf("the big fence covers %d cells, not more than %d", n, maxCells)
	}
	search := func(what string, want ...string) {
		t.Helper()
		for name, f := range map[string]*geo.Fence{"cells": st.Fence, "all devices": big} {
			ids, err := db.DevicesIn(ctx, br.ID, f, now.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("%s: DevicesIn by %s = %v, want %v", what, name, ids, want)
			}
		}
	}
	search("stale cells", "here", "shifted")
	// The shard's copy of each qualifying position equals the record's.
	for _, id := range []string{"here", "shifted", "left", "never"} {
		sh := db.devShard(br.ID, id)
		kept, err := str(db.do(ctx, db.cmd("HGET", []string{sh + ":q"}, id)))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := str(db.do(ctx, db.cmd("HGET", []string{sh + ":d:" + id}, "qual")))
		if err != nil {
			t.Fatal(err)
		}
		if kept != rec {
			t.Errorf("%s: the shard keeps %q, the record %q", id, kept, rec)
		}
	}
	// Positions written before the shards kept them are read from the
	// records.
	for _, id := range []string{"here", "left"} {
		if err := db.do(ctx, db.cmd("HDEL", []string{db.devShard(br.ID, id) + ":q"}, id)).Error(); err != nil {
			t.Fatal(err)
		}
	}
	search("positions only in the records", "here", "shifted")
	// An erased device is gone from its shard's copy as well.
	if err := db.DeleteDevice(ctx, br.ID, "shifted"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.do(ctx, db.cmd("HEXISTS", []string{db.devShard(br.ID, "shifted") + ":q"}, "shifted")).AsInt64(); err != nil || n != 0 {
		t.Errorf("the erased device is still in its shard's positions (%d, %v)", n, err)
	}
	search("one erased", "here")
}

// testFlushEarly: a node holding flushEarly devices' positions writes
// them at once, however long its FlushInterval; fewer wait for it. db
// flushes every hour; other is another node.
func testFlushEarly(t *testing.T, db, other *DB) {
	ctx := t.Context()
	defer func(n int) { flushEarly = n }(flushEarly)
	flushEarly = 40
	br, _ := brandStore(t, db, "Early")
	if err := other.reloadBrand(ctx, br.ID); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, flushEarly)
	for i := range ids {
		ids[i] = "d" + strconv.Itoa(i)
		mustPutDevice(t, db, apnsDevice(br.ID, ids[i]))
	}
	now := time.Now().UTC()
	place := func(id string) {
		t.Helper()
		if err := db.RecordPosition(ctx, br.ID, id, hotzone.Position{Lat: 52.37, Lon: 4.89, AccuracyM: 5, TS: now}, true); err != nil {
			t.Fatal(err)
		}
	}
	seen := func(id string) bool {
		t.Helper()
		_, pos, err := other.Device(ctx, br.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		return pos != nil && pos.Qualifying != nil
	}
	for _, id := range ids[:len(ids)-1] {
		place(id)
	}
	if seen(ids[0]) {
		t.Fatalf("%d positions held were written before the %dth", len(ids)-1, len(ids))
	}
	place(ids[len(ids)-1])
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		for _, id := range ids {
			if seen(id) {
				n++
			}
		}
		if n == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the %dth position, the other node saw %d of them", len(ids), n)
		}
	}
}

// testFlushDeferred: while a node fans out an event (holds its lease),
// its flush loop holds positions back, and they are still read from
// it; they go out when the fan-out is done, when its lease lapsed, when
// 4 × flushEarly devices are held, or when they were held for holdFor.
// A flush goes in rounds of flushChunk devices and can stop between
// them, the rest staying held. db flushes every hour, early at every
// flushEarly (40) devices, in rounds of 15, and holds for 2 s; other is
// another node.
func testFlushDeferred(t *testing.T, db, other *DB) {
	ctx := t.Context()
	br, st := brandStore(t, db, "Deferred")
	if err := other.reloadBrand(ctx, br.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	n := 0
	place := func(count int) []string {
		t.Helper()
		ids := make([]string, count)
		for i := range ids {
			ids[i] = "d" + strconv.Itoa(n)
			n++
			mustPutDevice(t, db, apnsDevice(br.ID, ids[i]))
		}
		for _, id := range ids {
			if err := db.RecordPosition(ctx, br.ID, id, hotzone.Position{Lat: 52.37, Lon: 4.89, AccuracyM: 5, TS: now}, true); err != nil {
				t.Fatal(err)
			}
		}
		return ids
	}
	seen := func(ids []string) int {
		t.Helper()
		k := 0
		for _, id := range ids {
			_, pos, err := other.Device(ctx, br.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if pos != nil && pos.Qualifying != nil {
				k++
			}
		}
		return k
	}
	held := func(what string, ids []string) {
		t.Helper()
		time.Sleep(300 * time.Millisecond) // a flush that went would be written by now
		if k := seen(ids); k != 0 {
			t.Fatalf("%s: the other node saw %d of %d positions held back", what, k, len(ids))
		}
		found, err := db.DevicesIn(ctx, br.ID, st.Fence, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if !slices.Contains(found, id) {
				t.Fatalf("%s: the node holding %s does not find it in the fence", what, id)
			}
		}
	}
	written := func(what string, ids []string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			k := seen(ids)
			if k == len(ids) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: 10 s on, the other node saw %d of %d positions", what, k, len(ids))
			}
		}
	}
	lease := func(ev string, d time.Duration) {
		t.Helper()
		if ok, err := db.LeaseFanOut(ctx, br.ID, ev, "node", time.Now(), d); err != nil || !ok {
			t.Fatalf("LeaseFanOut(%s) = %v, %v", ev, ok, err)
		}
	}
	done := func(ev string) {
		t.Helper()
		if err := db.FanOutDone(ctx, br.ID, ev); err != nil {
			t.Fatal(err)
		}
	}

	lease("ev1", time.Minute)
	first := place(flushEarly)
	held("fanning out", first)
	done("ev1")
	written("fan-out done", first)

	lease("ev2", time.Minute)
	many := place(4*flushEarly - 1)
	held("fanning out, fewer than 4 × flushEarly held", many)
	many = append(many, place(1)...)
	written("4 × flushEarly held", many)
	done("ev2")

	// heldThenWritten: positions placed under a lease of d are held,
	// and written by the next early flush once wait has passed.
	heldThenWritten := func(what, ev string, d, wait time.Duration) {
		t.Helper()
		lease(ev, d)
		ids := place(flushEarly)
		held(what+": not yet", ids)
		time.Sleep(wait)
		ids = append(ids, place(flushEarly)...) // the next early flush
		written(what, ids)
	}
	heldThenWritten("the lease lapsed", "ev3", time.Second, time.Second)
	heldThenWritten("held for holdFor", "ev4", time.Minute, db.holdFor)
	done("ev4")

	// A flush stopped after its first round wrote flushChunk devices;
	// the rest are held, and written by the next.
	lease("ev5", time.Minute)
	last := place(flushEarly)
	held("fanning out again", last)
	rounds := 0
	if err := db.flushHeld(ctx, func() bool { rounds++; return rounds > 1 }); err != nil {
		t.Fatal(err)
	}
	if k := seen(last); k != flushChunk {
		t.Fatalf("a flush stopped after one round wrote %d positions; want %d", k, flushChunk)
	}
	if got := db.pos.size(); got != len(last)-flushChunk {
		t.Fatalf("after one round %d positions are held; want %d", got, len(last)-flushChunk)
	}
	if err := db.FlushPositions(ctx); err != nil {
		t.Fatal(err)
	}
	if k := seen(last); k != len(last) {
		t.Fatalf("after a full flush the other node saw %d of %d", k, len(last))
	}
}

// testSearchWhileFlushing: a fence search that runs while a flush
// writes positions finds every device in the fence, whether the flush
// ends before the search reads the cells, while it confirms what it
// read, or after. Some devices stay in the fence, so that the search
// has records to confirm; the others come in from far away each round,
// so only the flush or what the node holds can show them in the fence.
func testSearchWhileFlushing(t *testing.T, db *DB) {
	ctx := t.Context()
	br, st := brandStore(t, db, "Searched")
	ids := make([]string, 2500)
	for i := range ids {
		ids[i] = "d" + strconv.Itoa(i)
		mustPutDevice(t, db, apnsDevice(br.ID, ids[i]))
	}
	stay, movers := ids[:2000], ids[2000:]
	start := time.Now().UTC()
	place := func(ids []string, lat float64, ts time.Time) {
		t.Helper()
		for _, id := range ids {
			if err := db.RecordPosition(ctx, br.ID, id, hotzone.Position{Lat: lat, Lon: 4.89, AccuracyM: 5, TS: ts}, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	place(stay, 52.3705, start)
	for round := range 30 {
		ts := start.Add(time.Duration(2*round+1) * time.Millisecond)
		place(movers, 48.85, ts) // Paris
		if err := db.FlushPositions(ctx); err != nil {
			t.Fatal(err)
		}
		place(movers, 52.3695, ts.Add(time.Millisecond))
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := db.FlushPositions(ctx); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(time.Duration(round%10) * time.Millisecond / 2)
		found, err := db.DevicesIn(ctx, br.ID, st.Fence, start)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != len(ids) {
			t.Fatalf("round %d: a search during a flush found %d of %d devices", round, len(found), len(ids))
		}
	}
}
