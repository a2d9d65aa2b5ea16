package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// The webhooks and their delivery queue:
//
//	webhooks    brand\0hook -> the webhook, sealed (its secret with it)
//	hook_dlv    hook\0delivery -> the delivery (JSON)
//	hook_due    hook\0due(8 bytes, ms)\0delivery -> "": the deliveries
//	            that may be handed out, by when they are due
//	hook_head   hook\0orderkey -> the pending delivery of that key in
//	            hook_due; the others of the key wait in hook_wait
//	hook_wait   hook\0orderkey\0delivery -> "", in emission order
//
// Only the oldest pending delivery of an order key is ever due, so a
// device's happenings reach a receiver in order.
var (
	bucketHooks    = []byte("webhooks")
	bucketHookDlv  = []byte("hook_dlv")
	bucketHookDue  = []byte("hook_due")
	bucketHookHead = []byte("hook_head")
	bucketHookWait = []byte("hook_wait")
	hookBuckets    = [][]byte{bucketHooks, bucketHookDlv, bucketHookDue, bucketHookHead, bucketHookWait}
)

// hooks holds every webhook in memory (a brand has a handful) and the
// leases of claimed deliveries, which, like the outbox's, need not
// survive a restart: after one, everything pending is due.
type hooks struct {
	mu      sync.Mutex
	byBrand map[string]map[string]*hotzone.Webhook
	leases  map[string]hookLease // delivery id -> its lease
	// listen is, per brand, the types its active webhooks take, rebuilt
	// under mu on every change and read without a lock: every ping asks.
	listen atomic.Pointer[map[string]uint16]
}

// relisten rebuilds listen; mu is held.
func (h *hooks) relisten() {
	m := make(map[string]uint16, len(h.byBrand))
	for brandID, ws := range h.byBrand {
		for _, w := range ws {
			if w.Status == hotzone.WebhookActive {
				m[brandID] |= w.Bits()
			}
		}
	}
	h.listen.Store(&m)
}

type hookLease struct {
	hook, claim string
	end         time.Time
}

var errNoWebhook = notFound("webhook")

func (db *DB) loadWebhooks(tx *bbolt.Tx) error {
	db.hooks.byBrand = map[string]map[string]*hotzone.Webhook{}
	db.hooks.leases = map[string]hookLease{}
	defer db.hooks.relisten()
	return tx.Bucket(bucketHooks).ForEach(func(k, v []byte) error {
		var w hotzone.Webhook
		if err := db.box.Open(k, v, &w); err != nil {
			return fmt.Errorf("store: webhook %q: %w", k, err)
		}
		db.hooks.put(&w)
		return nil
	})
}

func (h *hooks) put(w *hotzone.Webhook) {
	m := h.byBrand[w.BrandID]
	if m == nil {
		m = map[string]*hotzone.Webhook{}
		h.byBrand[w.BrandID] = m
	}
	m[w.ID] = w
}

// CreateWebhook implements hotzone.Webhooks.
func (db *DB) CreateWebhook(_ context.Context, w hotzone.Webhook) error {
	if db.brandLock(w.BrandID) == nil {
		return notFound("brand")
	}
	w.Status = hotzone.WebhookActive
	w.Events = slices.Clone(w.Events)
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return db.putWebhook(tx, &w) }); err != nil {
		return fmt.Errorf("store: webhook: %w", err)
	}
	db.hooks.put(&w)
	db.hooks.relisten()
	return nil
}

func (db *DB) putWebhook(tx *bbolt.Tx, w *hotzone.Webhook) error {
	k := joinKey(w.BrandID, w.ID)
	sealed, err := db.box.Seal(k, w)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketHooks).Put(k, sealed)
}

// Webhook implements hotzone.Webhooks from memory.
func (db *DB) Webhook(_ context.Context, brandID, id string) (hotzone.Webhook, error) {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	w := db.hooks.byBrand[brandID][id]
	if w == nil {
		return hotzone.Webhook{}, errNoWebhook
	}
	return cloneWebhook(w), nil
}

func cloneWebhook(w *hotzone.Webhook) hotzone.Webhook {
	c := *w
	c.Events = slices.Clone(w.Events)
	return c
}

