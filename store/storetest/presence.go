package storetest

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// enter is an UpdatePresence fn that opens a visit at storeID at now.
func enter(storeID string, now time.Time) func(*hotzone.Presence) bool {
	return func(p *hotzone.Presence) bool {
		if _, ok := p.Visit(storeID); ok {
			return false
		}
		p.Visits = append(p.Visits, hotzone.Visit{StoreID: storeID, EnteredAt: now, SeenAt: now})
		p.AsOf = now
		return true
	}
}

// leaveAll is an UpdatePresence fn that ends every visit.
func leaveAll(p *hotzone.Presence) bool {
	if len(p.Visits) == 0 {
		return false
	}
	p.Visits = nil
	return true
}

// testPresence: a device's presence is what the last update that changed
// it stored, durably; an fn that changes nothing stores nothing; an
// unknown device is ErrNotFound; erasure takes it; the store's fences
// around a point come with their distances.
func testPresence(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "a", placeA))
	e.putStore(circleStore(b.ID, "b", placeB))
	ids := e.putDevices(b.ID, "d", 3)
	now := e.now()

	if _, err := e.s.UpdatePresence(e.ctx, b.ID, "nobody", enter("a", now)); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("UpdatePresence of an unknown device: %v, want ErrNotFound", err)
	}
	if _, err := e.s.UpdatePresence(e.ctx, "no-brand", ids[0], enter("a", now)); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("UpdatePresence of an unknown brand: %v, want ErrNotFound", err)
	}
	if e.s.MayBePresent(b.ID, ids[0]) {
		t.Error("MayBePresent of a device that never had a visit: true, want false")
	}
	p, err := e.s.UpdatePresence(e.ctx, b.ID, ids[0], enter("a", now))
	if err != nil || len(p.Visits) != 1 || p.Visits[0].StoreID != "a" || !p.AsOf.Equal(now) {
		t.Fatalf("UpdatePresence entering a = %+v, %v", p, err)
	}
	if !e.s.MayBePresent(b.ID, ids[0]) {
		t.Error("MayBePresent right after a visit opened through the same storage: false")
	}
	later := e.clock.Advance(time.Minute)
	p, err = e.s.UpdatePresence(e.ctx, b.ID, ids[0], enter("b", later))
	if err != nil || len(p.Visits) != 2 {
		t.Fatalf("UpdatePresence entering b too = %+v, %v", p, err)
	}
	// Nothing to change: nothing written, the presence answered as is.
	if p, err = e.s.UpdatePresence(e.ctx, b.ID, ids[0], enter("b", e.clock.Advance(time.Minute))); err != nil || !p.AsOf.Equal(later) {
		t.Errorf("UpdatePresence changing nothing = %+v, %v; want the stored presence, as of %v", p, err, later)
	}
	want := []hotzone.Visit{{StoreID: "a", EnteredAt: now, SeenAt: now}, {StoreID: "b", EnteredAt: later, SeenAt: later}}
	check := func(when string) {
		t.Helper()
		ps, err := e.s.Presences(e.ctx, b.ID, []string{ids[0], ids[1], "nobody"})
		if err != nil || len(ps) != 3 {
			t.Fatalf("%s: Presences = %v, %v", when, ps, err)
		}
		if !visitsEqual(ps[0].Visits, want) || !ps[0].AsOf.Equal(later) {
			t.Errorf("%s: presence of %s = %+v, want visits %+v as of %v", when, ids[0], ps[0], want, later)
		}
		if len(ps[1].Visits) != 0 || len(ps[2].Visits) != 0 {
			t.Errorf("%s: a device without visits, and an unknown one: %+v, %+v; want none", when, ps[1], ps[2])
		}
	}
	check("before a restart")
	e.restart()
	check("after a restart")

	if err := e.s.DeleteDevice(e.ctx, b.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	if ps, err := e.s.Presences(e.ctx, b.ID, ids[:1]); err != nil || len(ps[0].Visits) != 0 {
		t.Errorf("presence of an erased device = %+v, %v; want none", ps, err)
	}
	// Registered again, it starts with no visit.
	e.putDevice(newDevice(b.ID, ids[0]))
	if ps, err := e.s.Presences(e.ctx, b.ID, ids[:1]); err != nil || len(ps[0].Visits) != 0 {
		t.Errorf("presence of an erased device registered again = %+v, %v; want none", ps, err)
	}
	if _, err := e.s.Presences(e.ctx, "no-brand", ids); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("Presences of an unknown brand: %v, want ErrNotFound", err)
	}

	// 150 m north of a's centre: 50 m outside its 100 m circle.
	p150 := geo.Point{Lat: placeA.Lat + 150/(geo.EarthRadiusM*3.141592653589793/180), Lon: placeA.Lon}
	around, err := e.s.FencesAround(e.ctx, b.ID, p150, 60, nil)
	if err != nil || len(around) != 1 || around[0].StoreID != "a" || around[0].OutsideM < 49 || around[0].OutsideM > 51 {
		t.Errorf("FencesAround 50 m outside a, within 60 m = %+v, %v; want a at about 50 m", around, err)
	}
	if around, err := e.s.FencesAround(e.ctx, b.ID, p150, 40, nil); err != nil || len(around) != 0 {
		t.Errorf("FencesAround within 40 m of a point 50 m outside = %+v, %v; want none", around, err)
	}
	if around, err := e.s.FencesAround(e.ctx, b.ID, placeB, 10, nil); err != nil || len(around) != 1 || around[0].StoreID != "b" || around[0].OutsideM != 0 {
		t.Errorf("FencesAround inside b = %+v, %v; want b at 0 m", around, err)
	}
}

