package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// DefaultRetention is how long the delivery log and ended events are
// kept when Options.Retention is zero.
const DefaultRetention = 30 * 24 * time.Hour

// pruneBatch is how many log entries one script deletes at most: small
// steps, so a shard's other work never waits long behind pruning. A
// variable so that a test can take many steps with few entries.
var pruneBatch = 500

// pruneLog deletes up to ARGV[3] of a shard's log entries after ARGV[1]
// ("-" from the first) and older than the id ARGV[2], except queued ones
// (still the outbox's). KEYS[1]: the shard. Answers how many it looked
// at and the last of them, where the next call goes on.
var pruneLog = newScript(`
local p = KEYS[1]
local ids = redis.call('ZRANGE', p .. ':li', ARGV[1], '(' .. ARGV[2], 'BYLEX', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local body = redis.call('HGET', p .. ':n', id)
  local keep = false
  if body then
    local x = cjson.decode(body)
    if x.status == 'queued' then
      keep = true
    else
      local dn = p .. ':dn:' .. x.device_id
      if redis.call('HGET', dn, x.event_id) == id then redis.call('HDEL', dn, x.event_id) end
      redis.call('ZREM', p .. ':le:' .. x.event_id, id)
    end
  end
  if not keep then
    redis.call('HDEL', p .. ':n', id)
    redis.call('HDEL', p .. ':cl', id)
    redis.call('ZREM', p .. ':li', id)
  end
end
return {tostring(#ids), ids[#ids] or ''}`)

// Prune deletes what is older than the retention: delivery-log entries
// (shard by shard, in small scripts) and ended events with their counts.
// It runs in the background every hour; tests call it.
func (db *DB) Prune(ctx context.Context) error {
	now := db.now()
	cutoff := now.Add(-db.opts.Retention)
	cutID := hotzone.MinID(cutoff)
	for _, brandID := range db.brands.IDs() {
		for s := range Shards {
			for from := "-"; ; {
				r, err := strs(db.exec(ctx, pruneLog, []string{db.shard(brandID, s)}, []string{from, cutID, strconv.Itoa(pruneBatch)}))
				if err != nil {
					return fmt.Errorf("redis: prune the log: %w", err)
				}
				if n, _ := strconv.Atoi(r[0]); n < pruneBatch {
					break
				}
				from = "(" + r[1]
			}
		}
		if err := db.pruneEvents(ctx, brandID, cutoff); err != nil {
			return err
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
		cmds = append(cmds, db.cmd("HDEL", []string{db.shard(brandID, s) + ":c"}, fields...),
			db.cmd("ZREM", []string{db.shard(brandID, s) + ":cv"}, old...))
	}
	if _, err := db.doMulti(ctx, cmds); err != nil {
		return fmt.Errorf("redis: prune events: %w", err)
	}
	return nil
}
