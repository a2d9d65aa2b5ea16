package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testPresets: a brand's saved audiences and templates are kept by kind
// and id, replaced in place (keeping when they were created), listed by
// id in pages, kept apart from other kinds and brands, durable across a
// restart, and deleted.
func testPresets(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	other := e.newBrand("o")
	put := func(brandID string, kind hotzone.PresetKind, id, body string) (hotzone.Preset, bool) {
		t.Helper()
		p, created, err := e.s.PutPreset(e.ctx, hotzone.Preset{Kind: kind, BrandID: brandID, ID: id, Body: json.RawMessage(body)})
		if err != nil {
			t.Fatalf("PutPreset(%s %s): %v", kind, id, err)
		}
		return p, created
	}
	first, created := put(b.ID, hotzone.PresetAudience, "gold", `{"any":["loyalty:gold"]}`)
	if !created || !first.CreatedAt.Equal(e.now()) {
		t.Errorf("a new preset: created %v at %v, want created now", created, first.CreatedAt)
	}
	put(b.ID, hotzone.PresetAudience, "commuters", `{"any":["persona:commuter"]}`)
	put(b.ID, hotzone.PresetTemplate, "gold", `{"title":"Hot","body":"Now"}`)
	put(other.ID, hotzone.PresetAudience, "theirs", `{}`)
	e.clock.Advance(time.Minute)
	again, created := put(b.ID, hotzone.PresetAudience, "gold", `{"any":["loyalty:gold","loyalty:silver"]}`)
	if created || !again.CreatedAt.Equal(first.CreatedAt) || !again.UpdatedAt.Equal(e.now()) {
		t.Errorf("a replaced preset: created %v, at %v / %v; want kept creation, updated now", created, again.CreatedAt, again.UpdatedAt)
	}
	check := func(when string) {
		t.Helper()
		p, err := e.s.Preset(e.ctx, b.ID, hotzone.PresetAudience, "gold")
		if err != nil || string(p.Body) != `{"any":["loyalty:gold","loyalty:silver"]}` || !p.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("%s: Preset(gold) = %s %v, %v", when, p.Body, p.CreatedAt, err)
		}
		page, more, err := e.s.Presets(e.ctx, b.ID, hotzone.PresetAudience, hotzone.PageQuery{Limit: 1})
		if err != nil || len(page) != 1 || page[0].ID != "commuters" || !more {
			t.Errorf("%s: a page of one audience = %v, more %v, %v; want commuters and more", when, page, more, err)
		}
		page, more, err = e.s.Presets(e.ctx, b.ID, hotzone.PresetAudience, hotzone.PageQuery{After: "commuters"})
		if err != nil || len(page) != 1 || page[0].ID != "gold" || more {
			t.Errorf("%s: audiences after commuters = %v, more %v, %v; want gold alone", when, page, more, err)
		}
		if ts, _, err := e.s.Presets(e.ctx, b.ID, hotzone.PresetTemplate, hotzone.PageQuery{}); err != nil || len(ts) != 1 {
			t.Errorf("%s: templates = %v, %v; want the one", when, ts, err)
		}
		if _, err := e.s.Preset(e.ctx, other.ID, hotzone.PresetAudience, "gold"); !errors.Is(err, hotzone.ErrNotFound) {
			t.Errorf("%s: another brand's preset: %v, want ErrNotFound", when, err)
		}
	}
	check("before a restart")
	e.restart()
	check("after a restart")
	if err := e.s.DeletePreset(e.ctx, b.ID, hotzone.PresetAudience, "gold"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Preset(e.ctx, b.ID, hotzone.PresetAudience, "gold"); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("a deleted preset: %v, want ErrNotFound", err)
	}
	if err := e.s.DeletePreset(e.ctx, b.ID, hotzone.PresetAudience, "gold"); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
	if _, err := e.s.Preset(e.ctx, b.ID, hotzone.PresetTemplate, "gold"); err != nil {
		t.Errorf("the template of the same id: %v, want it kept", err)
	}
	if _, _, err := e.s.PutPreset(e.ctx, hotzone.Preset{Kind: hotzone.PresetAudience, BrandID: "no-brand", ID: "x", Body: json.RawMessage(`{}`)}); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("PutPreset of an unknown brand: %v, want ErrNotFound", err)
	}
}