// visitsEqual compares visits by value (times by instant).
func visitsEqual(a, b []hotzone.Visit) bool {
	return slices.EqualFunc(a, b, func(x, y hotzone.Visit) bool {
		return x.StoreID == y.StoreID && x.EnteredAt.Equal(y.EnteredAt) && x.SeenAt.Equal(y.SeenAt) &&
			x.Dwelled == y.Dwelled && x.Outside == y.Outside
	})
}

// testPresenceConcurrent: updates of one device never interleave their
// read-modify-write: 20 callers each opening a visit of their own leave
// 20 visits.
func testPresenceConcurrent(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	id := e.putDevices(b.ID, "d", 1)[0]
	now := e.now()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			if _, err := e.s.UpdatePresence(e.ctx, b.ID, id, enter("s"+strconv.Itoa(i), now)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent UpdatePresence: %v", err)
	}
	ps, err := e.s.Presences(e.ctx, b.ID, []string{id})
	if err != nil || len(ps[0].Visits) != 20 {
		t.Errorf("after 20 concurrent updates: %d visits, %v; want 20", len(ps[0].Visits), err)
	}
}

// testLingering: a device with a visit open whose last qualifying ping
// is older than its brand's presence_ttl_s is listed (until its visits
// end); one without visits never is.
func testLingering(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	if _, err := e.s.UpdatePolicy(e.ctx, b.ID, func(p *hotzone.Policy) error { p.PresenceTTLS = 60; return nil }); err != nil {
		t.Fatal(err)
	}
	e.putStore(circleStore(b.ID, "a", placeA))
	ids := e.putDevices(b.ID, "d", 3)
	now := e.now()
	for _, id := range ids[:2] {
		e.ping(b.ID, id, placeA)
		if _, err := e.s.UpdatePresence(e.ctx, b.ID, id, enter("a", now)); err != nil {
			t.Fatal(err)
		}
	}
	e.ping(b.ID, ids[2], placeA) // inside, but no visit recorded
	lingering := func() []string {
		t.Helper()
		refs, err := e.s.Lingering(e.ctx, e.now(), 100)
		if err != nil {
			t.Fatalf("Lingering: %v", err)
		}
		var out []string
		for _, r := range refs {
			if r.BrandID == b.ID {
				out = append(out, r.DeviceID)
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	e.clock.Advance(61 * time.Second)
	if got := lingering(); !slices.Equal(got, ids[:2]) {
		t.Errorf("Lingering after 61 s of silence = %v, want %v", got, ids[:2])
	}
	if _, err := e.s.UpdatePresence(e.ctx, b.ID, ids[0], leaveAll); err != nil {
		t.Fatal(err)
	}
	if got := lingering(); !slices.Equal(got, ids[1:2]) {
		t.Errorf("Lingering after %s's visits ended = %v, want %v", ids[0], got, ids[1:2])
	}
	if refs, err := e.s.Lingering(e.ctx, e.now(), 0); err != nil || len(refs) != 0 {
		t.Errorf("Lingering with limit 0 = %v, %v; want none", refs, err)
	}
}
