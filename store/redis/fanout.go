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

// fanOutHold is the longest a node's flush loop holds positions back
// at a time while it fans out (see fanningOut), and it holds them no
// longer than FlushInterval: a position then waits two intervals at
// most, a second more at most. Most of a 100,000-device fan-out on two
// cores fits in a second (1.6–1.9 s to all queued holding for a second,
// against 1.5–1.6 holding for 2 s and 2.2–2.4 not holding, in the
// harness). A variable so that tests can lower it; a DB reads it when
// it opens.
var fanOutHold = time.Second

// LeaseFanOut takes or renews an event's fan-out lease for owner (see
// push.FanOutLeases).
func (db *DB) LeaseFanOut(ctx context.Context, brandID, eventID, owner string, now time.Time, lease time.Duration) (bool, error) {
	ok, err := db.exec(ctx, leaseFanOut, []string{db.bkey(brandID, "fanout")},
		[]string{eventID, owner, millis(now), millis(now.Add(lease))}).AsBool()
	if err != nil {
		return false, fmt.Errorf("redis: fan-out lease: %w", err)
	}
	// The node's own clock: this times its flushes, not the lease.
	key := brandID + "\x00" + eventID
	db.fanMu.Lock()
	if ok {
		db.fanning[key] = time.Now().Add(lease)
	} else {
		delete(db.fanning, key) // another node has it
	}
	db.fanMu.Unlock()
	return ok, nil
}

// FanOutDone records that an event's fan-out finished.
func (db *DB) FanOutDone(ctx context.Context, brandID, eventID string) error {
	db.fanMu.Lock()
	delete(db.fanning, brandID+"\x00"+eventID)
	db.fanMu.Unlock()
	// What was held back for the fan-out goes out now.
	select {
	case db.pos.full <- struct{}{}:
	default:
	}
	if err := db.do(ctx, db.cmd("HSET", []string{db.bkey(brandID, "fanout")}, eventID, "done")).Error(); err != nil {
		return fmt.Errorf("redis: fan-out done: %w", err)
	}
	return nil
}

// fanningOut tells whether this node fans out an event (holds a lease
// it took that has not lapsed). Its flush loop then holds positions
// back, for up to holdFor at a time and up to 4 × flushEarly devices
// (see flushLoop): under a fan-out the primaries' CPU is what
// the notifications wait for, and a burst of pings just before it (a
// hundred thousand devices in a second) left a quarter of the
// primaries' script time in the fan-out's window to writing positions,
// which nothing in the fan-out needed (its search reads the positions
// this node holds). They go out when the fan-out is done, its lease
// lapses or the hold ends; until then other nodes see them that much
// later, and a crash loses them.
func (db *DB) fanningOut() bool {
	now := time.Now()
	db.fanMu.Lock()
	defer db.fanMu.Unlock()
	for k, until := range db.fanning {
		if now.Before(until) {
			return true
		}
		delete(db.fanning, k)
	}
	return false
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
