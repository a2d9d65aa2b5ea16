package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

func (e *env) newWebhook(brandID, id string, types ...hotzone.HookType) hotzone.Webhook {
	e.t.Helper()
	w := hotzone.Webhook{ID: id, BrandID: brandID, URL: "https://example.com/" + id, Events: types,
		Secret: "whsec_" + id, CreatedAt: e.now()}
	if err := e.s.CreateWebhook(e.ctx, w); err != nil {
		e.t.Fatalf("CreateWebhook(%s): %v", id, err)
	}
	w.Status = hotzone.WebhookActive
	return w
}

func happening(id string, t hotzone.HookType, device string, at time.Time) hotzone.Happening {
	return hotzone.Happening{ID: id, Type: t, CreatedAt: at, OrderKey: device, Data: json.RawMessage(`{"device_id":"` + device + `"}`)}
}

func (e *env) emit(brandID string, hs ...hotzone.Happening) {
	e.t.Helper()
	if err := e.s.Emit(e.ctx, brandID, hs); err != nil {
		e.t.Fatalf("Emit: %v", err)
	}
}

// claimHooks claims what is due now and answers it as "hook/happening"
// in a stable order, with the deliveries.
func (e *env) claimHooks(limit, perHook int) ([]string, []hotzone.HookDelivery) {
	e.t.Helper()
	ds, err := e.s.ClaimDeliveries(e.ctx, e.now(), limit, perHook, time.Minute)
	if err != nil {
		e.t.Fatalf("ClaimDeliveries: %v", err)
	}
	slices.SortFunc(ds, func(a, b hotzone.HookDelivery) int {
		if a.WebhookID != b.WebhookID {
			return compareStrings(a.WebhookID, b.WebhookID)
		}
		return compareStrings(a.ID, b.ID)
	})
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.WebhookID + "/" + d.Happening.ID
	}
	return names, ds
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *env) attempt(d hotzone.HookDelivery, s hotzone.DeliveryStatus, next time.Time, code int) {
	e.t.Helper()
	err := e.s.RecordAttempt(e.ctx, hotzone.AttemptResult{BrandID: d.BrandID, WebhookID: d.WebhookID, DeliveryID: d.ID,
		Claim: d.Claim, At: e.now(), Status: s, Next: next, Code: code})
	if err != nil {
		e.t.Fatalf("RecordAttempt: %v", err)
	}
}

