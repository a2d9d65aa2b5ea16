package redis

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/storetest"
)

// TestRunIDs: a run's ids sort in the order they were handed out, after
// its member, and before the next run's member; runEntries answers them
// newest first; what is not a run's member stands for itself.
func TestRunIDs(t *testing.T) {
	now := time.Now()
	a, b := newIDRun(now), newIDRun(now)
	var ids []string
	for range 1100 { // past two digits' worth
		ids = append(ids, a.next())
	}
	b.next()
	if !slices.IsSorted(ids) {
		t.Fatal("a run's ids are not in the order they were handed out")
	}
	for _, id := range ids {
		if len(id) != 26 || strings.Trim(id, hotzone.IDAlphabet) != "" || !strings.HasPrefix(id, a.prefix) {
			t.Fatalf("id %q: not 26 of the ids' digits after the run's prefix", id)
		}
	}
	m := a.member()
	if m != a.prefix+"!1100" || !(m < ids[0]) || !(ids[len(ids)-1] < b.member()) {
		t.Fatalf("member %q does not sort before its ids (%s…) and below the next run's (%s)", m, ids[0], b.member())
	}
	got := runEntries(m)
	slices.Reverse(got)
	if !slices.Equal(got, ids) {
		t.Fatal("runEntries does not answer the run's ids, newest first")
	}
	plain := hotzone.NewID(now)
	for _, m := range []string{plain, a.prefix + "!x", a.prefix + "!99999", "short!3", a.prefix + "!-1"} {
		if got := runEntries(m); len(got) != 1 || got[0] != m {
			t.Errorf("runEntries(%q) = %v, want the member itself", m, got)
		}
	}
}

// testRunsInLua: entriesOf in the scripts answers what runEntries does.
func testRunsInLua(t *testing.T, db *DB) {
	s := newScript(entriesLua + `return entriesOf(ARGV[1])`)
	r := newIDRun(time.Now())
	members := []string{hotzone.NewID(time.Now()), r.prefix + "!junk", r.prefix + "!0"}
	for _, n := range []int{1, 2, 31, 32, 33, 1023, 1024, 1025, considerBatch} {
		members = append(members, r.prefix+"!"+strconv.Itoa(n))
	}
	for _, m := range members {
		got, err := strs(db.exec(t.Context(), s, []string{"runs"}, []string{m}))
		if err != nil {
			t.Fatal(err)
		}
		want := runEntries(m)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("entriesOf(%q) = %d ids %.3v…, want %d %.3v…", m, len(got), got, len(want), want)
		}
	}
}

