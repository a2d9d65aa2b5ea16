package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// A webhook's settings (URL, events, secret: sealed) are a field of the
// brand's {P:b:BRAND}:hooks, loaded into every node's view like the
// credentials. Its state and its delivery queue share a slot of their
// own, {P:w:BRAND:HOOK} (W below), so each step of a delivery is one
// script:
//
//	W:st          hash: status, failing (ms since the first failure
//	              since the last success; absent while it succeeds)
//	W:d           hash: delivery id -> the delivery (JSON)
//	W:ix          the delivery ids (sorted set, score 0: by id)
//	W:due         the deliveries that may be handed out, scored by when
//	              they are due (ms); a claim moves the score to the end
//	              of its lease
//	W:ls          the claimed ones, scored by their lease's end
//	W:cl          hash: id -> the claim it was last handed out under
//	W:head        hash: order key -> its delivery in W:due
//	W:wait:KEY    list: the other pending deliveries of an order key
//	W:wk          the order keys with a list, for deleting them
//
// Only the oldest pending delivery of an order key is ever in W:due, so
// a device's happenings reach a receiver in order.

// hookAD binds a sealed webhook to its brand and id.
func hookAD(brandID, id string) []byte { return []byte("webhook\x00" + brandID + "\x00" + id) }

// wkey is the hash-tagged prefix of a webhook's slot.
func (db *DB) wkey(brandID, hookID string) string {
	return "{" + db.p + ":w:" + brandID + ":" + hookID + "}"
}

var errNoWebhook = notFound("webhook")

// hookState is a webhook's status and failing stretch as stored.
func hookState(w *hotzone.Webhook, vals []string) {
	w.Status = hotzone.WebhookActive
	if len(vals) > 0 && vals[0] != "" {
		w.Status = hotzone.WebhookStatus(vals[0])
	}
	w.FailingSince = time.Time{}
	if len(vals) > 1 && vals[1] != "" {
		if ms, err := strconv.ParseInt(vals[1], 10, 64); err == nil {
			w.FailingSince = time.UnixMilli(ms).UTC()
		}
	}
}

