package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// peekEntries reads devices' entries for events. KEYS[1]: the shard.
// ARGV: event and device pairs. Answers per pair the entry's id and JSON
// ("" for none).
var peekEntries = newScript(`
local p = KEYS[1]
local out = {}
for i = 1, #ARGV, 2 do
  local id = redis.call('HGET', p .. ':d:' .. ARGV[i+1], 'n:' .. ARGV[i]) or ''
  local body = ''
  if id ~= '' then body = redis.call('HGET', p .. ':n', id) or '' end
  out[#out+1] = id
  out[#out+1] = body
end
return out`)

// amendEntry rewrites a log entry if it is still as it was read.
// KEYS[1]: the shard. ARGV: its id, the JSON read, the new JSON, its
// event, and a counts field to move on by one ("" for none). Answers
// {0} when the entry changed meanwhile (read it again), else {1}, then
// with a counts field the event's counts in the shard (see countsLua).
var amendEntry = newScript(countsLua + `
local p = KEYS[1]
if (redis.call('HGET', p .. ':n', ARGV[1]) or '') ~= ARGV[2] then return {0} end
redis.call('HSET', p .. ':n', ARGV[1], ARGV[3])
if ARGV[5] == '' then return {1} end
redis.call('HINCRBY', p .. ':c', ARGV[4] .. ':' .. ARGV[5], 1)
local out = {1}
for _, c in ipairs(shardCounts(p, ARGV[4])) do out[#out+1] = c end
return out`)

// amend writes n (read as old) back to the device's shard, moving the
// counts field on when one is given; false when the entry changed since
// it was read.
func (db *DB) amend(ctx context.Context, brandID, deviceID, old string, n *hotzone.Notification, field string) (bool, error) {
	vals, err := db.exec(ctx, amendEntry, []string{db.devShard(brandID, deviceID)}, []string{n.ID, old, encodeEntry(n), n.EventID, field}).AsIntSlice()
	if err != nil {
		return false, err
	}
	if len(vals) == 0 || vals[0] == 0 {
		return false, nil
	}
	if len(vals) > 1 {
		db.setShardCounts(n.EventID, shardOf(deviceID), vals[1:])
	}
	return true, nil
}

// Open implements hotzone.Attribution: a check-and-set of the entry in
// the device's shard, with the count.
func (db *DB) Open(ctx context.Context, brandID, notificationID, deviceID string, at time.Time) (bool, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return false, notFound("brand")
	}
	for range casRetries {
		body, err := str(db.do(ctx, db.cmd("HGET", []string{db.devShard(brandID, deviceID) + ":n"}, notificationID)))
		if err != nil {
			return false, fmt.Errorf("redis: open: %w", err)
		}
		var n hotzone.Notification
		if body == "" {
			return false, notFound("notification")
		}
		if err := decodeEntry(body, &n); err != nil {
			return false, fmt.Errorf("redis: notification %s: %w", notificationID, err)
		}
		// The shard holds other devices' entries too.
		if n.DeviceID != deviceID || n.BrandID != brandID {
			return false, notFound("notification")
		}
		if n.OpenedAt != nil {
			return false, nil
		}
		t := at.UTC()
		n.OpenedAt = &t
		ok, err := db.amend(ctx, brandID, deviceID, body, &n, "opened")
		if err != nil {
			return false, fmt.Errorf("redis: open: %w", err)
		}
		if ok {
			return true, nil
		}
	}
	return false, errContended
}

// Attribute implements hotzone.Attribution: each device's entries are
// read in one pipelined batch, marked in Go and written back each only
// if unchanged; those that changed meanwhile are read again.
func (db *DB) Attribute(ctx context.Context, brandID string, marks []hotzone.VisitMark) ([]hotzone.Notification, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, notFound("brand")
	}
	var out []hotzone.Notification
	todo := marks
	for range casRetries {
		if len(todo) == 0 {
			return out, nil
		}
		calls := make([]valkey.LuaExec, len(todo))
		for i, m := range todo {
			calls[i] = valkey.LuaExec{Keys: []string{db.devShard(brandID, m.DeviceID)}, Args: []string{m.EventID, m.DeviceID}}
		}
		rs, err := db.execMulti(ctx, peekEntries, calls)
		if err != nil {
			return nil, fmt.Errorf("redis: attribute: %w", err)
		}
		var again []hotzone.VisitMark
		for i, m := range todo {
			vals, err := strs(rs[i])
			if err != nil || len(vals) != 2 {
				return nil, fmt.Errorf("redis: attribute: %v (%d values)", err, len(vals))
			}
			if vals[1] == "" {
				continue
			}
			var n hotzone.Notification
			if err := decodeEntry(vals[1], &n); err != nil {
				return nil, fmt.Errorf("redis: notification %s: %w", vals[0], err)
			}
			if !m.Attributes(&n) {
				continue
			}
			m.Apply(&n)
			ok, err := db.amend(ctx, brandID, m.DeviceID, vals[1], &n, "")
			if err != nil {
				return nil, fmt.Errorf("redis: attribute: %w", err)
			}
			if !ok {
				again = append(again, m)
				continue
			}
			out = append(out, n)
		}
		todo = again
	}
	return nil, errContended
}

// eventLogBatch is how many index members EventLog reads from a shard
// at once, and how many entries it reads at once.
const eventLogBatch = 512

// EventLog implements hotzone.Attribution: each shard's index of the
// event, read a batch of members at a time, their entries (see runs.go)
// a batch at a time.
func (db *DB) EventLog(ctx context.Context, brandID, eventID string, fn func(*hotzone.Notification) error) error {
	if _, ok := db.brands.Brand(brandID); !ok {
		return notFound("brand")
	}
	for s := range Shards {
		sh := db.shard(brandID, s)
		for from := 0; ; from += eventLogBatch {
			members, err := db.do(ctx, db.cmd("ZRANGE", []string{sh + ":le:" + eventID}, strconv.Itoa(from), strconv.Itoa(from+eventLogBatch-1))).AsStrSlice()
			if err != nil && !valkey.IsValkeyNil(err) {
				return fmt.Errorf("redis: event log: %w", err)
			}
			var ids []string
			for _, m := range members {
				ids = append(ids, runEntries(m)...)
			}
			for len(ids) > 0 {
				part := ids[:min(len(ids), eventLogBatch)]
				ids = ids[len(part):]
				bodies, err := strs(db.do(ctx, db.cmd("HMGET", []string{sh + ":n"}, part...)))
				if err != nil {
					return fmt.Errorf("redis: event log: %w", err)
				}
				for i, b := range bodies {
					if b == "" {
						continue // erased meanwhile
					}
					var n hotzone.Notification
					if err := decodeEntry(b, &n); err != nil {
						return fmt.Errorf("redis: notification %s: %w", part[i], err)
					}
					if err := fn(&n); err != nil {
						return err
					}
				}
			}
			if len(members) < eventLogBatch {
				break
			}
		}
	}
	return nil
}
