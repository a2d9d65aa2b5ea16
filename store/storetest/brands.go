package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// testBrands: a brand is created with its keys and the default policy;
// UpdatePolicy stores what fn made only when fn succeeds.
func testBrands(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("Acme Donuts")
	if b.ID == "" || b.Name != "Acme Donuts" || !b.CreatedAt.Equal(e.now()) {
		t.Errorf("CreateBrand = %+v; want named, created now", b.Brand)
	}
	if !strings.HasPrefix(b.admin, hotzone.KindAdmin.Prefix()) || !strings.HasPrefix(b.app, hotzone.KindApp.Prefix()) {
		t.Errorf("CreateBrand keys = %.4s…, %.4s…; want admin and app prefixes", b.admin, b.app)
	}
	e.wantKey(b.admin, hotzone.KindAdmin, b.ID)
	e.wantKey(b.app, hotzone.KindApp, b.ID)
	other := e.newBrand("Other")
	if other.ID == b.ID || other.admin == b.admin || other.app == b.app {
		t.Errorf("two brands share an id or a key: %s, %s", b.ID, other.ID)
	}
	got, err := e.s.Brand(e.ctx, b.ID)
	if err != nil {
		t.Fatalf("Brand: %v", err)
	}
	sameJSON(t, "Brand", got, b.Brand)
	e.wantPolicy(b.ID, hotzone.DefaultPolicy())

	want := hotzone.DefaultPolicy()
	want.DailyCap, want.QuietHours = 5, &hotzone.QuietHours{Start: "22:00", End: "07:00"}
	p, err := e.s.UpdatePolicy(e.ctx, b.ID, func(p *hotzone.Policy) error {
		p.DailyCap, p.QuietHours = 5, &hotzone.QuietHours{Start: "22:00", End: "07:00"}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdatePolicy: %v", err)
	}
	sameJSON(t, "UpdatePolicy's answer", p, want)
	e.wantPolicy(b.ID, want)
	e.wantPolicy(other.ID, hotzone.DefaultPolicy())

	// A failing fn stores nothing, even what it changed in place.
	errNo := errors.New("no")
	_, err = e.s.UpdatePolicy(e.ctx, b.ID, func(p *hotzone.Policy) error {
		p.DailyCap = 99
		p.QuietHours.Start = "01:00"
		return errNo
	})
	if !errors.Is(err, errNo) {
		t.Errorf("UpdatePolicy with a failing fn = %v, want fn's error", err)
	}
	e.wantPolicy(b.ID, want)

	e.restart()
	got, err = e.s.Brand(e.ctx, b.ID)
	if err != nil {
		t.Fatalf("Brand after a restart: %v", err)
	}
	sameJSON(t, "Brand after a restart", got, b.Brand)
	e.wantPolicy(b.ID, want)
	e.wantKey(b.admin, hotzone.KindAdmin, b.ID)
	e.wantKey(b.app, hotzone.KindApp, b.ID)
}

func (e *env) wantPolicy(brandID string, want hotzone.Policy) {
	e.t.Helper()
	p, err := e.s.Policy(e.ctx, brandID)
	if err != nil {
		e.t.Fatalf("Policy: %v", err)
	}
	sameJSON(e.t, "Policy", p, want)
}

// testPolicyConcurrentUpdates: concurrent read-modify-writes of one
// brand's policy never interleave, so none is lost.
func testPolicyConcurrentUpdates(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	const writers = 20
	base := hotzone.DefaultPolicy().MinIntervalS
	seen := make([]int, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			p, err := e.s.UpdatePolicy(e.ctx, b.ID, func(p *hotzone.Policy) error {
				p.MinIntervalS++
				return nil
			})
			seen[i], errs[i] = p.MinIntervalS, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("UpdatePolicy: %v", err)
	}
	p, err := e.s.Policy(e.ctx, b.ID)
	if err != nil || p.MinIntervalS != base+writers {
		t.Errorf("after %d concurrent increments min_interval_s = %d, %v; want %d", writers, p.MinIntervalS, err, base+writers)
	}
	// Each update saw the one before it: the answers are all different.
	slices.Sort(seen)
	for i, v := range seen {
		if v != base+1+i {
			t.Fatalf("UpdatePolicy answers %v; want each of %d..%d once", seen, base+1, base+writers)
		}
	}
}

// testStores: PutStore creates or replaces (keeping created_at), the
// list pages by id and filters by tag, and FencesAt follows every
// change.
func testStores(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	created := e.now()
	st, isNew, err := e.s.PutStore(e.ctx, circleStore(b.ID, "s", placeA, "downtown"))
	if err != nil || !isNew {
		t.Fatalf("PutStore(new) = created %v, %v", isNew, err)
	}
	if st.BrandID != b.ID || !st.CreatedAt.Equal(created) || !st.UpdatedAt.Equal(created) || st.BBox != st.Fence.BBox() {
		t.Errorf("PutStore(new) = %+v; want created and updated now, bbox of the fence", st)
	}
	e.wantStore(st)
	e.wantFences(b.ID, placeA, "s")

	// Replaced: renamed and moved.
	e.clock.Advance(time.Hour)
	moved := circleStore(b.ID, "s", placeB)
	moved.Name = "Moved"
	st, isNew, err = e.s.PutStore(e.ctx, moved)
	if err != nil || isNew {
		t.Fatalf("PutStore(existing) = created %v, %v; want replaced", isNew, err)
	}
	if !st.CreatedAt.Equal(created) || !st.UpdatedAt.Equal(e.now()) || st.Name != "Moved" || len(st.Tags) != 0 {
		t.Errorf("PutStore(existing) = %+v; want created_at kept, updated now, renamed, untagged", st)
	}
	e.wantStore(st)
	e.wantFences(b.ID, placeA)
	e.wantFences(b.ID, placeB, "s")

	// A polygon fence keeps its geometry.
	poly := hotzone.Store{ID: "poly", BrandID: b.ID, Name: "Poly", Timezone: "Europe/Paris", Tags: []string{"mall"},
		Spec: hotzone.FenceSpec{Polygon: []byte(`{"type":"Polygon","coordinates":[[[2.195,0.995],[2.205,0.995],[2.205,1.005],[2.195,1.005],[2.195,0.995]]]}`)}}
	if poly.Fence, err = poly.Spec.Build(); err != nil {
		t.Fatal(err)
	}
	e.wantStore(e.putStore(poly))
	e.wantFences(b.ID, placeC, "poly")
	e.wantFences(b.ID, away(placeC))

	// Two fences over one place both match.
	e.putStore(circleStore(b.ID, "twin", placeB, "mall"))
	e.wantFences(b.ID, placeB, "s", "twin")

	// Imported together; one replaces an existing store.
	imp := []hotzone.Store{circleStore(b.ID, "a1", away(placeA), "mall"), circleStore(b.ID, "a2", away(placeA)), circleStore(b.ID, "twin", placeA, "mall")}
	e.clock.Advance(time.Hour)
	nNew, nUpd, err := e.s.ImportStores(e.ctx, b.ID, imp)
	if err != nil || nNew != 2 || nUpd != 1 {
		t.Errorf("ImportStores = %d created, %d updated, %v; want 2, 1", nNew, nUpd, err)
	}
	e.wantFences(b.ID, away(placeA), "a1", "a2")
	e.wantFences(b.ID, placeA, "twin")
	e.wantFences(b.ID, placeB, "s")
	if tw, err := e.s.Store(e.ctx, b.ID, "twin"); err != nil || tw.CreatedAt.Equal(e.now()) || !tw.UpdatedAt.Equal(e.now()) {
		t.Errorf("an imported store that existed = %+v, %v; want created_at kept", tw, err)
	}

	all := []string{"a1", "a2", "poly", "s", "twin"}
	cases := []struct {
		name string
		q    hotzone.StoreQuery
		want []string
		more bool
	}{
		{"all", hotzone.StoreQuery{}, all, false},
		{"first page", hotzone.StoreQuery{Limit: 2}, all[:2], true},
		{"second page", hotzone.StoreQuery{After: "a2", Limit: 2}, all[2:4], true},
		{"last page", hotzone.StoreQuery{After: "s", Limit: 2}, all[4:], false},
		{"exact page", hotzone.StoreQuery{After: "a2", Limit: 3}, all[2:], false},
		{"after an id that is not a store", hotzone.StoreQuery{After: "b"}, all[2:], false},
		{"tag", hotzone.StoreQuery{Tag: "mall"}, []string{"a1", "poly", "twin"}, false},
		{"tag, paged", hotzone.StoreQuery{Tag: "mall", Limit: 1, After: "a1"}, []string{"poly"}, true},
		{"unknown tag", hotzone.StoreQuery{Tag: "nope"}, nil, false},
	}
	check := func() {
		for _, tc := range cases {
			sts, more, err := e.s.Stores(e.ctx, b.ID, tc.q)
			got := make([]string, len(sts))
			for i, s := range sts {
				got[i] = s.ID
			}
			if err != nil || !slices.Equal(got, tc.want) || more != tc.more {
				t.Errorf("Stores(%s %+v) = %v more %v, %v; want %v more %v", tc.name, tc.q, got, more, err, tc.want, tc.more)
			}
		}
	}
	check()
	before, _, _ := e.s.Stores(e.ctx, b.ID, hotzone.StoreQuery{})

	e.restart()
	check()
	after, _, err := e.s.Stores(e.ctx, b.ID, hotzone.StoreQuery{})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "stores after a restart", after, before)
	e.wantFences(b.ID, placeB, "s")
	e.wantFences(b.ID, placeC, "poly")
	e.wantFences(b.ID, away(placeA), "a1", "a2")
}

