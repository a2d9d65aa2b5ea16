package devices

import (
	"slices"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

func TestTable(t *testing.T) {
	tab := New()
	tab.AddBrand("b")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tab.Put(hotzone.Device{ID: "d", BrandID: "b", Token: "tok"})
	tab.Put(hotzone.Device{ID: "e", BrandID: "b"})
	if tab.Record("b", "nobody", hotzone.Position{TS: t0}, true) || tab.Record("other", "d", hotzone.Position{TS: t0}, true) {
		t.Fatal("an unknown device took a position")
	}
	at := func(lat float64, ts time.Time) hotzone.Position {
		return hotzone.Position{Lat: lat, Lon: 0, AccuracyM: 5, TS: ts}
	}
	tab.Record("b", "d", at(1, t0), true)
	tab.Record("b", "d", at(9, t0.Add(-time.Minute)), true) // older: kept out
	tab.Record("b", "d", at(2, t0.Add(time.Second)), false) // newer, not qualifying
	_, pos, ok := tab.Get("b", "d")
	if !ok || pos.Last.Lat != 2 || pos.Qualifying == nil || pos.Qualifying.Lat != 1 {
		t.Fatalf("position = %+v", pos)
	}
	fence := &geo.Fence{Circle: &geo.Circle{Center: geo.Point{Lat: 1, Lon: 0}, RadiusM: 100}}
	if ids := tab.Within("b", fence, t0); !slices.Equal(ids, []string{"d"}) {
		t.Fatalf("Within = %v", ids)
	}
	if ids := tab.Within("b", fence, t0.Add(time.Second)); len(ids) != 0 {
		t.Fatalf("Within since after the ping = %v", ids)
	}
	dirty := tab.TakeDirty()
	if len(dirty) != 1 || dirty[0].DeviceID != "d" || dirty[0].Position.Last.Lat != 2 {
		t.Fatalf("dirty = %+v", dirty)
	}
	if len(tab.TakeDirty()) != 0 {
		t.Fatal("a position was handed out twice")
	}
	tab.Redirty(dirty)
	if len(tab.TakeDirty()) != 1 {
		t.Fatal("Redirty did not put it back")
	}
	// A token cleared on disk is cleared here only if it is still the one.
	tab.ClearToken("b", "d", hotzone.Device{Token: "other"})
	if d, _, _ := tab.Get("b", "d"); d.Token != "tok" {
		t.Fatal("another token's clearing cleared this one")
	}
	tab.ClearToken("b", "d", hotzone.Device{Token: "tok"})
	if d, _, _ := tab.Get("b", "d"); d.Token != "" {
		t.Fatal("the token was not cleared")
	}
	// Erasure: forbidden, then allowed back, then removed.
	if _, ok := tab.Forbid("b", "d"); !ok || tab.Record("b", "d", at(1, t0.Add(time.Hour)), true) {
		t.Fatal("a device being erased took a position")
	}
	if regs := tab.Registrations("b", []string{"d", "e", "x"}); regs[0].ID != "" || regs[1].ID != "e" || regs[2].ID != "" {
		t.Fatalf("Registrations = %+v", regs)
	}
	tab.Allow("b", "d")
	if _, _, ok := tab.Get("b", "d"); !ok {
		t.Fatal("Allow did not bring the device back")
	}
	tab.Forbid("b", "d")
	tab.Remove("b", "d")
	if _, _, ok := tab.Get("b", "d"); ok || tab.Len() != 1 {
		t.Fatal("a removed device is still there")
	}
	if ids := tab.Within("b", fence, time.Time{}); len(ids) != 0 {
		t.Fatalf("a removed device is still in the position index: %v", ids)
	}
}
