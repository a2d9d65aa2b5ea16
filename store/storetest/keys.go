package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// testOperatorKey: the first start generates an operator key once; later
// starts use the stored hash; a key from the environment replaces it.
func testOperatorKey(t *testing.T, open Opener) {
	e := newEnv(t, open)
	gen, err := e.s.EnsureOperatorKey(e.ctx, "")
	if err != nil || !strings.HasPrefix(gen, hotzone.KindOperator.Prefix()) {
		t.Fatalf("EnsureOperatorKey(\"\") on the first start = %q, %v; want a new %s key", gen, err, hotzone.KindOperator.Prefix())
	}
	e.wantKey(gen, hotzone.KindOperator, "")
	if again, err := e.s.EnsureOperatorKey(e.ctx, ""); err != nil || again != "" {
		t.Errorf("EnsureOperatorKey(\"\") a second time = %q, %v; want nothing generated", again, err)
	}
	e.wantKey(gen, hotzone.KindOperator, "")

	e.restart()
	if again, err := e.s.EnsureOperatorKey(e.ctx, ""); err != nil || again != "" {
		t.Errorf("EnsureOperatorKey(\"\") after a restart = %q, %v; want the stored key kept", again, err)
	}
	e.wantKey(gen, hotzone.KindOperator, "")

	const fromEnv = "hzo_from-the-environment"
	if got, err := e.s.EnsureOperatorKey(e.ctx, fromEnv); err != nil || got != "" {
		t.Errorf("EnsureOperatorKey(env) = %q, %v; want nothing generated", got, err)
	}
	e.wantKey(fromEnv, hotzone.KindOperator, "")
	e.wantNoKey(gen, "the generated operator key after the environment's replaced it")

	// The environment's key is stored: a later start without one keeps it.
	e.restart()
	if again, err := e.s.EnsureOperatorKey(e.ctx, ""); err != nil || again != "" {
		t.Errorf("EnsureOperatorKey(\"\") after the environment's key = %q, %v", again, err)
	}
	e.wantKey(fromEnv, hotzone.KindOperator, "")
	e.wantNoKey(gen, "the generated operator key after a restart")
	e.wantNoKey("hzo_never-issued", "an unknown key")
	e.wantNoKey("", "the empty key")
}

// wantKey checks that secret authenticates as a key of kind and brand.
func (e *env) wantKey(secret string, kind hotzone.KeyKind, brandID string) *hotzone.Key {
	e.t.Helper()
	k, err := e.s.Authenticate(e.ctx, secret)
	if err != nil || k == nil || k.Kind != kind || k.BrandID != brandID || k.Hash != hotzone.HashKey(secret) {
		e.t.Errorf("Authenticate(%.8s…) = %+v, %v; want a %s key of brand %q", secret, k, err, kind, brandID)
		return nil
	}
	if active, err := e.s.KeyActive(e.ctx, k); err != nil || !active {
		e.t.Errorf("KeyActive(%s key) = %v, %v; want true", kind, active, err)
	}
	return k
}

func (e *env) wantNoKey(secret, what string) {
	e.t.Helper()
	if k, err := e.s.Authenticate(e.ctx, secret); !errors.Is(err, hotzone.ErrUnauthorized) {
		e.t.Errorf("Authenticate(%s) = %+v, %v; want ErrUnauthorized", what, k, err)
	}
}

