package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hotzone/hotzone"
)

// An event's fan-out lease is a field of its brand's {…}:fanout hash:
// "OWNER UNTIL_MS" while a node fans it out, "done" after. Ending the
// event removes it.

// leaseFanOut takes or renews a lease. KEYS[1]: the fanout hash. ARGV:
// event, owner, now (ms), until (ms).
var leaseFanOut = newScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v == 'done' then return 0 end
if v then
  local o, u = string.match(v, '^(%S+) (%d+)$')
  if o and o ~= ARGV[2] and tonumber(u) > tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[4])
return 1`)

// LeaseFanOut takes or renews an event's fan-out lease for owner (see
// push.FanOutLeases).
func (db *DB) LeaseFanOut(ctx context.Context, brandID, eventID, owner string, now time.Time, lease time.Duration) (bool, error) {
	ok, err := db.exec(ctx, leaseFanOut, []string{db.bkey(brandID, "fanout")},
		[]string{eventID, owner, millis(now), millis(now.Add(lease))}).AsBool()
	if err != nil {
		return false, fmt.Errorf("redis: fan-out lease: %w", err)
	}
	return ok, nil
}

// FanOutDone records that an event's fan-out finished.
func (db *DB) FanOutDone(ctx context.Context, brandID, eventID string) error {
	if err := db.do(ctx, db.cmd("HSET", []string{db.bkey(brandID, "fanout")}, eventID, "done")).Error(); err != nil {
		return fmt.Errorf("redis: fan-out done: %w", err)
	}
	return nil
}

// takeSends is a token bucket per lane in its brand's slot, timed by the
// server's clock so nodes' clocks need not agree. KEYS[1]: the bucket.
// ARGV: rate per second, sends wanted. Answers the sends granted.
var takeSends = newScript(`
local rate, want = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(v[1]) or rate, tonumber(v[2]) or now
if now > ts then
  tokens = math.min(rate, tokens + (now - ts) * rate / 1000)
  ts = now
end
local got = math.min(want, math.floor(tokens))
tokens = tokens - got
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], 60000)
return got`)

// TakeSends takes sends from a lane's rate shared by every node (see
// push.SendQuota).
func (db *DB) TakeSends(ctx context.Context, lane hotzone.Lane, perSecond float64, n int) (int, error) {
	got, err := db.exec(ctx, takeSends, []string{db.bkey(lane.BrandID, "rate:"+string(lane.Provider))},
		[]string{strconv.FormatFloat(perSecond, 'f', -1, 64), strconv.Itoa(n)}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("redis: send quota: %w", err)
	}
	return int(got), nil
}
