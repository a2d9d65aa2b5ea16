package view

import (
	"fmt"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestEventsCountsNeverStepBack: counts stored by later writes win
// whatever order they reach the view in, and every change wakes the
// store's watchers.
func TestEventsCountsNeverStepBack(t *testing.T) {
	e := NewEvents()
	ev := hotzone.Event{ID: "e1", BrandID: "b", StoreID: "s", Status: hotzone.EventLive}
	ch := e.Changed("b", "s")
	e.Start(ev, hotzone.Counts{})
	if !closed(ch) {
		t.Fatal("a start did not wake the store's watchers")
	}
	queued := hotzone.Counts{DevicesInFence: 1, Queued: 1}
	sent := hotzone.Counts{DevicesInFence: 1, Sent: 1}
	ch = e.Changed("b", "s")
	e.SetCounts("e1", sent, 2) // the later write arrives first
	e.SetCounts("e1", queued, 1)
	if _, c, _ := e.Live("b", "s"); c != sent {
		t.Fatalf("counts = %+v, want the later write's %+v", c, sent)
	}
	if !closed(ch) {
		t.Fatal("a counts change did not wake the store's watchers")
	}
	ch = e.Changed("b", "s")
	e.SetCounts("e1", sent, 3) // the same counts again: nothing to tell
	if closed(ch) {
		t.Fatal("unchanged counts woke the watchers")
	}
	e.SetCounts("other", sent, 4) // not live: ignored
	e.End(ev)
	if _, _, ok := e.Live("b", "s"); ok || !closed(ch) {
		t.Fatalf("after End: live %v, watchers woken %v", ok, closed(ch))
	}
	if _, _, ok := e.Get("e1"); ok || e.Len() != 0 {
		t.Fatal("an ended event is still in the view")
	}
	ch = e.Changed("b", "s")
	e.Signal("b", "s")
	if !closed(ch) {
		t.Fatal("Signal did not wake the watchers")
	}
}

func TestKeys(t *testing.T) {
	ks := NewKeys()
	op1 := &hotzone.Key{Hash: hotzone.HashKey("hzo_1"), Kind: hotzone.KindOperator}
	op2 := &hotzone.Key{Hash: hotzone.HashKey("hzo_2"), Kind: hotzone.KindOperator}
	mgr := &hotzone.Key{Hash: hotzone.HashKey("hzm_1"), Kind: hotzone.KindManager, BrandID: "b", StoreID: "s"}
	ks.Put(op1)
	ks.Put(mgr)
	ks.Put(op2)
	if _, ok := ks.Lookup("hzo_1"); ok {
		t.Error("a second operator key left the first valid")
	}
	if k, ok := ks.Lookup("hzo_2"); !ok || k != op2 {
		t.Error("the new operator key does not work")
	}
	if _, ok := ks.Lookup(""); ok {
		t.Error("an empty secret matched")
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 500, time.UTC)
	ks.Touch(mgr, now)
	touched := ks.TakeTouched()
	if len(touched) != 1 || !touched[0].LastUsedAt.Equal(now.Truncate(time.Second)) {
		t.Fatalf("touched = %+v", touched)
	}
	if len(ks.TakeTouched()) != 0 {
		t.Fatal("TakeTouched handed a key out twice")
	}
	ks.Retouch(touched)
	if len(ks.TakeTouched()) != 1 {
		t.Fatal("Retouch did not put the key back")
	}
	if gone := ks.Delete(mgr.Hash); len(gone) != 1 || ks.Active(mgr) {
		t.Fatal("a deleted key is still active")
	}
	ks.Touch(mgr, now.Add(time.Hour))
	if len(ks.TakeTouched()) != 0 {
		t.Fatal("a deleted key was touched")
	}
}

func TestStores(t *testing.T) {
	s := NewStores()
	mk := func(id, name string, lat float64, tags ...string) hotzone.Store {
		st := hotzone.Store{ID: id, BrandID: "b", Name: name, Tags: tags, Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: lat, Lon: 0, RadiusM: 100}}}
		st.Fence, _ = st.Spec.Build()
		return st
	}
	s.Put("b", mk("a", "A", 0, "x"), mk("c", "C", 1), mk("b", "B", 2, "x"))
	if hits := s.Match("b", geo.Point{Lat: 1, Lon: 0}, nil); len(hits) != 1 || hits[0] != (geo.Hit{ID: "c", Label: "C"}) {
		t.Fatalf("Match = %v", hits)
	}
	if hits := s.Match("other", geo.Point{Lat: 1, Lon: 0}, nil); len(hits) != 0 {
		t.Fatalf("another brand's fences matched: %v", hits)
	}
	page, more := s.List("b", hotzone.StoreQuery{Limit: 2})
	if len(page) != 2 || page[0].ID != "a" || page[1].ID != "b" || !more {
		t.Fatalf("first page = %v more %v", page, more)
	}
	page, more = s.List("b", hotzone.StoreQuery{After: "b", Limit: 2})
	if len(page) != 1 || page[0].ID != "c" || more {
		t.Fatalf("last page = %v more %v", page, more)
	}
	if page, _ := s.List("b", hotzone.StoreQuery{Tag: "x"}); len(page) != 2 {
		t.Fatalf("tagged = %v", page)
	}
	s.Put("b", mk("c", "C moved", 3))
	if hits := s.Match("b", geo.Point{Lat: 1, Lon: 0}, nil); len(hits) != 0 {
		t.Fatalf("a moved fence still matches where it was: %v", hits)
	}
	s.Delete("b", "a")
	if s.Has("b", "a") || s.Len() != 2 {
		t.Fatalf("after Delete: has %v, len %d", s.Has("b", "a"), s.Len())
	}
}