// viewHooks is a brand's webhooks as this node's view has them,
// settings only, by id.
func (db *DB) viewHooks(brandID string) []hotzone.Webhook {
	db.mu.Lock()
	defer db.mu.Unlock()
	st := db.known[brandID]
	if st == nil {
		return nil
	}
	out := make([]hotzone.Webhook, 0, len(st.hooks))
	for _, w := range st.hooks {
		c := *w
		c.Events = slices.Clone(w.Events)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b hotzone.Webhook) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// withState reads the webhooks' status and failing stretch.
func (db *DB) withState(ctx context.Context, ws []hotzone.Webhook) error {
	cmds := make([]valkey.Completed, len(ws))
	for i, w := range ws {
		cmds[i] = db.cmd("HMGET", []string{db.wkey(w.BrandID, w.ID) + ":st"}, "status", "failing")
	}
	rs, err := db.doMulti(ctx, cmds)
	if err != nil {
		return fmt.Errorf("redis: webhook state: %w", err)
	}
	for i, r := range rs {
		vals, err := strs(r)
		if err != nil {
			return err
		}
		hookState(&ws[i], vals)
	}
	return nil
}

// CreateWebhook implements hotzone.Webhooks: the sealed settings in the
// brand's catalog, announced like every catalog change.
func (db *DB) CreateWebhook(ctx context.Context, w hotzone.Webhook) error {
	if _, ok := db.brands.Brand(w.BrandID); !ok {
		return notFound("brand")
	}
	w.Status, w.FailingSince = hotzone.WebhookActive, time.Time{}
	sealed, err := db.box.Seal(hookAD(w.BrandID, w.ID), &w)
	if err != nil {
		return fmt.Errorf("redis: webhook: %w", err)
	}
	if err := db.do(ctx, db.cmd("HSET", []string{db.bkey(w.BrandID, "hooks")}, w.ID, string(sealed))).Error(); err != nil {
		return fmt.Errorf("redis: webhook: %w", err)
	}
	return db.bump(ctx, w.BrandID, partHooks)
}

// Webhook implements hotzone.Webhooks: settings from the view, state
// from its slot.
func (db *DB) Webhook(ctx context.Context, brandID, id string) (hotzone.Webhook, error) {
	for _, w := range db.viewHooks(brandID) {
		if w.ID == id {
			ws := []hotzone.Webhook{w}
			if err := db.withState(ctx, ws); err != nil {
				return hotzone.Webhook{}, err
			}
			return ws[0], nil
		}
	}
	return hotzone.Webhook{}, errNoWebhook
}

// Webhooks implements hotzone.Webhooks.
func (db *DB) Webhooks(ctx context.Context, brandID string, q hotzone.PageQuery) ([]hotzone.Webhook, bool, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, false, notFound("brand")
	}
	var out []hotzone.Webhook
	for _, w := range db.viewHooks(brandID) {
		if w.ID > q.After {
			out = append(out, w)
		}
	}
	more := q.Limit > 0 && len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	if err := db.withState(ctx, out); err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// dropHook deletes a webhook's slot. KEYS[1]: W.
var dropHook = newScript(`
local w = KEYS[1]
for _, k in ipairs(redis.call('SMEMBERS', w .. ':wk')) do redis.call('DEL', w .. ':wait:' .. k) end
redis.call('DEL', w .. ':st', w .. ':d', w .. ':ix', w .. ':due', w .. ':ls', w .. ':cl', w .. ':head', w .. ':wk')
return 1`)

// DeleteWebhook implements hotzone.Webhooks: its settings first (no
// node queues to it once it is out of the views), then its slot.
func (db *DB) DeleteWebhook(ctx context.Context, brandID, id string) error {
	n, err := db.do(ctx, db.cmd("HDEL", []string{db.bkey(brandID, "hooks")}, id)).AsInt64()
	if err != nil {
		return fmt.Errorf("redis: delete webhook: %w", err)
	}
	if n == 0 {
		return errNoWebhook
	}
	if err := db.bump(ctx, brandID, partHooks); err != nil {
		return err
	}
	if err := db.exec(ctx, dropHook, []string{db.wkey(brandID, id)}, nil).Error(); err != nil {
		return fmt.Errorf("redis: delete webhook: %w", err)
	}
	return nil
}

// SetWebhookStatus implements hotzone.Webhooks.
func (db *DB) SetWebhookStatus(ctx context.Context, brandID, id string, s hotzone.WebhookStatus) (hotzone.Webhook, error) {
	w, err := db.Webhook(ctx, brandID, id)
	if err != nil {
		return hotzone.Webhook{}, err
	}
	k := db.wkey(brandID, id) + ":st"
	if _, err := db.doMulti(ctx, []valkey.Completed{db.cmd("HSET", []string{k}, "status", string(s)),
		db.cmd("HDEL", []string{k}, "failing")}); err != nil {
		return hotzone.Webhook{}, fmt.Errorf("redis: webhook status: %w", err)
	}
	db.wait(ctx, db.wkey(brandID, id))
	w.Status, w.FailingSince = s, time.Time{}
	return w, nil
}

// enqueueHook queues deliveries to one webhook. KEYS[1]: W. ARGV[1]:
// "1" to queue only while the webhook is active; then per delivery: id,
// JSON, due (ms), order key. Answers how many it queued.
var enqueueHook = newScript(`
local w = KEYS[1]
if ARGV[1] == '1' and (redis.call('HGET', w .. ':st', 'status') or 'active') ~= 'active' then return 0 end
local n = 0
for i = 2, #ARGV, 4 do
  local id, key = ARGV[i], ARGV[i+3]
  redis.call('HSET', w .. ':d', id, ARGV[i+1])
  redis.call('ZADD', w .. ':ix', 0, id)
  local queued = false
  if key ~= '' then
    if redis.call('HEXISTS', w .. ':head', key) == 1 then
      redis.call('RPUSH', w .. ':wait:' .. key, id)
      redis.call('SADD', w .. ':wk', key)
      queued = true
    else
      redis.call('HSET', w .. ':head', key, id)
    end
  end
  if not queued then redis.call('ZADD', w .. ':due', ARGV[i+2], id) end
  n = n + 1
end
return n`)

// hookArgs appends a delivery's enqueueHook arguments.
func hookArgs(args []string, d *hotzone.HookDelivery) ([]string, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return append(args, d.ID, string(raw), millis(d.NextAttempt), d.Happening.OrderKey), nil
}

// Emit implements hotzone.Webhooks: one script per subscribed webhook,
// in one pipelined batch; each webhook's deliveries are written at
// once (and only while it is active), several webhooks' are not.
func (db *DB) Emit(ctx context.Context, brandID string, hs []hotzone.Happening) error {
	now := db.now()
	var calls []valkey.LuaExec
	for _, w := range db.viewHooks(brandID) {
		args := []string{"1"}
		for _, h := range hs {
			if !w.Subscribed(h.Type) {
				continue
			}
			d := hotzone.HookDelivery{ID: hotzone.NewID(now), WebhookID: w.ID, BrandID: brandID, CreatedAt: now, Happening: h,
				Status: hotzone.DeliveryPending, NextAttempt: now}
			var err error
			if args, err = hookArgs(args, &d); err != nil {
				return fmt.Errorf("redis: emit: %w", err)
			}
		}
		if len(args) > 1 {
			calls = append(calls, valkey.LuaExec{Keys: []string{db.wkey(brandID, w.ID)}, Args: args})
		}
	}
	if _, err := db.execWaiting(ctx, enqueueHook, calls, nil); err != nil {
		return fmt.Errorf("redis: emit: %w", err)
	}
	return nil
}

// EmitTo implements hotzone.Webhooks.
func (db *DB) EmitTo(ctx context.Context, brandID, webhookID string, h hotzone.Happening) (hotzone.HookDelivery, error) {
	if _, err := db.Webhook(ctx, brandID, webhookID); err != nil {
		return hotzone.HookDelivery{}, err
	}
	now := db.now()
	d := hotzone.HookDelivery{ID: hotzone.NewID(now), WebhookID: webhookID, BrandID: brandID, CreatedAt: now, Happening: h,
		Status: hotzone.DeliveryPending, NextAttempt: now}
	args, err := hookArgs([]string{"0"}, &d)
	if err != nil {
		return hotzone.HookDelivery{}, fmt.Errorf("redis: emit: %w", err)
	}
	w := db.wkey(brandID, webhookID)
	if err := db.execWaited(ctx, enqueueHook, []string{w}, args).Error(); err != nil {
		return hotzone.HookDelivery{}, fmt.Errorf("redis: emit: %w", err)
	}
	return d, nil
}

// claimHook leases a webhook's due deliveries. KEYS[1]: W. ARGV: now
// (ms), lease end (ms), how many at most, per-webhook cap, claim.
// Answers id, JSON, id, JSON, … of those it leased.
var claimHook = newScript(`
local w, now = KEYS[1], tonumber(ARGV[1])
if (redis.call('HGET', w .. ':st', 'status') or 'active') ~= 'active' then return {} end
redis.call('ZREMRANGEBYSCORE', w .. ':ls', '-inf', now)
local room = math.min(tonumber(ARGV[3]), tonumber(ARGV[4]) - redis.call('ZCARD', w .. ':ls'))
local out = {}
if room <= 0 then return out end
for _, id in ipairs(redis.call('ZRANGE', w .. ':due', '-inf', now, 'BYSCORE', 'LIMIT', 0, room)) do
  redis.call('ZADD', w .. ':due', ARGV[2], id)
  redis.call('ZADD', w .. ':ls', ARGV[2], id)
  redis.call('HSET', w .. ':cl', id, ARGV[5])
  out[#out+1] = id
  out[#out+1] = redis.call('HGET', w .. ':d', id) or ''
end
return out`)

// ClaimDeliveries implements hotzone.Webhooks: one script per webhook
// this node knows of (every brand's), in one pipelined batch.
func (db *DB) ClaimDeliveries(ctx context.Context, now time.Time, limit, perHook int, lease time.Duration) ([]hotzone.HookDelivery, error) {
	if limit <= 0 || perHook <= 0 {
		return nil, nil
	}
	var calls []valkey.LuaExec
	var claims []string
	for _, brandID := range db.brands.IDs() {
		for _, w := range db.viewHooks(brandID) {
			c := hotzone.NewID(now)
			claims = append(claims, c)
			calls = append(calls, valkey.LuaExec{Keys: []string{db.wkey(brandID, w.ID)},
				Args: []string{millis(now), millis(now.Add(lease)), strconv.Itoa(limit), strconv.Itoa(perHook), c}})
		}
	}
	rs, err := db.execMulti(ctx, claimHook, calls)
	if err != nil {
		return nil, fmt.Errorf("redis: claim deliveries: %w", err)
	}
	var out []hotzone.HookDelivery
	for i, r := range rs {
		vals, err := strs(r)
		if err != nil {
			return nil, fmt.Errorf("redis: claim deliveries: %w", err)
		}
		for j := 0; j+1 < len(vals); j += 2 {
			var d hotzone.HookDelivery
			if err := json.Unmarshal([]byte(vals[j+1]), &d); err != nil {
				return nil, fmt.Errorf("redis: delivery %s: %w", vals[j], err)
			}
			d.Claim = claims[i]
			out = append(out, d)
		}
	}
	// Oldest first, and no more than limit in all: what is left over
	// stays leased and is handed out again after its lease, or taken by
	// the caller's next claim in order.
	slices.SortFunc(out, func(a, b hotzone.HookDelivery) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		for _, d := range out[limit:] {
			if err := db.unclaim(ctx, d); err != nil {
				return nil, err
			}
		}
		out = out[:limit]
	}
	return out, nil
}

// unclaimHook hands a lease back. KEYS[1]: W. ARGV: id, claim, due (ms).
var unclaimHook = newScript(`
local w, id = KEYS[1], ARGV[1]
if redis.call('HGET', w .. ':cl', id) ~= ARGV[2] then return 0 end
redis.call('ZREM', w .. ':ls', id)
redis.call('HDEL', w .. ':cl', id)
redis.call('ZADD', w .. ':due', ARGV[3], id)
return 1`)

func (db *DB) unclaim(ctx context.Context, d hotzone.HookDelivery) error {
	err := db.exec(ctx, unclaimHook, []string{db.wkey(d.BrandID, d.WebhookID)}, []string{d.ID, d.Claim, millis(d.NextAttempt)}).Error()
	if err != nil {
		return fmt.Errorf("redis: claim deliveries: %w", err)
	}
	return nil
}

// recordHook applies an attempt under its claim. KEYS[1]: W. ARGV: id,
// claim, the delivery's new JSON, its status, next due (ms), its order
// key, now (ms), "1" if the attempt succeeded, the disable threshold
// (ms). Answers 1, or 0 when the claim no longer holds.
var recordHook = newScript(`
local w, id = KEYS[1], ARGV[1]
if redis.call('HGET', w .. ':cl', id) ~= ARGV[2] then return 0 end
if redis.call('HEXISTS', w .. ':d', id) == 0 then return 0 end
redis.call('HDEL', w .. ':cl', id)
redis.call('ZREM', w .. ':ls', id)
redis.call('HSET', w .. ':d', id, ARGV[3])
local now = tonumber(ARGV[7])
if ARGV[8] == '1' then
  redis.call('HDEL', w .. ':st', 'failing')
else
  local f = redis.call('HGET', w .. ':st', 'failing')
  if not f then
    redis.call('HSET', w .. ':st', 'failing', ARGV[7])
  elseif now - tonumber(f) >= tonumber(ARGV[9]) then
    redis.call('HSET', w .. ':st', 'status', 'disabled')
  end
end
if ARGV[4] == 'pending' then
  redis.call('ZADD', w .. ':due', ARGV[5], id)
  return 1
end
redis.call('ZREM', w .. ':due', id)
local key = ARGV[6]
if key ~= '' and redis.call('HGET', w .. ':head', key) == id then
  local nxt = redis.call('LPOP', w .. ':wait:' .. key)
  if nxt then
    redis.call('HSET', w .. ':head', key, nxt)
    redis.call('ZADD', w .. ':due', now, nxt)
  else
    redis.call('HDEL', w .. ':head', key)
    redis.call('SREM', w .. ':wk', key)
  end
end
return 1`)

// RecordAttempt implements hotzone.Webhooks: the delivery is read, then
// written back under its claim by one script, which also moves the
// webhook's failing stretch and hands its order key on.
func (db *DB) RecordAttempt(ctx context.Context, r hotzone.AttemptResult) error {
	w := db.wkey(r.BrandID, r.WebhookID)
	raw, err := str(db.do(ctx, db.cmd("HGET", []string{w + ":d"}, r.DeliveryID)))
	if err != nil {
		return fmt.Errorf("redis: record attempt: %w", err)
	}
	if raw == "" {
		return nil
	}
	var d hotzone.HookDelivery
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return fmt.Errorf("redis: delivery %s: %w", r.DeliveryID, err)
	}
	if d.Status != hotzone.DeliveryPending {
		return nil
	}
	d.Attempts++
	d.LastAttemptAt, d.LastCode, d.LastError, d.Status = r.At, r.Code, r.Error, r.Status
	switch r.Status {
	case hotzone.DeliveryPending:
		d.NextAttempt = r.Next
	case hotzone.DeliveryDelivered:
		d.DeliveredAt = r.At
	}
	next, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("redis: record attempt: %w", err)
	}
	ok := "0"
	if r.Status == hotzone.DeliveryDelivered {
		ok = "1"
	}
	err = db.execWaited(ctx, recordHook, []string{w}, []string{r.DeliveryID, r.Claim, string(next), string(r.Status),
		millis(d.NextAttempt), d.Happening.OrderKey, millis(r.At), ok, strconv.FormatInt(hotzone.DisableAfter.Milliseconds(), 10)}).Error()
	if err != nil {
		return fmt.Errorf("redis: record attempt: %w", err)
	}
	return nil
}

