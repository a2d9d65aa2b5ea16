package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// pruneBatch is how many log entries one script deletes at most: small
// steps, so a shard's other work never waits long behind pruning. A
// variable so that a test can take many steps with few entries.
var pruneBatch = 500

// pruneLog deletes a shard's log entries after the index member ARGV[1]
// ("-" from the first) and older than the id ARGV[2], except queued ones
// (still the outbox's), going through index members until it has looked
// at ARGV[3] entries. A run's member (see runs.go) goes when none of its
// entries is kept. KEYS[1]: the shard. Answers "1" when there may be
// more, and the last member it went through, where the next call goes
// on.
var pruneLog = newScript(entriesLua + `
local p = KEYS[1]
local budget = tonumber(ARGV[3])
local members = redis.call('ZRANGE', p .. ':li', ARGV[1], '(' .. ARGV[2], 'BYLEX', 'LIMIT', 0, budget)
local looked, last = 0, ''
for _, m in ipairs(members) do
  local kept, ev = false, nil
  for _, id in ipairs(entriesOf(m)) do
    local body = redis.call('HGET', p .. ':n', id)
    local keep = false
    if body then
      local x = cjson.decode(body)
      ev = x.event_id
      if x.status == 'queued' then
        keep = true
      else
        local d, f = p .. ':d:' .. x.device_id, 'n:' .. x.event_id
        if redis.call('HGET', d, f) == id then redis.call('HDEL', d, f) end
      end
    end
    if keep then
      kept = true
    else
      redis.call('HDEL', p .. ':n', id)
      redis.call('HDEL', p .. ':cl', id)
    end
    looked = looked + 1
  end
  if not kept then
    redis.call('ZREM', p .. ':li', m)
    if ev then redis.call('ZREM', p .. ':le:' .. ev, m) end
  end
  last = m
  if looked >= budget then
    return {'1', last}
  end
end
return {#members == budget and '1' or '0', last}`)

// Prune implements hotzone.Storage: what is older than each brand's
// retention goes: delivery-log entries (shard by shard, in small
// scripts), ended events with their counts, and positions.
func (db *DB) Prune(ctx context.Context) error {
	// Positions held behind go out first, so old ones among them are
	// pruned now rather than written back after.
	if err := db.flush(ctx); err != nil {
		return err
	}
	now := db.now()
	for _, brandID := range db.brands.IDs() {
		p, ok := db.brands.Policy(brandID)
		if !ok {
			continue
		}
		cutoff := now.Add(-p.Retention())
		cutID := hotzone.MinID(cutoff)
		for s := range Shards {
			for from := "-"; ; {
				r, err := strs(db.exec(ctx, pruneLog, []string{db.shard(brandID, s)}, []string{from, cutID, strconv.Itoa(pruneBatch)}))
				if err != nil {
					return fmt.Errorf("redis: prune the log: %w", err)
				}
				if len(r) != 2 || r[0] != "1" {
					break
				}
				from = "(" + r[1]
			}
		}
		if err := db.pruneEvents(ctx, brandID, cutoff); err != nil {
			return err
		}
		if err := db.prunePositions(ctx, brandID, cutoff); err != nil {
			return err
		}
	}
	return nil
}

// prunePositions forgets a batch of a shard's devices' positions last
// reported before ARGV[3] (nanos), walking the shard's device set from
// the SSCAN cursor ARGV[1], ARGV[2] at a time. KEYS[1]: the shard.
// Answers the next cursor, then each forgotten device with its
// qualifying position ("" for none), whose grid cell the caller cleans.
var prunePositions = newScript(tsLua + `
local p = KEYS[1]
local r = redis.call('SSCAN', p .. ':devs', ARGV[1], 'COUNT', tonumber(ARGV[2]))
local out = {r[1]}
local cut = tonumber(ARGV[3])
for _, id in ipairs(r[2]) do
  local d = p .. ':d:' .. id
  local last = redis.call('HGET', d, 'last')
  local lts = tsOf(last)
  if lts ~= '' and tonumber(lts) < cut then
    out[#out+1] = id
    out[#out+1] = redis.call('HGET', d, 'qual') or ''
    redis.call('HDEL', d, 'last', 'lts', 'qual', 'qts')
    redis.call('HDEL', p .. ':q', id)
    redis.call('ZREM', p .. ':pv', id)
  end
end
return out`)

// prunePositions forgets a brand's positions reported before cutoff,
// shard by shard, a batch per script, and takes them out of their grid
// cells.
func (db *DB) prunePositions(ctx context.Context, brandID string, cutoff time.Time) error {
	for s := range Shards {
		for cursor := "0"; ; {
			r, err := strs(db.exec(ctx, prunePositions, []string{db.shard(brandID, s)}, []string{cursor, strconv.Itoa(pruneBatch), nanos(cutoff)}))
			if err != nil {
				return fmt.Errorf("redis: prune positions: %w", err)
			}
			if len(r) == 0 {
				return errors.New("redis: prune positions: no cursor answered")
			}
			var cmds []valkey.Completed
			for i := 1; i+1 < len(r); i += 2 {
				db.pos.drop(brandID, r[i])
				if q, ok := unpackPos(r[i+1]); ok {
					cmds = append(cmds, db.cmd("HDEL", []string{db.cellKey(brandID, geo.CellOf(q.Point()))}, r[i]))
				}
			}
			if _, err := db.doMulti(ctx, cmds); err != nil {
				return fmt.Errorf("redis: prune positions: %w", err)
			}
			if cursor = r[0]; cursor == "0" {
				break
			}
		}
	}
	return nil
}

// pruneEvents deletes a brand's events that ended before cutoff, and
// their counts in every shard.
func (db *DB) pruneEvents(ctx context.Context, brandID string, cutoff time.Time) error {
	all, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{db.bkey(brandID, "events")})))
	if err != nil {
		return fmt.Errorf("redis: prune events: %w", err)
	}
	var old []string
	for id, raw := range all {
		var ev hotzone.Event
		if json.Unmarshal([]byte(raw), &ev) == nil && ev.Status == hotzone.EventEnded && ev.EndsAt.Before(cutoff) {
			old = append(old, id)
		}
	}
	if len(old) == 0 {
		return nil
	}
	var fields []string
	for _, id := range old {
		for _, b := range bucketNames {
			fields = append(fields, id+":"+b)
		}
		fields = append(fields, id+":v")
	}
	cmds := []valkey.Completed{db.cmd("HDEL", []string{db.bkey(brandID, "events")}, old...)}
	for s := range Shards {
		sh := db.shard(brandID, s)
		cmds = append(cmds, db.cmd("HDEL", []string{sh + ":c"}, fields...),
			db.cmd("ZREM", []string{sh + ":cv"}, old...))
		// What the event's index still holds (pruneLog takes a run's
		// member out of it only while an entry of the run is left to say
		// which event it is) goes with the event.
		for _, id := range old {
			cmds = append(cmds, db.cmd("DEL", []string{sh + ":le:" + id}))
		}
	}
	if _, err := db.doMulti(ctx, cmds); err != nil {
		return fmt.Errorf("redis: prune events: %w", err)
	}
	return nil
}