// testWebhooks: webhooks are kept with their secrets, listed by id in
// pages, survive a restart, and go with their deliveries.
func testWebhooks(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	other := e.newBrand("o")
	if err := e.s.CreateWebhook(e.ctx, hotzone.Webhook{ID: "w", BrandID: "no-brand", URL: "https://x", Secret: "s"}); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("CreateWebhook of an unknown brand: %v, want ErrNotFound", err)
	}
	w1 := e.newWebhook(b.ID, "w1", hotzone.HookEntered)
	w2 := e.newWebhook(b.ID, "w2", hotzone.HookEntered, hotzone.HookExited)
	e.newWebhook(other.ID, "w3", hotzone.HookEntered)
	check := func(when string) {
		t.Helper()
		got, err := e.s.Webhook(e.ctx, b.ID, "w2")
		if err != nil || got.URL != w2.URL || got.Secret != w2.Secret || !slices.Equal(got.Events, w2.Events) ||
			got.Status != hotzone.WebhookActive || !got.CreatedAt.Equal(w2.CreatedAt) {
			t.Errorf("%s: Webhook(w2) = %+v, %v; want %+v", when, got, err, w2)
		}
		page, more, err := e.s.Webhooks(e.ctx, b.ID, hotzone.PageQuery{Limit: 1})
		if err != nil || len(page) != 1 || page[0].ID != "w1" || !more {
			t.Errorf("%s: first page of one = %v, more %v, %v; want w1 and more", when, page, more, err)
		}
		page, more, err = e.s.Webhooks(e.ctx, b.ID, hotzone.PageQuery{After: "w1", Limit: 5})
		if err != nil || len(page) != 1 || page[0].ID != "w2" || more {
			t.Errorf("%s: page after w1 = %v, more %v, %v; want w2 alone", when, page, more, err)
		}
		if _, err := e.s.Webhook(e.ctx, other.ID, "w1"); !errors.Is(err, hotzone.ErrNotFound) {
			t.Errorf("%s: another brand's webhook: %v, want ErrNotFound", when, err)
		}
	}
	check("before a restart")
	if !e.s.Listens(b.ID, hotzone.HookExited) || e.s.Listens(b.ID, hotzone.HookDwelled) || e.s.Listens("no-brand", hotzone.HookEntered) {
		t.Error("Listens: want exited (w2) heard, dwelled and an unknown brand's not")
	}
	e.emit(b.ID, happening("h1", hotzone.HookEntered, "d1", e.now()))
	e.restart()
	check("after a restart")
	// The pending deliveries survived too.
	if names, _ := e.claimHooks(10, 10); !slices.Equal(names, []string{"w1/h1", "w2/h1"}) {
		t.Errorf("claimed after a restart: %v, want w1/h1 and w2/h1", names)
	}
	if err := e.s.DeleteWebhook(e.ctx, b.ID, w1.ID); err != nil {
		t.Fatal(err)
	}
	// With no webhook left, nobody listens; w2 comes back, empty.
	if err := e.s.DeleteWebhook(e.ctx, b.ID, w2.ID); err != nil {
		t.Fatal(err)
	}
	if e.s.Listens(b.ID, hotzone.HookEntered) {
		t.Error("Listens(entered) after every webhook of the brand went: true")
	}
	w2 = e.newWebhook(b.ID, "w2", hotzone.HookEntered, hotzone.HookExited)
	e.emit(b.ID, happening("h1", hotzone.HookEntered, "d1", e.now()))
	if _, err := e.s.Webhook(e.ctx, b.ID, w1.ID); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("a deleted webhook: %v, want ErrNotFound", err)
	}
	if _, _, err := e.s.Deliveries(e.ctx, b.ID, w1.ID, hotzone.DeliveryQuery{}); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("a deleted webhook's deliveries: %v, want ErrNotFound", err)
	}
	if err := e.s.DeleteWebhook(e.ctx, b.ID, w1.ID); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
	e.clock.Advance(2 * time.Minute) // past the leases
	if names, _ := e.claimHooks(10, 10); !slices.Equal(names, []string{"w2/h1"}) {
		t.Errorf("claimed after w1 went: %v, want w2/h1 alone", names)
	}
}