// testManagerKeys: manager keys are issued per store, listed oldest
// first, and revoked by id: revocation stops them at once and wakes the
// store's watchers.
func testManagerKeys(t *testing.T, open Opener) {
	e := newEnv(t, open)
	b := e.newBrand("b")
	e.putStore(circleStore(b.ID, "s", placeA))
	e.putStore(circleStore(b.ID, "s2", placeB))

	label := "front desk"
	k1, secret1, err := e.s.CreateManagerKey(e.ctx, b.ID, "s", &label)
	if err != nil {
		t.Fatalf("CreateManagerKey: %v", err)
	}
	if !strings.HasPrefix(secret1, hotzone.KindManager.Prefix()) || k1.ID == "" || k1.Kind != hotzone.KindManager ||
		k1.BrandID != b.ID || k1.StoreID != "s" || k1.Label == nil || *k1.Label != label || !k1.CreatedAt.Equal(e.now()) ||
		k1.Hash != hotzone.HashKey(secret1) {
		t.Errorf("CreateManagerKey = %+v, %.8s…; want a labelled manager key of store s created now", k1, secret1)
	}
	e.clock.Advance(time.Second)
	k2, secret2, err := e.s.CreateManagerKey(e.ctx, b.ID, "s", nil)
	if err != nil {
		t.Fatalf("CreateManagerKey: %v", err)
	}
	if _, _, err := e.s.CreateManagerKey(e.ctx, b.ID, "s2", nil); err != nil {
		t.Fatalf("CreateManagerKey(s2): %v", err)
	}
	_, _, err = e.s.CreateManagerKey(e.ctx, b.ID, "nope", nil)
	e.wantNotFound(err, "CreateManagerKey for an unknown store")

	mk1 := e.wantKey(secret1, hotzone.KindManager, b.ID)
	mk2 := e.wantKey(secret2, hotzone.KindManager, b.ID)
	if mk1 == nil || mk2 == nil {
		t.FailNow()
	}
	if mk1.StoreID != "s" || mk1.ID != k1.ID {
		t.Errorf("Authenticate(manager key) = store %q id %q; want store s id %s", mk1.StoreID, mk1.ID, k1.ID)
	}
	e.wantManagerKeys(b.ID, "s", k1.ID, k2.ID)

	// A use is noted (written behind, but visible at once on this node).
	e.clock.Advance(time.Minute)
	usedAt := e.now()
	if err := e.s.TouchKey(e.ctx, mk2); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	e.wantLastUsed(b.ID, "s", k2.ID, usedAt)

	ch, err := e.s.Changed(e.ctx, b.ID, "s")
	if err != nil {
		t.Fatalf("Changed: %v", err)
	}
	err = e.s.DeleteManagerKey(e.ctx, b.ID, k1.ID)
	if err != nil {
		t.Fatalf("DeleteManagerKey: %v", err)
	}
	waitClosed(t, ch, "a manager key of the store was revoked")
	e.wantNoKey(secret1, "a revoked manager key")
	if active, err := e.s.KeyActive(e.ctx, mk1); err != nil || active {
		t.Errorf("KeyActive(revoked key) = %v, %v; want false", active, err)
	}
	e.wantKey(secret2, hotzone.KindManager, b.ID)
	e.wantManagerKeys(b.ID, "s", k2.ID)
	e.wantNotFound(e.s.DeleteManagerKey(e.ctx, b.ID, k1.ID), "DeleteManagerKey of a revoked key")
	e.wantNotFound(e.s.DeleteManagerKey(e.ctx, b.ID, "nope"), "DeleteManagerKey of an unknown key")
	_, err = e.s.ManagerKeys(e.ctx, b.ID, "nope")
	e.wantNotFound(err, "ManagerKeys of an unknown store")

	// Revocation and the last use are kept.
	e.restart()
	e.wantNoKey(secret1, "a revoked manager key after a restart")
	e.wantKey(secret2, hotzone.KindManager, b.ID)
	e.wantManagerKeys(b.ID, "s", k2.ID)
	e.wantLastUsed(b.ID, "s", k2.ID, usedAt)
}

// wantLastUsed checks a manager key's last use, which is kept to the
// second.
func (e *env) wantLastUsed(brandID, storeID, keyID string, at time.Time) {
	e.t.Helper()
	keys, err := e.s.ManagerKeys(e.ctx, brandID, storeID)
	if err != nil {
		e.t.Fatalf("ManagerKeys(%s): %v", storeID, err)
	}
	for _, k := range keys {
		if k.ID == keyID {
			if used := k.LastUsedAt; used.After(at) || at.Sub(used) >= time.Second {
				e.t.Errorf("last_used_at of %s = %v, want %v (to the second)", keyID, used, at)
			}
			return
		}
	}
	e.t.Errorf("ManagerKeys(%s) has no key %s", storeID, keyID)
}

// wantManagerKeys checks a store's manager keys, oldest first.
func (e *env) wantManagerKeys(brandID, storeID string, want ...string) {
	e.t.Helper()
	keys, err := e.s.ManagerKeys(e.ctx, brandID, storeID)
	if err != nil {
		e.t.Fatalf("ManagerKeys(%s): %v", storeID, err)
	}
	got := make([]string, len(keys))
	for i, k := range keys {
		got[i] = k.ID
		if k.Kind != hotzone.KindManager || k.StoreID != storeID || k.BrandID != brandID {
			e.t.Errorf("ManagerKeys(%s)[%d] = %+v", storeID, i, k)
		}
	}
	if !slices.Equal(got, want) {
		e.t.Errorf("ManagerKeys(%s) = %v, want %v (oldest first)", storeID, got, want)
	}
}