// Deliveries implements hotzone.Webhooks: ids newest first from W:ix, a
// page at a time (more when a status filter drops some).
func (db *DB) Deliveries(ctx context.Context, brandID, webhookID string, q hotzone.DeliveryQuery) ([]hotzone.HookDelivery, bool, error) {
	if _, err := db.Webhook(ctx, brandID, webhookID); err != nil {
		return nil, false, err
	}
	w := db.wkey(brandID, webhookID)
	upper := "+"
	if q.Before != "" {
		upper = "(" + q.Before
	}
	step := 100
	if q.Limit > 0 {
		step = q.Limit + 1
	}
	var out []hotzone.HookDelivery
	for {
		ids, err := db.do(ctx, db.cmd("ZRANGE", []string{w + ":ix"}, upper, "-", "BYLEX", "REV", "LIMIT", "0", strconv.Itoa(step))).AsStrSlice()
		if err != nil && !valkey.IsValkeyNil(err) {
			return nil, false, fmt.Errorf("redis: deliveries: %w", err)
		}
		if len(ids) == 0 {
			return out, false, nil
		}
		raws, err := strs(db.do(ctx, db.cmd("HMGET", []string{w + ":d"}, ids...)))
		if err != nil {
			return nil, false, fmt.Errorf("redis: deliveries: %w", err)
		}
		for i, raw := range raws {
			if raw == "" {
				continue
			}
			var d hotzone.HookDelivery
			if err := json.Unmarshal([]byte(raw), &d); err != nil {
				return nil, false, fmt.Errorf("redis: delivery %s: %w", ids[i], err)
			}
			if q.Status != "" && d.Status != q.Status {
				continue
			}
			if q.Limit > 0 && len(out) == q.Limit {
				return out, true, nil
			}
			out = append(out, d)
		}
		if len(ids) < step {
			return out, false, nil
		}
		upper = "(" + ids[len(ids)-1]
	}
}

// Delivery implements hotzone.Webhooks.
func (db *DB) Delivery(ctx context.Context, brandID, webhookID, deliveryID string) (hotzone.HookDelivery, error) {
	if _, err := db.Webhook(ctx, brandID, webhookID); err != nil {
		return hotzone.HookDelivery{}, err
	}
	raw, err := str(db.do(ctx, db.cmd("HGET", []string{db.wkey(brandID, webhookID) + ":d"}, deliveryID)))
	if err != nil {
		return hotzone.HookDelivery{}, fmt.Errorf("redis: delivery: %w", err)
	}
	if raw == "" {
		return hotzone.HookDelivery{}, notFound("delivery")
	}
	var d hotzone.HookDelivery
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return hotzone.HookDelivery{}, fmt.Errorf("redis: delivery %s: %w", deliveryID, err)
	}
	return d, nil
}

// Listens implements hotzone.Webhooks from the view, without a lock:
// settings only, so a disabled webhook still counts (Emit skips it in
// its slot).
func (db *DB) Listens(brandID string, t hotzone.HookType) bool {
	v, ok := db.hookBits.Load(brandID)
	return ok && v.(uint16)&t.Bit() != 0
}