// testWebhookQueue: deliveries go to the subscribed webhooks; one device's
// (order key's) go one at a time in emission order, a retry holding the
// next back; a claim holds until recorded or its lease passes; a result
// under a stale claim is dropped; at most perHook are out per webhook.
func testWebhookQueue(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.newWebhook(b.ID, "w1", hotzone.HookEntered)
	e.newWebhook(b.ID, "w2", hotzone.HookEntered, hotzone.HookExited)
	now := e.now()
	e.emit(b.ID, happening("h1", hotzone.HookEntered, "d1", now), happening("h2", hotzone.HookExited, "d1", now),
		happening("h3", hotzone.HookEntered, "d2", now))
	names, ds := e.claimHooks(10, 10)
	if want := []string{"w1/h1", "w1/h3", "w2/h1", "w2/h3"}; !slices.Equal(names, want) {
		t.Fatalf("first claim = %v, want %v (d1's exit waits behind its entry)", names, want)
	}
	if again, _ := e.claimHooks(10, 10); len(again) != 0 {
		t.Errorf("claimed again while leased: %v, want nothing", again)
	}
	byName := map[string]hotzone.HookDelivery{}
	for i, n := range names {
		byName[n] = ds[i]
	}
	// w2's entry of d1 fails and is to be tried in 10 s: d1's exit waits.
	e.attempt(byName["w2/h1"], hotzone.DeliveryPending, e.now().Add(10*time.Second), 500)
	e.attempt(byName["w1/h1"], hotzone.DeliveryDelivered, time.Time{}, 200)
	if got, _ := e.claimHooks(10, 10); len(got) != 0 {
		t.Errorf("claim with a retry not yet due = %v, want nothing", got)
	}
	e.clock.Advance(10 * time.Second)
	names, ds = e.claimHooks(10, 10)
	if !slices.Equal(names, []string{"w2/h1"}) || ds[0].Attempts != 1 || ds[0].LastCode != 500 {
		t.Fatalf("claim when the retry is due = %v (%+v), want w2/h1 after one attempt that got 500", names, ds)
	}
	// A stale claim's result is dropped.
	stale := byName["w2/h1"]
	e.attempt(stale, hotzone.DeliveryDelivered, time.Time{}, 200)
	if d, err := e.s.Delivery(e.ctx, b.ID, "w2", stale.ID); err != nil || d.Status != hotzone.DeliveryPending {
		t.Errorf("after a result under a stale claim: %+v, %v; want still pending", d, err)
	}
	e.attempt(ds[0], hotzone.DeliveryDelivered, time.Time{}, 204)
	names, _ = e.claimHooks(10, 10)
	if !slices.Equal(names, []string{"w2/h2"}) {
		t.Fatalf("claim after d1's entry got through = %v, want w2/h2 (its exit)", names)
	}
	// Not recorded: after the lease it is handed out again, and so are
	// the first claim's d2 entries, never recorded either.
	e.clock.Advance(61 * time.Second)
	if again, _ := e.claimHooks(10, 10); !slices.Equal(again, []string{"w1/h3", "w2/h2", "w2/h3"}) {
		t.Errorf("claim after the leases passed = %v, want w1/h3, w2/h2 and w2/h3 again", again)
	}
	// The log of w2, newest first.
	got, more, err := e.s.Deliveries(e.ctx, b.ID, "w2", hotzone.DeliveryQuery{})
	if err != nil || more || len(got) != 3 {
		t.Fatalf("Deliveries(w2) = %d, more %v, %v; want 3", len(got), more, err)
	}
	if got[0].Happening.ID != "h3" || got[2].Happening.ID != "h1" || got[2].Status != hotzone.DeliveryDelivered ||
		got[2].Attempts != 2 || got[2].LastCode != 204 || got[2].DeliveredAt.IsZero() {
		t.Errorf("Deliveries(w2) = %+v, want h3, h2, h1 with h1 delivered on its second attempt", got)
	}
	page, more, err := e.s.Deliveries(e.ctx, b.ID, "w2", hotzone.DeliveryQuery{Before: got[0].ID, Limit: 1})
	if err != nil || len(page) != 1 || page[0].ID != got[1].ID || !more {
		t.Errorf("a page of one before the newest = %v, more %v, %v; want the second, and more", page, more, err)
	}
	if done, _, err := e.s.Deliveries(e.ctx, b.ID, "w2", hotzone.DeliveryQuery{Status: hotzone.DeliveryDelivered}); err != nil || len(done) != 1 {
		t.Errorf("delivered ones = %v, %v; want h1", done, err)
	}
	if _, err := e.s.Delivery(e.ctx, b.ID, "w2", "nope"); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("an unknown delivery: %v, want ErrNotFound", err)
	}

	// At most perHook out at once per webhook.
	e.clock.Advance(2 * time.Minute)
	for _, d := range func() []hotzone.HookDelivery { _, ds := e.claimHooks(10, 10); return ds }() {
		e.attempt(d, hotzone.DeliveryDelivered, time.Time{}, 200)
	}
	var many []hotzone.Happening
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		many = append(many, happening("m"+id, hotzone.HookEntered, "dev-"+id, e.now()))
	}
	e.emit(b.ID, many...)
	names, ds = e.claimHooks(100, 2)
	if len(names) != 4 {
		t.Fatalf("claim with 2 per webhook = %v, want 2 of each", names)
	}
	if more, _ := e.claimHooks(100, 2); len(more) != 0 {
		t.Errorf("claim with 2 out per webhook = %v, want none", more)
	}
	e.attempt(ds[0], hotzone.DeliveryFailed, time.Time{}, 410)
	if one, _ := e.claimHooks(100, 2); len(one) != 1 {
		t.Errorf("claim after one of them ended = %v, want one more", one)
	}
	// By hand, a delivery to one webhook whatever it subscribes to.
	d, err := e.s.EmitTo(e.ctx, b.ID, "w1", happening("t1", hotzone.HookTest, "", e.now()))
	if err != nil || d.Status != hotzone.DeliveryPending || d.WebhookID != "w1" {
		t.Errorf("EmitTo = %+v, %v; want a pending delivery to w1", d, err)
	}
	if _, err := e.s.EmitTo(e.ctx, b.ID, "nope", happening("t2", hotzone.HookTest, "", e.now())); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("EmitTo an unknown webhook: %v, want ErrNotFound", err)
	}
}