// Webhooks implements hotzone.Webhooks from memory.
func (db *DB) Webhooks(_ context.Context, brandID string, q hotzone.PageQuery) ([]hotzone.Webhook, bool, error) {
	if db.brandLock(brandID) == nil {
		return nil, false, notFound("brand")
	}
	db.hooks.mu.Lock()
	var all []hotzone.Webhook
	for _, w := range db.hooks.byBrand[brandID] {
		if w.ID > q.After {
			all = append(all, cloneWebhook(w))
		}
	}
	db.hooks.mu.Unlock()
	slices.SortFunc(all, func(a, b hotzone.Webhook) int { return strings.Compare(a.ID, b.ID) })
	if q.Limit > 0 && len(all) > q.Limit {
		return all[:q.Limit], true, nil
	}
	return all, false, nil
}

// DeleteWebhook implements hotzone.Webhooks: the webhook and every key
// of its queue, in one transaction.
func (db *DB) DeleteWebhook(_ context.Context, brandID, id string) error {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	if db.hooks.byBrand[brandID][id] == nil {
		return errNoWebhook
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketHooks).Delete(joinKey(brandID, id)); err != nil {
			return err
		}
		prefix := append([]byte(id), 0)
		for _, name := range hookBuckets[1:] {
			b := tx.Bucket(name)
			c := b.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete webhook: %w", err)
	}
	delete(db.hooks.byBrand[brandID], id)
	db.hooks.relisten()
	for d, l := range db.hooks.leases {
		if l.hook == id {
			delete(db.hooks.leases, d)
		}
	}
	return nil
}

// SetWebhookStatus implements hotzone.Webhooks.
func (db *DB) SetWebhookStatus(_ context.Context, brandID, id string, s hotzone.WebhookStatus) (hotzone.Webhook, error) {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	cur := db.hooks.byBrand[brandID][id]
	if cur == nil {
		return hotzone.Webhook{}, errNoWebhook
	}
	next := cloneWebhook(cur)
	next.Status, next.FailingSince = s, time.Time{}
	if err := db.bolt.Update(func(tx *bbolt.Tx) error { return db.putWebhook(tx, &next) }); err != nil {
		return hotzone.Webhook{}, fmt.Errorf("store: webhook: %w", err)
	}
	*cur = next
	db.hooks.relisten()
	return cloneWebhook(cur), nil
}

// dueKey is a delivery's key in hook_due.
func dueKey(hook string, due time.Time, id string) []byte {
	k := append([]byte(hook), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(max(due.UnixMilli(), 0)))
	k = append(k, 0)
	return append(k, id...)
}