// wantStore checks that Store answers st as stored, with its fence.
func (e *env) wantStore(st hotzone.Store) {
	e.t.Helper()
	got, err := e.s.Store(e.ctx, st.BrandID, st.ID)
	if err != nil {
		e.t.Fatalf("Store(%s): %v", st.ID, err)
	}
	sameJSON(e.t, "Store("+st.ID+")", got, st)
	if got.Fence == nil || got.BrandID != st.BrandID {
		e.t.Errorf("Store(%s) has fence %v, brand %q", st.ID, got.Fence, got.BrandID)
	}
}

// wantFences checks the stores FencesAt finds at p, and that each hit
// is labelled with its store's name (the ping answer shows it).
func (e *env) wantFences(brandID string, p geo.Point, want ...string) {
	e.t.Helper()
	hits, err := e.s.FencesAt(e.ctx, brandID, p, nil)
	if err != nil {
		e.t.Fatalf("FencesAt: %v", err)
	}
	got := make([]string, len(hits))
	for i, h := range hits {
		got[i] = h.ID
		st, err := e.s.Store(e.ctx, brandID, h.ID)
		if err != nil || h.Label != st.Name {
			e.t.Errorf("FencesAt hit %+v: store %+v, %v; want labelled with the store's name", h, st.Name, err)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		e.t.Errorf("FencesAt(%v) = %v, want %v", p, got, want)
	}
}

// testDeleteStore: deleting a store ends its live event (kept in the
// history, its queued notifications expired), revokes its manager keys
// and removes it from lists and fences.
func testDeleteStore(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putStore(circleStore(b.ID, "keep", placeB))
	e.putDevice(newDevice(b.ID, "d"))
	ev := e.startEvent(b.ID, "s")
	e.queue(ev, "d")
	_, gone, err := e.s.CreateManagerKey(e.ctx, b.ID, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, kept, err := e.s.CreateManagerKey(e.ctx, b.ID, "keep", nil)
	if err != nil {
		t.Fatal(err)
	}
	goneKey := e.wantKey(gone, hotzone.KindManager, b.ID)
	ch, err := e.s.Changed(e.ctx, b.ID, "s")
	if err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(time.Minute)
	if err := e.s.DeleteStore(e.ctx, b.ID, "s"); err != nil {
		t.Fatalf("DeleteStore: %v", err)
	}
	waitClosed(t, ch, "the store was deleted")
	check := func() {
		t.Helper()
		_, err := e.s.Store(e.ctx, b.ID, "s")
		e.wantNotFound(err, "Store of a deleted store")
		sts, _, err := e.s.Stores(e.ctx, b.ID, hotzone.StoreQuery{})
		if err != nil || len(sts) != 1 || sts[0].ID != "keep" {
			t.Errorf("Stores after DeleteStore = %v, %v; want only keep", sts, err)
		}
		e.wantFences(b.ID, placeA)
		e.wantNoKey(gone, "a manager key of a deleted store")
		if goneKey != nil {
			if active, err := e.s.KeyActive(e.ctx, goneKey); err != nil || active {
				t.Errorf("KeyActive(key of a deleted store) = %v, %v; want false", active, err)
			}
		}
		e.wantKey(kept, hotzone.KindManager, b.ID)
		_, err = e.s.ManagerKeys(e.ctx, b.ID, "s")
		e.wantNotFound(err, "ManagerKeys of a deleted store")
		_, _, err = e.s.LiveEvent(e.ctx, b.ID, "s")
		e.wantNotFound(err, "LiveEvent of a deleted store")
		ended, c, err := e.s.Event(e.ctx, b.ID, ev.ID)
		if err != nil || ended.Status != hotzone.EventEnded || c != (hotzone.Counts{DevicesInFence: 1, Expired: 1}) {
			t.Errorf("Event of the deleted store's live event = %s %+v, %v; want ended with its queued notification expired", ended.Status, c, err)
		}
		if n := e.eventLog(ev); len(n) != 1 || n[0].Status != hotzone.StatusExpired {
			t.Errorf("log of the deleted store's event = %+v; want one expired entry", n)
		}
		list, _, err := e.s.Events(e.ctx, b.ID, hotzone.EventQuery{StoreID: "s"})
		if err != nil || len(list) != 1 || list[0].Event.ID != ev.ID {
			t.Errorf("Events(store s) = %+v, %v; want the ended event kept", list, err)
		}
		if got := e.claim(apnsLane(b.ID), 10, time.Minute); len(got) != 0 {
			t.Errorf("Claim handed out %d notifications of a deleted store's event", len(got))
		}
		_, _, _, err = e.s.StartEvent(e.ctx, e.event(b.ID, "s"), "")
		e.wantNotFound(err, "StartEvent at a deleted store")
		_, _, err = e.s.CreateManagerKey(e.ctx, b.ID, "s", nil)
		e.wantNotFound(err, "CreateManagerKey for a deleted store")
		e.wantNotFound(e.s.DeleteStore(e.ctx, b.ID, "s"), "DeleteStore of a deleted store")
		if out := e.consider(ev, queueAll, "d"); out[0] != (hotzone.Outcome{DeviceID: "d"}) {
			t.Errorf("Consider for the deleted store's event = %+v; want an empty outcome", out[0])
		}
	}
	check()
	e.restart()
	check()
	if _, isNew, err := e.s.PutStore(e.ctx, circleStore(b.ID, "s", placeA)); err != nil || !isNew {
		t.Errorf("PutStore of a deleted store's id = created %v, %v; want created", isNew, err)
	}
}