// testWebhookDisable: a webhook failing for DisableAfter without a
// success is disabled: it gets no new deliveries and its pending ones
// wait, until it is turned on again.
func testWebhookDisable(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.newWebhook(b.ID, "w", hotzone.HookEntered)
	e.emit(b.ID, happening("h1", hotzone.HookEntered, "d1", e.now()))
	first := e.now()
	for e.now().Sub(first) <= hotzone.DisableAfter {
		_, ds := e.claimHooks(1, 1)
		if len(ds) != 1 {
			t.Fatalf("at +%v: claimed %d, want the retry", e.now().Sub(first), len(ds))
		}
		e.attempt(ds[0], hotzone.DeliveryPending, e.now().Add(time.Hour), 503)
		w, _ := e.s.Webhook(e.ctx, b.ID, "w")
		if !w.FailingSince.Equal(first) {
			t.Fatalf("failing since %v, want %v", w.FailingSince, first)
		}
		e.clock.Advance(time.Hour)
	}
	w, _ := e.s.Webhook(e.ctx, b.ID, "w")
	if w.Status != hotzone.WebhookDisabled {
		t.Fatalf("after %v of failures: %s, want disabled", hotzone.DisableAfter, w.Status)
	}
	e.emit(b.ID, happening("h2", hotzone.HookEntered, "d2", e.now()))
	if got, _ := e.claimHooks(10, 10); len(got) != 0 {
		t.Errorf("claimed from a disabled webhook: %v", got)
	}
	if ds, _, _ := e.s.Deliveries(e.ctx, b.ID, "w", hotzone.DeliveryQuery{}); len(ds) != 1 {
		t.Errorf("a disabled webhook got %d deliveries, want only the one before", len(ds))
	}
	w, err := e.s.SetWebhookStatus(e.ctx, b.ID, "w", hotzone.WebhookActive)
	if err != nil || w.Status != hotzone.WebhookActive || !w.FailingSince.IsZero() {
		t.Fatalf("turned on = %+v, %v", w, err)
	}
	names, ds := e.claimHooks(10, 10)
	if !slices.Equal(names, []string{"w/h1"}) {
		t.Fatalf("claim once on again = %v, want w/h1", names)
	}
	// A success ends a failing stretch.
	e.attempt(ds[0], hotzone.DeliveryPending, e.now(), 500)
	if w, _ := e.s.Webhook(e.ctx, b.ID, "w"); w.FailingSince.IsZero() {
		t.Error("a failure did not start a failing stretch")
	}
	_, ds = e.claimHooks(10, 10)
	e.attempt(ds[0], hotzone.DeliveryDelivered, time.Time{}, 200)
	if w, _ := e.s.Webhook(e.ctx, b.ID, "w"); !w.FailingSince.IsZero() || w.Status != hotzone.WebhookActive {
		t.Errorf("after a success: %+v, want active and not failing", w)
	}
	if _, err := e.s.SetWebhookStatus(e.ctx, b.ID, "nope", hotzone.WebhookActive); !errors.Is(err, hotzone.ErrNotFound) {
		t.Errorf("SetWebhookStatus of an unknown webhook: %v, want ErrNotFound", err)
	}
}