// enqueue writes a new pending delivery: due now if it is the first
// pending of its order key, else waiting behind it.
func enqueue(tx *bbolt.Tx, d *hotzone.HookDelivery) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketHookDlv).Put(joinKey(d.WebhookID, d.ID), raw); err != nil {
		return err
	}
	if key := d.Happening.OrderKey; key != "" {
		hk := joinKey(d.WebhookID, key)
		heads := tx.Bucket(bucketHookHead)
		if heads.Get(hk) != nil {
			return tx.Bucket(bucketHookWait).Put(joinKey(d.WebhookID, key, d.ID), nil)
		}
		if err := heads.Put(hk, []byte(d.ID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketHookDue).Put(dueKey(d.WebhookID, d.NextAttempt, d.ID), nil)
}

// newDelivery is a pending delivery of h to w, due at now.
func newDelivery(w *hotzone.Webhook, h hotzone.Happening, now time.Time) hotzone.HookDelivery {
	return hotzone.HookDelivery{ID: hotzone.NewID(now), WebhookID: w.ID, BrandID: w.BrandID, CreatedAt: now, Happening: h,
		Status: hotzone.DeliveryPending, NextAttempt: now}
}

// Emit implements hotzone.Webhooks: one transaction for every delivery
// (sharing its disk sync with other small writes).
func (db *DB) Emit(_ context.Context, brandID string, hs []hotzone.Happening) error {
	db.hooks.mu.Lock()
	var targets []*hotzone.Webhook
	for _, w := range db.hooks.byBrand[brandID] {
		if w.Status == hotzone.WebhookActive {
			c := cloneWebhook(w)
			targets = append(targets, &c)
		}
	}
	db.hooks.mu.Unlock()
	now := db.now()
	var ds []hotzone.HookDelivery
	for _, h := range hs {
		for _, w := range targets {
			if w.Subscribed(h.Type) {
				ds = append(ds, newDelivery(w, h, now))
			}
		}
	}
	if len(ds) == 0 {
		return nil
	}
	err := db.group(func(tx *bbolt.Tx) error {
		for i := range ds {
			if err := enqueue(tx, &ds[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: emit: %w", err)
	}
	return nil
}

// EmitTo implements hotzone.Webhooks.
func (db *DB) EmitTo(_ context.Context, brandID, webhookID string, h hotzone.Happening) (hotzone.HookDelivery, error) {
	db.hooks.mu.Lock()
	w := db.hooks.byBrand[brandID][webhookID]
	var c hotzone.Webhook
	if w != nil {
		c = cloneWebhook(w)
	}
	db.hooks.mu.Unlock()
	if w == nil {
		return hotzone.HookDelivery{}, errNoWebhook
	}
	d := newDelivery(&c, h, db.now())
	if err := db.group(func(tx *bbolt.Tx) error { return enqueue(tx, &d) }); err != nil {
		return hotzone.HookDelivery{}, fmt.Errorf("store: emit: %w", err)
	}
	return d, nil
}

// ClaimDeliveries implements hotzone.Webhooks: due keys are read in one
// read transaction, leases kept in memory.
func (db *DB) ClaimDeliveries(_ context.Context, now time.Time, limit, perHook int, lease time.Duration) ([]hotzone.HookDelivery, error) {
	if limit <= 0 || perHook <= 0 {
		return nil, nil
	}
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	inflight := map[string]int{}
	for id, l := range db.hooks.leases {
		if l.end.After(now) {
			inflight[l.hook]++
		} else {
			delete(db.hooks.leases, id)
		}
	}
	var out []hotzone.HookDelivery
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		due, dlv := tx.Bucket(bucketHookDue).Cursor(), tx.Bucket(bucketHookDlv)
		for _, ws := range db.hooks.byBrand {
			for _, w := range ws {
				if w.Status != hotzone.WebhookActive {
					continue
				}
				prefix := append([]byte(w.ID), 0)
				for k, _ := due.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = due.Next() {
					if len(out) >= limit || inflight[w.ID] >= perHook {
						break
					}
					rest := k[len(prefix):]
					if len(rest) < 9 || int64(binary.BigEndian.Uint64(rest)) > now.UnixMilli() {
						break
					}
					id := string(rest[9:])
					if _, leased := db.hooks.leases[id]; leased {
						continue
					}
					var d hotzone.HookDelivery
					if err := json.Unmarshal(dlv.Get(joinKey(w.ID, id)), &d); err != nil {
						return fmt.Errorf("delivery %s: %w", id, err)
					}
					d.Claim = hotzone.NewID(now)
					out = append(out, d)
					inflight[w.ID]++
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	for _, d := range out {
		db.hooks.leases[d.ID] = hookLease{hook: d.WebhookID, claim: d.Claim, end: now.Add(lease)}
	}
	return out, nil
}

// RecordAttempt implements hotzone.Webhooks.
func (db *DB) RecordAttempt(_ context.Context, r hotzone.AttemptResult) error {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	if l, ok := db.hooks.leases[r.DeliveryID]; !ok || l.claim != r.Claim {
		return nil // the lease passed: another attempt has it
	}
	w := db.hooks.byBrand[r.BrandID][r.WebhookID]
	if w == nil {
		delete(db.hooks.leases, r.DeliveryID)
		return nil
	}
	next := cloneWebhook(w)
	switch {
	case r.Status == hotzone.DeliveryDelivered:
		next.FailingSince = time.Time{}
	case next.FailingSince.IsZero():
		next.FailingSince = r.At
	case r.At.Sub(next.FailingSince) >= hotzone.DisableAfter:
		next.Status = hotzone.WebhookDisabled
	}
	hookChanged := !next.FailingSince.Equal(w.FailingSince) || next.Status != w.Status
	err := db.group(func(tx *bbolt.Tx) error {
		dlv := tx.Bucket(bucketHookDlv)
		raw := dlv.Get(joinKey(r.WebhookID, r.DeliveryID))
		if raw == nil {
			return nil
		}
		var d hotzone.HookDelivery
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		if d.Status != hotzone.DeliveryPending {
			return nil
		}
		if err := tx.Bucket(bucketHookDue).Delete(dueKey(d.WebhookID, d.NextAttempt, d.ID)); err != nil {
			return err
		}
		d.Attempts++
		d.LastAttemptAt, d.LastCode, d.LastError, d.Status = r.At, r.Code, r.Error, r.Status
		switch r.Status {
		case hotzone.DeliveryPending:
			d.NextAttempt = r.Next
			if err := tx.Bucket(bucketHookDue).Put(dueKey(d.WebhookID, d.NextAttempt, d.ID), nil); err != nil {
				return err
			}
		case hotzone.DeliveryDelivered:
			d.DeliveredAt = r.At
			fallthrough
		default:
			if err := advance(tx, &d, r.At); err != nil {
				return err
			}
		}
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if err := dlv.Put(joinKey(d.WebhookID, d.ID), b); err != nil {
			return err
		}
		if hookChanged {
			return db.putWebhook(tx, &next)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record attempt: %w", err)
	}
	delete(db.hooks.leases, r.DeliveryID)
	if hookChanged {
		*w = next
		db.hooks.relisten()
	}
	return nil
}

// advance hands an order key on after its head d ended: the next
// waiting delivery of the key becomes due at now.
func advance(tx *bbolt.Tx, d *hotzone.HookDelivery, now time.Time) error {
	key := d.Happening.OrderKey
	if key == "" {
		return nil
	}
	heads, wait := tx.Bucket(bucketHookHead), tx.Bucket(bucketHookWait)
	hk := joinKey(d.WebhookID, key)
	if string(heads.Get(hk)) != d.ID {
		return nil
	}
	prefix := joinKey(d.WebhookID, key, "")
	k, _ := wait.Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return heads.Delete(hk)
	}
	nextID := string(k[len(prefix):])
	k = bytes.Clone(k)
	if err := wait.Delete(k); err != nil {
		return err
	}
	if err := heads.Put(hk, []byte(nextID)); err != nil {
		return err
	}
	dlv := tx.Bucket(bucketHookDlv)
	var n hotzone.HookDelivery
	if err := json.Unmarshal(dlv.Get(joinKey(d.WebhookID, nextID)), &n); err != nil {
		return err
	}
	if n.NextAttempt.Before(now) {
		n.NextAttempt = now
		b, err := json.Marshal(n)
		if err != nil {
			return err
		}
		if err := dlv.Put(joinKey(d.WebhookID, nextID), b); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketHookDue).Put(dueKey(d.WebhookID, n.NextAttempt, nextID), nil)
}

// Deliveries implements hotzone.Webhooks: newest first, by id.
func (db *DB) Deliveries(_ context.Context, brandID, webhookID string, q hotzone.DeliveryQuery) ([]hotzone.HookDelivery, bool, error) {
	db.hooks.mu.Lock()
	known := db.hooks.byBrand[brandID][webhookID] != nil
	db.hooks.mu.Unlock()
	if !known {
		return nil, false, errNoWebhook
	}
	var out []hotzone.HookDelivery
	more := false
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketHookDlv).Cursor()
		prefix := append([]byte(webhookID), 0)
		var k, v []byte
		if q.Before != "" {
			if k, _ = c.Seek(joinKey(webhookID, q.Before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			// The last key of the prefix: seek past it, step back.
			if k, _ = c.Seek(append([]byte(webhookID), 1)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			var d hotzone.HookDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if q.Status != "" && d.Status != q.Status {
				continue
			}
			if q.Limit > 0 && len(out) == q.Limit {
				more = true
				return nil
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: deliveries: %w", err)
	}
	return out, more, nil
}

// Delivery implements hotzone.Webhooks.
func (db *DB) Delivery(_ context.Context, brandID, webhookID, deliveryID string) (hotzone.HookDelivery, error) {
	db.hooks.mu.Lock()
	known := db.hooks.byBrand[brandID][webhookID] != nil
	db.hooks.mu.Unlock()
	if !known {
		return hotzone.HookDelivery{}, errNoWebhook
	}
	var d hotzone.HookDelivery
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketHookDlv).Get(joinKey(webhookID, deliveryID))
		if raw == nil {
			return notFound("delivery")
		}
		return json.Unmarshal(raw, &d)
	})
	return d, err
}

// Listens implements hotzone.Webhooks from memory, without a lock.
func (db *DB) Listens(brandID string, t hotzone.HookType) bool {
	m := db.hooks.listen.Load()
	return m != nil && (*m)[brandID]&t.Bit() != 0
}
