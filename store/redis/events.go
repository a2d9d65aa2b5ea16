package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotzone/hotzone"
)

// Events live in their brand's catalog slot: a hash of every event by
// id, a hash of the live event per store, and one key per idempotency
// key. Starting and ending are one script each there, so one live event
// per store holds across nodes. An event's counts are kept where its
// log entries are, in each device shard (counts.go).

// startEvent makes an event live unless the store is unknown, an
// idempotency key replays, or another event is live. KEYS: stores,
// live, events, idempotency key. ARGV: store id, event id, event JSON,
// now (ms), window (ms), PX for the idempotency key.
var startEvent = newScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'nostore'} end
if KEYS[4] ~= KEYS[3] then
  local rec = redis.call('GET', KEYS[4])
  if rec then
    local id, at = string.match(rec, '^(%S+) (%d+)$')
    if id and tonumber(ARGV[4]) - tonumber(at) < tonumber(ARGV[5]) then return {'idem', id} end
  end
end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then return {'conflict', cur} end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if KEYS[4] ~= KEYS[3] then redis.call('SET', KEYS[4], ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[6]) end
return {'ok'}`)

// StartEvent makes ev its store's live event (see hotzone.Events).
func (db *DB) StartEvent(ctx context.Context, ev hotzone.Event, idemKey string) (hotzone.Event, hotzone.Counts, bool, error) {
	if _, ok := db.brands.Brand(ev.BrandID); !ok {
		return hotzone.Event{}, hotzone.Counts{}, false, notFound("brand")
	}
	ev.Status = hotzone.EventLive
	raw, err := json.Marshal(ev)
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, false, err
	}
	idem := db.bkey(ev.BrandID, "events") // no key: the script skips it
	if idemKey != "" {
		idem = db.bkey(ev.BrandID, "idem:"+ev.StoreID+"\x00"+idemKey)
	}
	// The key outlives the window by a day of real time: the window is
	// judged by the request's clock, the expiry only collects garbage.
	px := strconv.FormatInt((hotzone.IdempotencyWindow + 24*time.Hour).Milliseconds(), 10)
	ans, err := strs(db.execWaited(ctx, startEvent,
		[]string{db.bkey(ev.BrandID, "stores"), db.bkey(ev.BrandID, "live"), db.bkey(ev.BrandID, "events"), idem},
		[]string{ev.StoreID, ev.ID, string(raw), millis(ev.StartsAt), strconv.FormatInt(hotzone.IdempotencyWindow.Milliseconds(), 10), px}))
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, false, fmt.Errorf("redis: start event: %w", err)
	}
	switch ans[0] {
	case "nostore":
		return hotzone.Event{}, hotzone.Counts{}, false, notFound("store")
	case "idem":
		got, c, err := db.Event(ctx, ev.BrandID, ans[1])
		return got, c, false, err
	case "conflict":
		got, c, err := db.Event(ctx, ev.BrandID, ans[1])
		if err != nil {
			return hotzone.Event{}, hotzone.Counts{}, false, err
		}
		return got, c, false, hotzone.ErrConflict
	}
	if err := db.bump(ctx, ev.BrandID, partLive); err != nil {
		return hotzone.Event{}, hotzone.Counts{}, false, err
	}
	return ev, hotzone.Counts{}, true, nil
}

// Event returns one event with its counts: a live one from the view, an
// ended one from the cluster.
func (db *DB) Event(ctx context.Context, brandID, eventID string) (hotzone.Event, hotzone.Counts, error) {
	if ev, c, ok := db.events.Get(eventID); ok && ev.BrandID == brandID {
		return ev, c, nil
	}
	raw, err := str(db.do(ctx, db.cmd("HGET", []string{db.bkey(brandID, "events")}, eventID)))
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("redis: event: %w", err)
	}
	if raw == "" {
		return hotzone.Event{}, hotzone.Counts{}, notFound("event")
	}
	var ev hotzone.Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("redis: event %s: %w", eventID, err)
	}
	counts, err := db.countsOf(ctx, brandID, []string{eventID})
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, err
	}
	return ev, counts[eventID], nil
}

var errNoLiveEvent = notFound("live event")

// LiveEvent returns the store's live event from the view.
func (db *DB) LiveEvent(_ context.Context, brandID, storeID string) (hotzone.Event, hotzone.Counts, error) {
	ev, c, ok := db.events.Live(brandID, storeID)
	if !ok {
		return hotzone.Event{}, hotzone.Counts{}, errNoLiveEvent
	}
	return ev, c, nil
}

// LiveEvents returns every live event in the view.
func (db *DB) LiveEvents(context.Context) ([]hotzone.Event, error) { return db.events.All(), nil }

// Events lists a page of a brand's events, newest first.
func (db *DB) Events(ctx context.Context, brandID string, q hotzone.EventQuery) ([]hotzone.EventCounts, bool, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, false, notFound("brand")
	}
	all, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{db.bkey(brandID, "events")})))
	if err != nil {
		return nil, false, fmt.Errorf("redis: events: %w", err)
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		if q.Before == "" || id < q.Before {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	var out []hotzone.EventCounts
	more := false
	for _, id := range ids {
		var ev hotzone.Event
		if err := json.Unmarshal([]byte(all[id]), &ev); err != nil {
			return nil, false, fmt.Errorf("redis: event %s: %w", id, err)
		}
		if (q.Status != "" && ev.Status != q.Status) || (q.StoreID != "" && ev.StoreID != q.StoreID) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			more = true
			break
		}
		out = append(out, hotzone.EventCounts{Event: ev})
	}
	var ended []string
	for i := range out {
		if ev, c, ok := db.events.Get(out[i].Event.ID); ok {
			out[i] = hotzone.EventCounts{Event: ev, Counts: c}
		} else {
			ended = append(ended, out[i].Event.ID)
		}
	}
	if len(ended) > 0 {
		counts, err := db.countsOf(ctx, brandID, ended)
		if err != nil {
			return nil, false, err
		}
		for i := range out {
			if c, ok := counts[out[i].Event.ID]; ok {
				out[i].Counts = c
			}
		}
	}
	return out, more, nil
}

// endEvent ends an event if it is still as read and live, and drops its
// fan-out lease. KEYS: events, live, fanout. ARGV: event id, JSON read, ended JSON, store id. Answers 1, 0
// (changed meanwhile: read again) or -1 (not live).
var endEvent = newScript(`
if (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[2], ARGV[4]) ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[4])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1`)

// EndEvent ends a live event, then expires what is queued for it in
// every shard before it returns. A crash between the two leaves queued
// notifications of an ended event, which the outbox consumer expires
// instead of sending (the contract's race, made longer).
func (db *DB) EndEvent(ctx context.Context, brandID, eventID string, at time.Time) (hotzone.Event, hotzone.Counts, error) {
	evKey, liveKey := db.bkey(brandID, "events"), db.bkey(brandID, "live")
	var ev hotzone.Event
	for i := 0; ; i++ {
		if i == casRetries {
			return hotzone.Event{}, hotzone.Counts{}, errContended
		}
		raw, err := str(db.do(ctx, db.cmd("HGET", []string{evKey}, eventID)))
		if err != nil {
			return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("redis: end event: %w", err)
		}
		if raw == "" {
			return hotzone.Event{}, hotzone.Counts{}, errNoLiveEvent
		}
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("redis: event %s: %w", eventID, err)
		}
		if ev.Status != hotzone.EventLive {
			return hotzone.Event{}, hotzone.Counts{}, errNoLiveEvent
		}
		ev.Status = hotzone.EventEnded
		if at.Before(ev.EndsAt) {
			ev.EndsAt = at.UTC()
		}
		ended, _ := json.Marshal(ev)
		n, err := db.execWaited(ctx, endEvent, []string{evKey, liveKey, db.bkey(brandID, "fanout")}, []string{eventID, raw, string(ended), ev.StoreID}).AsInt64()
		if err != nil {
			return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("redis: end event: %w", err)
		}
		if n == -1 {
			return hotzone.Event{}, hotzone.Counts{}, errNoLiveEvent
		}
		if n == 1 {
			break
		}
	}
	if err := db.expireQueued(ctx, brandID, eventID); err != nil {
		return hotzone.Event{}, hotzone.Counts{}, err
	}
	if err := db.bump(ctx, brandID, partLive); err != nil {
		return hotzone.Event{}, hotzone.Counts{}, err
	}
	counts, err := db.countsOf(ctx, brandID, []string{eventID})
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, err
	}
	return ev, counts[eventID], nil
}

// Changed is the view's change signal of a store.
func (db *DB) Changed(_ context.Context, brandID, storeID string) (<-chan struct{}, error) {
	return db.events.Changed(brandID, storeID), nil
}