// TestKeysRecent: a secret found once is found again from the recent
// table, and no change to the table leaves a key findable that is gone:
// a deleted key, an operator key replaced, a secret that differs in one
// byte.
func TestKeysRecent(t *testing.T) {
	ks := NewKeys()
	app := &hotzone.Key{Hash: hotzone.HashKey("hza_secret_1"), Kind: hotzone.KindApp, BrandID: "b"}
	op := &hotzone.Key{Hash: hotzone.HashKey("hzo_secret_1"), Kind: hotzone.KindOperator}
	ks.Put(app)
	ks.Put(op)
	for range 3 {
		if k, ok := ks.Lookup("hza_secret_1"); !ok || k != app {
			t.Fatal("the app key is not found")
		}
		if k, ok := ks.Lookup("hzo_secret_1"); !ok || k != op {
			t.Fatal("the operator key is not found")
		}
	}
	if m := ks.recent.Load(); m == nil || len(*m) != 2 {
		t.Fatalf("recent holds %v, want both secrets", m)
	}
	if _, ok := ks.Lookup("hza_secret_2"); ok {
		t.Fatal("a secret one byte off was accepted")
	}
	ks.Delete(app.Hash)
	if _, ok := ks.Lookup("hza_secret_1"); ok {
		t.Fatal("a deleted key is still found")
	}
	ks.Put(&hotzone.Key{Hash: hotzone.HashKey("hzo_secret_2"), Kind: hotzone.KindOperator})
	if _, ok := ks.Lookup("hzo_secret_1"); ok {
		t.Fatal("a replaced operator key is still found")
	}
	if _, ok := ks.Lookup("hzo_secret_2"); !ok {
		t.Fatal("the new operator key is not found")
	}
}

// TestKeysRecentBounded: recent stops growing at recentMax, and keys
// past it are still found (by their hash).
func TestKeysRecentBounded(t *testing.T) {
	ks := NewKeys()
	n := recentMax + 10
	for i := range n {
		ks.Put(&hotzone.Key{Hash: hotzone.HashKey(fmt.Sprintf("hza_%d", i)), Kind: hotzone.KindApp, BrandID: "b"})
	}
	for i := range n {
		if _, ok := ks.Lookup(fmt.Sprintf("hza_%d", i)); !ok {
			t.Fatalf("key %d not found", i)
		}
	}
	if m := ks.recent.Load(); m == nil || len(*m) != recentMax {
		t.Fatalf("recent holds %d secrets, want %d", len(*ks.recent.Load()), recentMax)
	}
}