// testLogRuns: entries decided together are indexed as runs, one member
// per shard and call, and every reader of the indexes still sees each
// entry once, in id order: pages of the log (cursors inside runs
// included), one event's log, the attribution's walk, erasure, an
// event's end and pruning, with a hole in a run where a device changed
// while it was decided.
func testLogRuns(t *testing.T, db *DB, clock *storetest.Clock) {
	ctx := t.Context()
	br, st := brandStore(t, db, "Runs")
	// A second store, for a second live event.
	st.ID = "t"
	if _, _, err := db.PutStore(ctx, st); err != nil {
		t.Fatal(err)
	}
	const n = 400
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "r" + strconv.Itoa(i)
		mustPutDevice(t, db, apnsDevice(br.ID, ids[i]))
	}
	queueAll := func(hotzone.Device, []time.Time) string { return "" }
	first := mustStartEvent(t, db, br.ID, clock.Now())
	changed := false
	if _, err := db.Consider(ctx, first, ids[:300], func(d hotzone.Device, _ []time.Time) string {
		if d.ID == "r7" && !changed {
			// Changed while decided: its place in this run stays empty,
			// and it is decided again in a run of its own.
			changed = true
			d := apnsDevice(br.ID, "r7")
			d.Token = "tok-r7-new"
			mustPutDevice(t, db, d)
		}
		if d.ID == "r5" {
			return "quiet_hours"
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	second := hotzone.Event{ID: hotzone.NewID(clock.Now()), BrandID: br.ID, StoreID: "t", Title: "Hot", Body: "Now", StartsAt: clock.Now(), EndsAt: clock.Now().Add(time.Hour)}
	if _, _, _, err := db.StartEvent(ctx, second, ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[300:310] { // runs of one
		considerOne(t, db, second, id, queueAll)
	}
	if _, err := db.Consider(ctx, second, ids[310:], queueAll); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Consider(ctx, first, ids[300:], queueAll); err != nil {
		t.Fatal(err)
	}
	// The layout: far fewer members than entries.
	if members, entries := indexMembers(t, db, br.ID, ":li"), n+(n-300); members >= entries/2 {
		t.Errorf("the log's index holds %d members for %d entries, want runs", members, entries)
	}

	all, more, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{})
	if err != nil || more {
		t.Fatal(more, err)
	}
	checkLog := func(what string, got []hotzone.Notification, want int) {
		t.Helper()
		seen := map[string]bool{}
		for i, e := range got {
			if seen[e.ID] {
				t.Fatalf("%s: %s listed twice", what, e.ID)
			}
			seen[e.ID] = true
			if i > 0 && got[i-1].ID <= e.ID {
				t.Fatalf("%s: %s after %s: not newest first", what, e.ID, got[i-1].ID)
			}
		}
		if len(got) != want {
			t.Fatalf("%s: %d entries, want %d", what, len(got), want)
		}
	}
	checkLog("the log", all, n+n-300)
	// Pages of 7 through the cursor, which mostly falls inside a run.
	var paged []hotzone.Notification
	for before := ""; ; {
		page, more, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{Before: before, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if !more {
			break
		}
		before = page[len(page)-1].ID
	}
	checkLog("the log in pages", paged, len(all))
	if !slices.EqualFunc(paged, all, func(a, b hotzone.Notification) bool { return a.ID == b.ID }) {
		t.Fatal("the log in pages differs from the log in one")
	}
	ofFirst, _, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{EventID: first.ID})
	if err != nil {
		t.Fatal(err)
	}
	checkLog("the first event's log", ofFirst, n)
	mid := ofFirst[150].ID
	rest, _, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{EventID: first.ID, Before: mid})
	if err != nil {
		t.Fatal(err)
	}
	checkLog("the first event's log before "+mid, rest, n-151)
	walked := map[string]int{}
	if err := db.EventLog(ctx, br.ID, first.ID, func(e *hotzone.Notification) error {
		walked[e.DeviceID]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(walked) != n {
		t.Errorf("the event's walk met %d devices, want %d", len(walked), n)
	}
	for id, k := range walked {
		if k != 1 {
			t.Errorf("the event's walk met %s %d times", id, k)
		}
	}

	// Erasing one device of a run leaves the run's others; erasing r7
	// empties its run of one, whose member only the event's pruning can
	// take out of the event's index (nothing is left to name the event).
	for _, id := range []string{"r3", "r7"} {
		if err := db.DeleteDevice(ctx, br.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	ofFirst, _, err = db.Notifications(ctx, br.ID, hotzone.NotificationQuery{EventID: first.ID})
	if err != nil {
		t.Fatal(err)
	}
	checkLog("the first event's log after erasures", ofFirst, n-2)

	// The end expires every queued entry of the event, runs included.
	if _, _, err := db.EndEvent(ctx, br.ID, first.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	_, counts, err := db.Event(ctx, br.ID, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Queued != 0 || counts.Expired != n-3 || counts.Suppressed != 1 {
		t.Errorf("counts after the end: %+v, want %d expired, 1 suppressed", counts, n-3)
	}
	ofFirst, _, err = db.Notifications(ctx, br.ID, hotzone.NotificationQuery{EventID: first.ID, Status: hotzone.StatusExpired})
	if err != nil {
		t.Fatal(err)
	}
	checkLog("the first event's expired entries", ofFirst, n-3)

	// Past the retention: the ended event's entries go, step by small
	// step; of the live event's runs only the queued entries stay, their
	// members with them.
	defer func(k int) { pruneBatch = k }(pruneBatch)
	pruneBatch = 5
	lane := hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}
	var recorded []hotzone.Delivery
	for {
		got, err := db.Claim(ctx, lane, clock.Now(), 50, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			if len(recorded) < 40 {
				recorded = append(recorded, hotzone.Delivery{NotificationID: e.ID, BrandID: e.BrandID, Claim: e.Claim,
					Provider: e.Provider, Status: hotzone.StatusSent, At: clock.Now()})
			}
		}
		if len(got) == 0 {
			break
		}
	}
	if err := db.Record(ctx, recorded); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * 24 * time.Hour)
	if err := db.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	left, _, err := db.Notifications(ctx, br.ID, hotzone.NotificationQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkLog("the log after pruning", left, n-300-len(recorded))
	for _, e := range left {
		if e.EventID != second.ID || e.Status != hotzone.StatusQueued {
			t.Fatalf("after pruning %s is left (%s, %s), want the second event's queued entries alone", e.ID, e.EventID, e.Status)
		}
	}
	for s := range Shards {
		sh := db.shard(br.ID, s)
		if k, err := db.do(ctx, db.cmd("EXISTS", []string{sh + ":le:" + first.ID})).AsInt64(); err != nil || k != 0 {
			t.Fatalf("shard %d still has the pruned event's index (%d, %v)", s, k, err)
		}
	}
}

// testOldestQueued: the oldest-queued index holds a run while any of its
// entries is queued; Stats answers the oldest run's creation time until
// its last entry leaves the queue, sent or expired, and takes the runs
// that left out of the index, also when that takes it several calls.
func testOldestQueued(t *testing.T, db *DB, clock *storetest.Clock) {
	ctx := t.Context()
	defer func(n int) { oldestBudget = n }(oldestBudget)
	oldestBudget = 1 // a call per run to take out
	br, st := brandStore(t, db, "Oldest")
	st.ID = "t"
	if _, _, err := db.PutStore(ctx, st); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = "o" + strconv.Itoa(i)
		mustPutDevice(t, db, apnsDevice(br.ID, ids[i]))
	}
	queueAll := func(hotzone.Device, []time.Time) string { return "" }
	oldest := func(what string, want time.Time) {
		t.Helper()
		s, err := db.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !s.OutboxOldest.Equal(want) {
			t.Fatalf("%s: oldest queued %v, want %v", what, s.OutboxOldest, want)
		}
	}
	members := func() int { return indexMembers(t, db, br.ID, ":oq") }
	t1 := clock.Now().Truncate(time.Millisecond)
	first := mustStartEvent(t, db, br.ID, t1)
	// Two calls: two runs in most shards, to take out one after the
	// other.
	for _, part := range [][]string{ids[:50], ids[50:100]} {
		if _, err := db.Consider(ctx, first, part, queueAll); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	t2 := clock.Now().Truncate(time.Millisecond)
	second := hotzone.Event{ID: hotzone.NewID(t2), BrandID: br.ID, StoreID: "t", Title: "Hot", Body: "Now", StartsAt: t2, EndsAt: t2.Add(time.Hour)}
	if _, _, _, err := db.StartEvent(ctx, second, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Consider(ctx, second, ids[100:], queueAll); err != nil {
		t.Fatal(err)
	}
	oldest("both events queued", t1)
	if k := members(); k > 3*Shards {
		t.Fatalf("the oldest-queued index holds %d members for three calls' runs", k)
	}
	// Send the first event's entries but o42's: the first event's runs
	// are still the oldest.
	lane := hotzone.Lane{BrandID: br.ID, Provider: hotzone.ProviderAPNs}
	var left hotzone.Notification
	for {
		got, err := db.Claim(ctx, lane, clock.Now(), 64, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		var ds []hotzone.Delivery
		for _, n := range got {
			if n.EventID != first.ID {
				continue // left claimed, still queued
			}
			if n.DeviceID == "o42" {
				left = n
				continue
			}
			ds = append(ds, hotzone.Delivery{NotificationID: n.ID, BrandID: n.BrandID, Claim: n.Claim, Provider: n.Provider, Status: hotzone.StatusSent, At: clock.Now()})
		}
		if err := db.Record(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	oldest("all but one of the first event's entries sent", t1)
	if err := db.Record(ctx, []hotzone.Delivery{{NotificationID: left.ID, BrandID: left.BrandID, Claim: left.Claim, Provider: left.Provider, Status: hotzone.StatusSent, At: clock.Now()}}); err != nil {
		t.Fatal(err)
	}
	oldest("the first event's entries all sent", t2)
	// Only the second event's runs are left: one per shard it reached.
	reached := map[int]bool{}
	for _, id := range ids[100:] {
		reached[shardOf(id)] = true
	}
	if k := members(); k != len(reached) {
		t.Errorf("the oldest-queued index holds %d members, want the second event's %d runs", k, len(reached))
	}
	// The end expires the second event's: nothing is queued, and the
	// index is empty.
	if _, _, err := db.EndEvent(ctx, br.ID, second.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	oldest("the second event ended", time.Time{})
	if k := members(); k != 0 {
		t.Errorf("the oldest-queued index still holds %d members with nothing queued", k)
	}
}

// indexMembers counts the members of one index (":li", ":oq") over a
// brand's shards.
func indexMembers(t *testing.T, db *DB, brandID, index string) int {
	t.Helper()
	k := 0
	for s := range Shards {
		c, err := db.do(t.Context(), db.cmd("ZCARD", []string{db.shard(brandID, s) + index})).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		k += int(c)
	}
	return k
}
