package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"
)

// An event's fan-out lease is a field of its brand's {…}:fanout hash:
// "OWNER UNTIL_MS" while a node fans it out, "done" after. Ending the
// event removes it.

// leaseFanOut takes or renews a lease. KEYS[1]: the fanout hash. ARGV:
// event, owner, now (ms), until (ms).
var leaseFanOut = valkey.NewLuaScript(`
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
