package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// Presence lives in the device shards. In shard S:
//
//	{S}:d:DEVICE  field "pres": the device's open visits (JSON), absent
//	              when it has none
//	{S}:pv        the devices with visits open, scored by their last
//	              qualifying ping (ms), which each position flush moves
//	              on: the silent ones are the lowest
//	{S}:pf        devices with visits open whose last ping, far from
//	              every fence, came through a node that did not know of
//	              the visits (see MayBePresent)

// putPresence writes a device's presence if it is still what fn saw.
// KEYS[1]: the shard. ARGV: device, the presence read ("" none), the new
// one ("" none), its score (ms). Answers 1, or 0 when the device changed
// meanwhile (read again), or -1 when it is gone.
var putPresence = newScript(`
local p, dev = KEYS[1], ARGV[1]
local d = p .. ':d:' .. dev
local v = redis.call('HMGET', d, 'rec', 'pres')
if not v[1] then return -1 end
if (v[2] or '') ~= ARGV[2] then return 0 end
redis.call('SREM', p .. ':pf', dev)
if ARGV[3] == '' then
  redis.call('HDEL', d, 'pres')
  redis.call('ZREM', p .. ':pv', dev)
else
  redis.call('HSET', d, 'pres', ARGV[3])
  redis.call('ZADD', p .. ':pv', ARGV[4], dev)
end
return 1`)

// presentCache is what this node learnt of devices with visits open,
// from its own updates: a ping far from every fence of a device not in
// it costs no round trip, and another node's visits reach the device's
// next flush as a far ping (see putPositions), then Lingering.
type presentCache struct{ m sync.Map } // hotzone.DeviceRef -> struct{}

func (c *presentCache) note(r hotzone.DeviceRef, p hotzone.Presence) {
	if len(p.Visits) > 0 {
		c.m.Store(r, struct{}{})
	} else {
		c.m.Delete(r)
	}
}

func (c *presentCache) has(r hotzone.DeviceRef) bool {
	_, ok := c.m.Load(r)
	return ok
}

// UpdatePresence implements hotzone.Presences: read, fn, and a script
// that writes only if the presence is still the one read, retried when
// it is not. A change waits for a replica (see execWaiting).
func (db *DB) UpdatePresence(ctx context.Context, brandID, deviceID string, fn func(*hotzone.Presence) bool) (hotzone.Presence, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return hotzone.Presence{}, notFound("brand")
	}
	sh := db.devShard(brandID, deviceID)
	ref := hotzone.DeviceRef{BrandID: brandID, DeviceID: deviceID}
	for range casRetries {
		vals, err := strs(db.do(ctx, db.cmd("HMGET", []string{sh + ":d:" + deviceID}, "rec", "pres")))
		if err != nil {
			return hotzone.Presence{}, fmt.Errorf("redis: presence: %w", err)
		}
		if vals[0] == "" {
			return hotzone.Presence{}, errNoDevice
		}
		var cur hotzone.Presence
		if vals[1] != "" {
			if err := json.Unmarshal([]byte(vals[1]), &cur); err != nil {
				return hotzone.Presence{}, fmt.Errorf("redis: presence of %s: %w", deviceID, err)
			}
		}
		next := cur
		next.Visits = append([]hotzone.Visit(nil), cur.Visits...)
		if !fn(&next) {
			db.present.note(ref, cur)
			return cur, nil
		}
		raw, score := "", "0"
		if len(next.Visits) > 0 {
			b, err := json.Marshal(next)
			if err != nil {
				return hotzone.Presence{}, fmt.Errorf("redis: presence: %w", err)
			}
			raw, score = string(b), millis(next.AsOf)
		}
		// A change waits for a replica in the write's own round trip.
		n, err := db.execWaited(ctx, putPresence, []string{sh}, []string{deviceID, vals[1], raw, score}).AsInt64()
		if err != nil {
			return hotzone.Presence{}, fmt.Errorf("redis: presence: %w", err)
		}
		switch n {
		case -1:
			return hotzone.Presence{}, errNoDevice
		case 1:
			db.present.note(ref, next)
			return next, nil
		}
	}
	return hotzone.Presence{}, errContended
}

// Presences implements hotzone.Presences: one pipelined HGET per device.
func (db *DB) Presences(ctx context.Context, brandID string, deviceIDs []string) ([]hotzone.Presence, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, notFound("brand")
	}
	cmds := make([]valkey.Completed, len(deviceIDs))
	for i, id := range deviceIDs {
		cmds[i] = db.cmd("HGET", []string{db.devShard(brandID, id) + ":d:" + id}, "pres")
	}
	rs, err := db.doMulti(ctx, cmds)
	if err != nil {
		return nil, fmt.Errorf("redis: presences: %w", err)
	}
	out := make([]hotzone.Presence, len(deviceIDs))
	for i, r := range rs {
		raw, err := r.ToString()
		if valkey.IsValkeyNil(err) || raw == "" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis: presences: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &out[i]); err != nil {
			return nil, fmt.Errorf("redis: presence of %s: %w", deviceIDs[i], err)
		}
	}
	return out, nil
}

// MayBePresent implements hotzone.Presences from what this node learnt.
func (db *DB) MayBePresent(brandID, deviceID string) bool {
	return db.present.has(hotzone.DeviceRef{BrandID: brandID, DeviceID: deviceID})
}

// Lingering implements hotzone.Presences: per brand and shard, the
// devices whose last qualifying ping is older than the brand's
// presence_ttl_s, and those noted for a far ping (handed out once:
// they are taken out of {S}:pf as they are listed).
func (db *DB) Lingering(ctx context.Context, now time.Time, limit int) ([]hotzone.DeviceRef, error) {
	var out []hotzone.DeviceRef
	if limit <= 0 {
		return nil, nil
	}
	for _, brandID := range db.brands.IDs() {
		if len(out) >= limit {
			break
		}
		p, ok := db.brands.Policy(brandID)
		if !ok {
			continue
		}
		stale := millis(now.Add(-time.Duration(p.PresenceTTLS) * time.Second))
		per := strconv.Itoa(max(1, limit/Shards))
		cmds := make([]valkey.Completed, 0, 2*Shards)
		for i := range Shards {
			sh := db.shard(brandID, i)
			cmds = append(cmds,
				db.cmd("ZRANGE", []string{sh + ":pv"}, "-inf", "("+stale, "BYSCORE", "LIMIT", "0", per),
				db.cmd("SPOP", []string{sh + ":pf"}, per))
		}
		rs, err := db.doMulti(ctx, cmds)
		if err != nil {
			return nil, fmt.Errorf("redis: lingering: %w", err)
		}
		seen := map[string]bool{}
		for _, r := range rs {
			ids, err := r.AsStrSlice()
			if err != nil && !valkey.IsValkeyNil(err) {
				return nil, fmt.Errorf("redis: lingering: %w", err)
			}
			for _, id := range ids {
				if !seen[id] {
					seen[id] = true
					out = append(out, hotzone.DeviceRef{BrandID: brandID, DeviceID: id})
				}
			}
		}
	}
	return out, nil
}
