package redis

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// The ledger lives in the device shards. In shard S:
//
//	{S}:d:DEVICE   the device's hash (see devices.go) also holds, in
//	               field "n:EVENT", its notification id for the event
//	{S}:n          hash notification id -> the entry (JSON)
//	{S}:li         the shard's log, in a sorted set (score 0: by id) of
//	               runs of ids (see runs.go)
//	{S}:le:EVENT   the event's entries in the shard, likewise
//	{S}:o:PROV     the outbox: queued ids scored by when they are due
//	               (ms); a claim moves the score to the lease's end
//	{S}:cl         hash id -> the claim it was last handed out under
//	{S}:oq         runs of ids (see runs.go) with an entry queued when
//	               they went in, scored by creation (ms), for the oldest
//	               queued: nothing takes a run out when its last queued
//	               entry leaves the queue; the reader does (oldestQueued)
//	{S}:c          hash "EVENT:bucket" -> the event's count there, and
//	               "EVENT:v", moved on by every change of them
//
// A decision, a result and an expiry are each one script in one shard,
// so the log, the outbox and the counts never disagree. The outbox is
// sorted sets, not streams: the contract's Claim takes the caller's
// clock for leases and due times (retries back off to a NextAttempt),
// which stream consumer groups, judging idle time by the server's
// clock, cannot honour; a dead node's claims come due again when their
// lease ends, as XAUTOCLAIM would hand them over.

// bucket is the counts bucket of a status.
func bucket(s hotzone.NotificationStatus) string {
	switch s {
	case hotzone.StatusSent, hotzone.StatusDryRun:
		return "sent"
	case hotzone.StatusFailed, hotzone.StatusInvalidToken:
		return "failed"
	}
	return string(s)
}

// bucketNames are the fields of an event's counts in a shard: the
// statuses' buckets (devices_in_fence is their sum), then opened, which
// is no status.
var bucketNames = []string{"queued", "sent", "suppressed", "failed", "expired", "opened"}

// countsLua defines shardCounts(shard, event): it moves the event's
// counts version in the shard on, notes in {S}:cv (scored by the
// shard's own counts version) that the event changed, and answers the
// shard's counts of the event in bucketNames order, then its version.
// Scripts that change counts call it, and those on the ping path answer
// it, so a node's view takes the shard's counts as they are, never a
// difference that a poll may already have counted; and a poll reads
// only the events that changed since its last.
const countsLua = `
local function shardCounts(p, ev)
  local c = p .. ':c'
  local v = redis.call('HINCRBY', c, ev .. ':v', 1)
  redis.call('ZADD', p .. ':cv', redis.call('HINCRBY', c, 'v', 1), ev)
  local r = redis.call('HMGET', c, ev .. ':queued', ev .. ':sent', ev .. ':suppressed', ev .. ':failed', ev .. ':expired', ev .. ':opened')
  local out = {}
  for i = 1, 6 do out[i] = tonumber(r[i] or '0') or 0 end
  out[7] = v
  return out
end
`

// shardCounts is one event's counts in one shard at a version.
type shardCounts struct {
	ver int64
	c   hotzone.Counts
}

// liveCounts are this node's copies of live events' per-shard counts.
type liveCounts struct {
	shards [Shards]shardCounts
}

// countsFrom reads counts in bucketNames order.
func countsFrom(vals []int64) hotzone.Counts {
	var c hotzone.Counts
	for j, n := range vals[:min(len(vals), len(bucketNames))] {
		switch j {
		case 0:
			c.Queued = int(n)
		case 1:
			c.Sent = int(n)
		case 2:
			c.Suppressed = int(n)
		case 3:
			c.Failed = int(n)
		case 4:
			c.Expired = int(n)
		case 5:
			c.Opened = int(n)
			continue
		}
		c.DevicesInFence += int(n)
	}
	return c
}

// setShardCounts takes a shard's counts of an event at a version (the
// buckets, then the version) into the view, unless a later version is
// there; the view's counts are the sum over shards.
func (db *DB) setShardCounts(eventID string, shard int, vals []int64) {
	if len(vals) != len(bucketNames)+1 {
		return
	}
	db.cntMu.Lock()
	defer db.cntMu.Unlock()
	if _, _, ok := db.events.Get(eventID); !ok {
		delete(db.counts, eventID)
		return
	}
	lc := db.counts[eventID]
	if lc == nil {
		lc = new(liveCounts)
		db.counts[eventID] = lc
	}
	ver := vals[len(bucketNames)]
	if ver < lc.shards[shard].ver {
		return
	}
	lc.shards[shard] = shardCounts{ver, countsFrom(vals)}
	var sum hotzone.Counts
	for _, s := range lc.shards {
		sum.Merge(s.c)
	}
	db.events.SetCounts(eventID, sum, db.countSeq.Add(1))
}

// readCounts reads events' counts in every shard of a brand, with their
// versions: [event][shard] -> buckets then version.
func (db *DB) readCounts(ctx context.Context, brandID string, eventIDs []string) ([][Shards][]int64, error) {
	per := len(bucketNames) + 1
	fields := make([]string, 0, len(eventIDs)*per)
	for _, id := range eventIDs {
		for _, b := range bucketNames {
			fields = append(fields, id+":"+b)
		}
		fields = append(fields, id+":v")
	}
	rs, err := db.doMulti(ctx, db.shardCmds(brandID, func(sh string, _ int) valkey.Completed {
		return db.cmd("HMGET", []string{sh + ":c"}, fields...)
	}))
	if err != nil {
		return nil, fmt.Errorf("redis: read counts: %w", err)
	}
	out := make([][Shards][]int64, len(eventIDs))
	for s, r := range rs {
		vals, err := strs(r)
		if err != nil {
			return nil, err
		}
		for i := range eventIDs {
			v := make([]int64, per)
			for j := range per {
				v[j], _ = strconv.ParseInt(vals[i*per+j], 10, 64)
			}
			out[i][s] = v
		}
	}
	return out, nil
}

// countsOf reads events' counts, summed over the brand's shards.
func (db *DB) countsOf(ctx context.Context, brandID string, eventIDs []string) (map[string]hotzone.Counts, error) {
	all, err := db.readCounts(ctx, brandID, eventIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]hotzone.Counts, len(eventIDs))
	for i, id := range eventIDs {
		var c hotzone.Counts
		for _, v := range all[i] {
			c.Merge(countsFrom(v))
		}
		out[id] = c
	}
	return out, nil
}

// pollCounts reads into the view the counts of a brand's live events
// that changed since this node's last poll: each shard's {S}:cv names
// the events whose counts changed after a shard version, so a poll costs
// one small read per shard plus the events that moved, however many are
// live.
func (db *DB) pollCounts(ctx context.Context, brandID string, eventIDs []string) error {
	live := make(map[string]bool, len(eventIDs))
	for _, id := range eventIDs {
		live[id] = true
	}
	db.cntMu.Lock()
	seen := db.cvSeen[brandID]
	if seen == nil {
		seen = new([Shards]int64)
		db.cvSeen[brandID] = seen
	}
	from := *seen
	db.cntMu.Unlock()
	rs, err := db.doMulti(ctx, db.shardCmds(brandID, func(sh string, i int) valkey.Completed {
		return db.cmd("ZRANGE", []string{sh + ":cv"}, "("+strconv.FormatInt(from[i], 10), "+inf", "BYSCORE", "WITHSCORES")
	}))
	if err != nil {
		return fmt.Errorf("redis: poll counts: %w", err)
	}
	var (
		reads  []valkey.Completed
		which  []int
		events [][]string
		upto   [Shards]int64
	)
	per := len(bucketNames) + 1
	for i, r := range rs {
		zs, err := r.AsZScores()
		if err != nil && !valkey.IsValkeyNil(err) {
			return fmt.Errorf("redis: poll counts: %w", err)
		}
		upto[i] = from[i]
		var ids, fields []string
		for _, z := range zs {
			upto[i] = max(upto[i], int64(z.Score))
			if !live[z.Member] {
				continue
			}
			ids = append(ids, z.Member)
			for _, b := range bucketNames {
				fields = append(fields, z.Member+":"+b)
			}
			fields = append(fields, z.Member+":v")
		}
		if len(ids) > 0 {
			reads = append(reads, db.cmd("HMGET", []string{db.shard(brandID, i) + ":c"}, fields...))
			which = append(which, i)
			events = append(events, ids)
		}
	}
	vs, err := db.doMulti(ctx, reads)
	if err != nil {
		return fmt.Errorf("redis: poll counts: %w", err)
	}
	for j, r := range vs {
		vals, err := strs(r)
		if err != nil {
			return err
		}
		for k, id := range events[j] {
			v := make([]int64, per)
			for f := range per {
				v[f], _ = strconv.ParseInt(vals[k*per+f], 10, 64)
			}
			db.setShardCounts(id, which[j], v)
		}
	}
	db.cntMu.Lock()
	for i := range Shards {
		seen[i] = max(seen[i], upto[i])
	}
	db.cntMu.Unlock()
	return nil
}

// readLiveCounts reads live events' counts in every shard into the view
// (an event that just went live, or this node's own change).
func (db *DB) readLiveCounts(ctx context.Context, brandID string, eventIDs []string) error {
	all, err := db.readCounts(ctx, brandID, eventIDs)
	if err != nil {
		return err
	}
	for i, id := range eventIDs {
		for s, v := range all[i] {
			db.setShardCounts(id, s, v)
		}
	}
	return nil
}

// stateLua defines stateOf(shard, device, field): a device's state as
// decisions need it, {record ("" for an unknown one), the record's
// version (see putDevice), history, the notification id it has in
// field ("n:EVENT") and that entry ("" for none)}. peek answers it, and
// decide where a device moved on.
const stateLua = `
local function stateOf(p, dev, f)
  local v = redis.call('HMGET', p .. ':d:' .. dev, 'rec', 'rv', 'hist', f)
  local rec, id, body = v[1] or '', '', ''
  if rec ~= '' then
    id = v[4] or ''
    if id ~= '' then body = redis.call('HGET', p .. ':n', id) or '' end
  end
  return {rec, v[2] or '', v[3] or '', id, body}
end
`

// peek reads what decisions need of a shard's devices. KEYS[1]: the
// shard. ARGV: the event, then device ids. Answers each device's
// stateOf, one after the other.
var peek = newScript(stateLua + `
local p, f = KEYS[1], 'n:' .. ARGV[1]
local out = {}
for i = 2, #ARGV do
  for _, x in ipairs(stateOf(p, ARGV[i], f)) do out[#out+1] = x end
end
return out`)

// decideArgs is how many arguments decide takes per device.
const decideArgs = 13

// decide writes decisions for a shard's devices, each only if
// everything it was made on is unchanged. KEYS[1]: the shard. ARGV: the
// event, the due time (ms; also new entries' creation time), the index
// member of the run that new entries' ids come from (see runs.go), then
// per device: its id, record version, history, notification id and
// entry as it was decided on; the entry's id and new JSON; its new
// bucket and the old one ("" when new); "1" to queue it, with the new
// history, provider and creation time (ms). The oldest-queued index
// gets the run, if any new entry is queued, and each older entry queued
// again.
// Answers, per device, 1 when written, else its stateOf to decide again
// on; then, if any was written, the event's counts in the shard (see
// countsLua).
//
// Each device's own keys are checked and written as it comes; the
// shard's entries, log indexes and outbox are written once for the
// batch, each one multi-member command: under a fan-out, calls per
// device were most of the shard's work.
var decide = newScript(countsLua + stateLua + `
local p, ev, due = KEYS[1], ARGV[1], ARGV[2]
local f = 'n:' .. ev
local out = {}
local delta = {}
local entries, oq, boxes = {}, {}, {}
local logged, queuedRun = false, false
local function add(b, n) delta[b] = (delta[b] or 0) + n end
for i = 4, #ARGV, 13 do
  local d = p .. ':d:' .. ARGV[i]
  local v = redis.call('HMGET', d, 'rv', 'hist', f)
  local id = v[3] or ''
  local ok = (v[1] or '') == ARGV[i+1] and (v[2] or '') == ARGV[i+2] and id == ARGV[i+3]
  if ok and id ~= '' then
    ok = (redis.call('HGET', p .. ':n', id) or '') == ARGV[i+4]
  end
  if ok then
    local nid = ARGV[i+5]
    entries[#entries+1] = nid
    entries[#entries+1] = ARGV[i+6]
    if id == '' then logged = true end
    if ARGV[i+8] ~= '' then add(ARGV[i+8], -1) end
    add(ARGV[i+7], 1)
    if ARGV[i+9] == '1' then
      redis.call('HSET', d, 'hist', ARGV[i+10], f, nid)
      local box = boxes[ARGV[i+11]]
      if not box then box = {}; boxes[ARGV[i+11]] = box end
      box[#box+1] = due
      box[#box+1] = nid
      if id == '' then
        queuedRun = true
      else
        oq[#oq+1] = ARGV[i+12]
        oq[#oq+1] = nid
      end
    elseif id == '' then
      redis.call('HSET', d, f, nid)
    end
    out[#out+1] = 1
  else
    out[#out+1] = stateOf(p, ARGV[i], f)
  end
end
if #entries > 0 then
  redis.call('HSET', p .. ':n', unpack(entries))
  if logged then
    redis.call('ZADD', p .. ':li', 0, ARGV[3])
    redis.call('ZADD', p .. ':le:' .. ev, 0, ARGV[3])
  end
  for prov, box in pairs(boxes) do redis.call('ZADD', p .. ':o:' .. prov, unpack(box)) end
  if queuedRun then
    oq[#oq+1] = due
    oq[#oq+1] = ARGV[3]
  end
  if #oq > 0 then redis.call('ZADD', p .. ':oq', unpack(oq)) end
  for b, n in pairs(delta) do
    if n ~= 0 then redis.call('HINCRBY', p .. ':c', ev .. ':' .. b, n) end
  end
  for _, c in ipairs(shardCounts(p, ev)) do out[#out+1] = c end
end
return out`)

// considerBatch bounds the devices one peek or decide call carries, so
// that one script never holds its shard for long.
const considerBatch = 256

// shardGroups splits device indexes by shard into groups of at most
// size.
func shardGroups(ids []string, idx []int, size int) [][]int {
	byShard := map[int][]int{}
	for _, i := range idx {
		s := shardOf(ids[i])
		byShard[s] = append(byShard[s], i)
	}
	var out [][]int
	for _, g := range byShard {
		for len(g) > size {
			out = append(out, g[:size])
			g = g[size:]
		}
		out = append(out, g)
	}
	return out
}

// Consider decides for each device (see hotzone.Decisions). A device
// whose state this node keeps (see stateCache) is decided at once; the
// others are read first, one peek call per shard (of up to
// considerBatch devices) in one pipelined batch. Then one call per
// shard writes each device's decision if nothing it was made on
// changed, and answers the state of those where something did, which
// are decided again. So a decision costs one round trip, or two when
// this node did not know the device or knew it stale; decide may run
// more than once for a device, as the contract allows.
func (db *DB) Consider(ctx context.Context, ev hotzone.Event, deviceIDs []string, decideFn hotzone.DecideFunc) ([]hotzone.Outcome, error) {
	if _, ok := db.brands.Brand(ev.BrandID); !ok {
		return nil, notFound("brand")
	}
	out := make([]hotzone.Outcome, len(deviceIDs))
	for i, id := range deviceIDs {
		out[i] = hotzone.Outcome{DeviceID: id}
	}
	// Liveness from the view: this node's own ends are in it at once,
	// another node's within ViewLag, and a device queued for an event
	// that ended meanwhile is expired by the outbox's consumer (the
	// contract's race), so the decision needs no round trip to the
	// brand's slot.
	if live, _, ok := db.events.Get(ev.ID); !ok || live.BrandID != ev.BrandID {
		return out, nil
	}
	now := db.now().UTC()
	// A device this node saw notified for the event is answered without
	// a round trip: a ping that triggers nothing new costs none.
	todo := make([]int, 0, len(deviceIDs))
	// states[i] is what device i is decided on; read[i] tells that it
	// was read in this call rather than kept from before.
	states := make([]*devState, len(deviceIDs))
	read := make([]bool, len(deviceIDs))
	for i, id := range deviceIDs {
		if db.notified.has(ev.ID, ev.BrandID, id) {
			out[i].Reason = hotzone.ReasonAlreadyNotified
			continue
		}
		todo = append(todo, i)
		states[i] = db.states.get(ev.BrandID, id)
	}
	lanes := map[hotzone.Provider]bool{}
	var scratch []byte // each entry's JSON, before its string
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == casRetries {
			return nil, errContended
		}
		if err := db.peekStates(ctx, ev, deviceIDs, todo, states, read); err != nil {
			return nil, err
		}
		type pending struct {
			i    int
			o    hotzone.Outcome
			next *devState // the device's state once written
		}
		var (
			writes []valkey.LuaExec
			wrote  [][]pending
			queues []bool
			known  []int
			again  []int // to read and decide again
		)
		for _, i := range todo {
			if states[i] != nil { // else unknown or erased
				known = append(known, i)
			}
		}
		for _, idx := range shardGroups(deviceIDs, known, considerBatch) {
			args := make([]string, 0, 3+decideArgs*len(idx))
			run := newIDRun(now)
			args = append(args, ev.ID, millis(now), "") // the run's member, once it is known
			ps := make([]pending, 0, len(idx))
			queues1 := false
			// One entry is reused for every device: declared in the
			// loop, it escaped to the heap once a device (decodeEntry and
			// appendEntry take its address), a tenth of what a fan-out's
			// decisions allocated.
			var n hotzone.Notification
			for _, i := range idx {
				id, st := deviceIDs[i], states[i]
				nid, body := st.entryFor(ev.ID)
				o := hotzone.Outcome{DeviceID: id}
				// An answer that writes nothing is given only on a state
				// read now: nothing checks a kept one.
				verify := func() {
					states[i] = nil
					again = append(again, i)
				}
				n = hotzone.Notification{}
				if nid != "" {
					if err := decodeEntry(body, &n); err != nil {
						return nil, fmt.Errorf("redis: notification %s: %w", nid, err)
					}
					if n.Decided() {
						if !read[i] {
							verify()
							continue
						}
						out[i] = hotzone.Standing(&n)
						if n.Status != hotzone.StatusSuppressed {
							db.notified.add(ev.ID, ev.BrandID, id)
						}
						continue
					}
					o.Prev = n.Status
				} else {
					n = hotzone.Notification{ID: run.next(), BrandID: ev.BrandID, EventID: ev.ID, StoreID: ev.StoreID, DeviceID: id, CreatedAt: now}
				}
				times := decodeHistory(st.hist)
				reason := decideFn(st.dev, times)
				n.Provider = st.dev.Provider
				queue, newHist := "0", ""
				if reason != "" {
					o.Status, o.Reason = hotzone.StatusSuppressed, reason
					if n.Status == hotzone.StatusSuppressed && n.Reason == reason {
						if !read[i] {
							verify()
							continue
						}
						out[i] = o // the same hold again: nothing to write
						continue
					}
					n.Status, n.Reason = hotzone.StatusSuppressed, reason
					if reason == hotzone.ReasonHoldout {
						n.DecidedAt = now
					}
				} else {
					o.Status = hotzone.StatusQueued
					n.Status, n.Reason, n.DecidedAt = hotzone.StatusQueued, "", now
					n.Variant = hotzone.ChooseVariant(ev.Localized, st.dev.Locale)
					queue, queues1 = "1", true
					newHist = encodeHistory(append(times, now), now)
				}
				o.Changed = true
				scratch = appendEntry(scratch[:0], &n)
				next := string(scratch)
				prevBucket := ""
				if o.Prev != "" {
					prevBucket = bucket(o.Prev)
				}
				args = append(args, id, st.rv, st.hist, nid, body, n.ID, next, bucket(n.Status), prevBucket, queue, newHist,
					string(n.Provider), millis(n.CreatedAt))
				// A queued device's entry is not kept: the notified set
				// answers its next decisions, and the send changes it.
				ns := &devState{dev: st.dev, rv: st.rv, hist: newHist}
				if queue == "0" {
					ns.hist, ns.ev, ns.nid, ns.body = st.hist, ev.ID, n.ID, next
				}
				ps = append(ps, pending{i, o, ns})
			}
			if len(ps) > 0 {
				args[2] = run.member()
				writes = append(writes, valkey.LuaExec{Keys: []string{db.devShard(ev.BrandID, deviceIDs[idx[0]])}, Args: args})
				wrote = append(wrote, ps)
				queues = append(queues, queues1)
			}
		}
		// A queued decision lost in a failover would be decided and
		// sent again: those writes wait for the replicas, in the same
		// round trip.
		ws, err := db.execWaiting(ctx, decide, writes, queues)
		if err != nil {
			return nil, fmt.Errorf("redis: consider: %w", err)
		}
		todo = again
		for w, r := range ws {
			vals, err := r.ToArray()
			if err != nil {
				return nil, fmt.Errorf("redis: consider: %w", err)
			}
			ps := wrote[w]
			if len(vals) != len(ps) && len(vals) != len(ps)+len(bucketNames)+1 {
				return nil, fmt.Errorf("redis: consider: decide answered %d values for %d devices", len(vals), len(ps))
			}
			for k, p := range ps {
				id := deviceIDs[p.i]
				if !vals[k].IsArray() { // written
					out[p.i] = p.o
					db.states.put(ev.BrandID, id, p.next)
					if p.o.Status == hotzone.StatusQueued {
						db.notified.add(ev.ID, ev.BrandID, id)
						if p.next.dev.Provider != "" {
							lanes[p.next.dev.Provider] = true
						}
					}
					continue
				}
				// Something moved on: decide again on the state as it is.
				cur, err := vals[k].AsStrSlice()
				if err != nil {
					return nil, fmt.Errorf("redis: consider: decide's answer for %s: %w", id, err)
				}
				st, err := stateOf(ev.BrandID, ev.ID, id, cur)
				if err != nil {
					return nil, err
				}
				states[p.i], read[p.i] = st, true
				if st == nil {
					db.states.forget(ev.BrandID, id)
					continue // erased meanwhile
				}
				db.states.put(ev.BrandID, id, st)
				todo = append(todo, p.i)
			}
			if len(vals) > len(ps) {
				counts := make([]int64, 0, len(vals)-len(ps))
				for _, v := range vals[len(ps):] {
					c, err := v.AsInt64()
					if err != nil {
						return nil, fmt.Errorf("redis: consider: %w", err)
					}
					counts = append(counts, c)
				}
				db.setShardCounts(ev.ID, shardOf(deviceIDs[ps[0].i]), counts)
			}
		}
	}
	if err := db.addLanes(ctx, ev.BrandID, lanes); err != nil {
		return nil, err
	}
	return out, nil
}

// peekStates reads, in one peek call per shard group pipelined, the
// state of each device in todo that has none (an unknown device still
// has none after), and keeps what it read.
func (db *DB) peekStates(ctx context.Context, ev hotzone.Event, ids []string, todo []int, states []*devState, read []bool) error {
	var unread []int
	for _, i := range todo {
		if states[i] == nil {
			unread = append(unread, i)
		}
	}
	if len(unread) == 0 {
		return nil
	}
	groups := shardGroups(ids, unread, considerBatch)
	calls := make([]valkey.LuaExec, len(groups))
	for g, idx := range groups {
		args := make([]string, 0, 1+len(idx))
		args = append(args, ev.ID)
		for _, i := range idx {
			args = append(args, ids[i])
		}
		calls[g] = valkey.LuaExec{Keys: []string{db.devShard(ev.BrandID, ids[idx[0]])}, Args: args}
	}
	rs, err := db.execMulti(ctx, peek, calls)
	if err != nil {
		return fmt.Errorf("redis: consider: %w", err)
	}
	for g, idx := range groups {
		vals, err := strs(rs[g])
		if err != nil {
			return fmt.Errorf("redis: consider: %w", err)
		}
		if len(vals) != stateLen*len(idx) {
			return fmt.Errorf("redis: consider: peek answered %d values for %d devices", len(vals), len(idx))
		}
		for k, i := range idx {
			st, err := stateOf(ev.BrandID, ev.ID, ids[i], vals[stateLen*k:stateLen*(k+1)])
			if err != nil {
				return err
			}
			states[i], read[i] = st, true
			if st != nil {
				db.states.put(ev.BrandID, ids[i], st)
			}
		}
	}
	return nil
}

// addLanes adds lanes to the global set of lanes, once per node.
func (db *DB) addLanes(ctx context.Context, brandID string, ps map[hotzone.Provider]bool) error {
	var cmds []valkey.Completed
	for p := range ps {
		k := brandID + "\x00" + string(p)
		if _, ok := db.lanes.Load(k); ok {
			continue
		}
		cmds = append(cmds, db.cmd("SADD", []string{db.gkey("lanes")}, k))
	}
	if _, err := db.doMulti(ctx, cmds); err != nil {
		return fmt.Errorf("redis: add lane: %w", err)
	}
	for p := range ps {
		db.lanes.Store(brandID+"\x00"+string(p), true)
	}
	return nil
}

// decodeHistory reads queue times, "nanos,nanos,…", oldest first.
func decodeHistory(s string) []time.Time {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := make([]time.Time, 0, len(parts)+1)
	for _, p := range parts {
		if ns, err := strconv.ParseInt(p, 10, 64); err == nil {
			out = append(out, time.Unix(0, ns).UTC())
		}
	}
	return out
}

// encodeHistory spells queue times, dropping those older than the
// window the contract keeps.
func encodeHistory(h []time.Time, now time.Time) string {
	var b strings.Builder
	for _, t := range h {
		if now.Sub(t) > hotzone.HistoryWindow {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(t.UnixNano(), 10))
	}
	return b.String()
}

// expire makes an event's queued entries in a shard expired, going
// through the event's entries there (ending costs that once, rather than
// every decision keeping a set of the queued ones). KEYS[1]: the shard.
// ARGV: event.
var expire = newScript(countsLua + entriesLua + `
local p = KEYS[1]
local n = 0
local ids = {}
for _, m in ipairs(redis.call('ZRANGE', p .. ':le:' .. ARGV[1], 0, -1)) do
  for _, id in ipairs(entriesOf(m)) do ids[#ids+1] = id end
end
for _, id in ipairs(ids) do
  local body = redis.call('HGET', p .. ':n', id)
  if body then
    local x = cjson.decode(body)
    if x.status == 'queued' then
      x.status = 'expired'
      x.next_attempt = nil
      redis.call('HSET', p .. ':n', id, cjson.encode(x))
      redis.call('ZREM', p .. ':o:' .. x.provider, id)
      redis.call('HDEL', p .. ':cl', id)
      n = n + 1
    end
  end
end
if n > 0 then
  redis.call('HINCRBY', p .. ':c', ARGV[1] .. ':queued', -n)
  redis.call('HINCRBY', p .. ':c', ARGV[1] .. ':expired', n)
  shardCounts(p, ARGV[1])
end
return n`)

// expireQueued expires an ended event's queued entries in every shard.
func (db *DB) expireQueued(ctx context.Context, brandID, eventID string) error {
	if _, err := db.execMulti(ctx, expire, db.shardCalls(brandID, eventID)); err != nil {
		return fmt.Errorf("redis: expire queued: %w", err)
	}
	return nil
}

// Lanes lists the lanes with queued notifications: those ever queued
// to (a global set) that have any in some shard now.
func (db *DB) Lanes(ctx context.Context) ([]hotzone.Lane, error) {
	all, err := db.do(ctx, db.cmd("SMEMBERS", []string{db.gkey("lanes")})).AsStrSlice()
	if err != nil && !valkey.IsValkeyNil(err) {
		return nil, fmt.Errorf("redis: lanes: %w", err)
	}
	slices.Sort(all)
	lanes := make([]hotzone.Lane, len(all))
	cmds := make([]valkey.Completed, 0, len(all)*Shards)
	for i, k := range all {
		b, p, _ := strings.Cut(k, "\x00")
		lanes[i] = hotzone.Lane{BrandID: b, Provider: hotzone.Provider(p)}
		for s := range Shards {
			cmds = append(cmds, db.cmd("ZCARD", []string{db.shard(b, s) + ":o:" + p}))
		}
	}
	rs, err := db.doMulti(ctx, cmds)
	if err != nil {
		return nil, fmt.Errorf("redis: lanes: %w", err)
	}
	var out []hotzone.Lane
	for i, l := range lanes {
		for s := range Shards {
			if n, _ := rs[i*Shards+s].AsInt64(); n > 0 {
				out = append(out, l)
				break
			}
		}
	}
	return out, nil
}

// claim leases the given ids of one shard's outbox if they are still
// due. KEYS[1]: the shard. ARGV: provider, now (ms), lease end (ms),
// claim, ids…. Answers id, entry, id, entry, … for those it leased. It
// reads and writes the shard's keys once for all the ids (multi-member
// commands): per-id calls were most of a claim's cost.
var claim = newScript(`
local p = KEYS[1]
local o = p .. ':o:' .. ARGV[1]
local now = tonumber(ARGV[2])
local ids = {}
for i = 5, #ARGV do ids[#ids+1] = ARGV[i] end
if #ids == 0 then return {} end
local due, seen = {}, {}
for k, s in ipairs(redis.call('ZMSCORE', o, unpack(ids))) do
  -- An id given twice is leased once.
  if s and tonumber(s) <= now and not seen[ids[k]] then
    seen[ids[k]] = true
    due[#due+1] = ids[k]
  end
end
if #due == 0 then return {} end
local bodies = redis.call('HMGET', p .. ':n', unpack(due))
local out, leased, claims = {}, {}, {}
for k, id in ipairs(due) do
  if bodies[k] then
    leased[#leased+1] = ARGV[3]
    leased[#leased+1] = id
    claims[#claims+1] = id
    claims[#claims+1] = ARGV[4]
    out[#out+1] = id
    out[#out+1] = bodies[k]
  end
end
if #leased > 0 then
  redis.call('ZADD', o, unpack(leased))
  redis.call('HSET', p .. ':cl', unpack(claims))
end
return out`)

// dueEntry is an outbox entry read for a claim: its id, due time (ms)
// and shard.
type dueEntry struct {
	id    string
	score float64
	shard int
}

// sortDue orders entries by due time, then id.
func sortDue(all []dueEntry) {
	slices.SortFunc(all, func(a, b dueEntry) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
}

// Claim hands out a lane's due notifications, oldest due first, leased
// until now+lease: the earliest due of every shard are read, the first
// limit of them picked, and each shard's picks leased by a script that
// skips any another consumer took meanwhile.
//
// Each shard is first asked for a fair share of limit (twice limit over
// the shards), not for limit itself: asking every shard for limit read
// Shards times what a claim hands out, which under a fan-out was a fifth
// of the primaries' CPU. A shard that filled its share and whose last
// entry is earlier than the limit-th pick may hold more that belong
// among the picks: those are asked once more for the rest, which a
// shard can hold at most, so the picks are those of reading limit from
// each, up to the order of entries due in the same millisecond.
func (db *DB) Claim(ctx context.Context, lane hotzone.Lane, now time.Time, limit int, lease time.Duration) ([]hotzone.Notification, error) {
	if limit <= 0 {
		return nil, nil
	}
	nowMS := millis(now)
	key := func(s int) string { return db.shard(lane.BrandID, s) + ":o:" + string(lane.Provider) }
	share := min(limit, max(8, (2*limit+Shards-1)/Shards))
	var (
		all  []dueEntry
		got  [Shards]int
		last [Shards]float64
	)
	read := func(shards []int, offset func(int) int, count func(int) int) error {
		cmds := make([]valkey.Completed, len(shards))
		for i, s := range shards {
			cmds[i] = db.cmd("ZRANGE", []string{key(s)}, "-inf", nowMS, "BYSCORE", "LIMIT",
				strconv.Itoa(offset(s)), strconv.Itoa(count(s)), "WITHSCORES")
		}
		rs, err := db.doMulti(ctx, cmds)
		if err != nil {
			return fmt.Errorf("redis: claim: %w", err)
		}
		for i, r := range rs {
			zs, err := r.AsZScores()
			if err != nil && !valkey.IsValkeyNil(err) {
				return fmt.Errorf("redis: claim: %w", err)
			}
			s := shards[i]
			for _, z := range zs {
				all = append(all, dueEntry{z.Member, z.Score, s})
				last[s] = z.Score
			}
			got[s] += len(zs)
		}
		return nil
	}
	every := make([]int, Shards)
	for s := range every {
		every[s] = s
	}
	if err := read(every, func(int) int { return 0 }, func(int) int { return share }); err != nil {
		return nil, err
	}
	if share < limit {
		sortDue(all)
		cut := math.Inf(1)
		if len(all) >= limit {
			cut = all[limit-1].score
		}
		var more []int
		for s := range Shards {
			// Past entries tying with the cut are no older than it:
			// same-millisecond entries go in any order, and under a
			// fan-out (thousands due in one millisecond) asking every
			// shard again for them read most of the outbox per claim.
			if got[s] == share && last[s] < cut {
				more = append(more, s)
			}
		}
		if len(more) > 0 {
			if err := read(more, func(s int) int { return got[s] }, func(s int) int { return limit - got[s] }); err != nil {
				return nil, err
			}
		}
	}
	sortDue(all)
	all = all[:min(len(all), limit)]
	byShard := map[int][]string{}
	for _, d := range all {
		byShard[d.shard] = append(byShard[d.shard], d.id)
	}
	calls := make([]valkey.LuaExec, 0, len(byShard))
	claims := make([]string, 0, len(byShard))
	end := millis(now.Add(lease))
	for s, ids := range byShard {
		// A call leases at most considerBatch: Lua's unpack, which
		// hands the ids to ZMSCORE and HMGET, takes at most a few
		// thousand, and a claim may ask for up to --push-concurrency.
		for len(ids) > 0 {
			part := ids[:min(len(ids), considerBatch)]
			ids = ids[len(part):]
			c := strconv.Itoa(s) + ":" + hotzone.NewID(now)
			claims = append(claims, c)
			calls = append(calls, valkey.LuaExec{Keys: []string{db.shard(lane.BrandID, s)},
				Args: append([]string{string(lane.Provider), nowMS, end, c}, part...)})
		}
	}
	cs, err := db.execMulti(ctx, claim, calls)
	if err != nil {
		return nil, fmt.Errorf("redis: claim: %w", err)
	}
	order := make(map[string]int, len(all))
	for i, d := range all {
		order[d.id] = i
	}
	var out []hotzone.Notification
	for i, r := range cs {
		vals, err := strs(r)
		if err != nil {
			return nil, fmt.Errorf("redis: claim: %w", err)
		}
		kept := make(map[string]claimedEntry, len(vals)/2)
		for j := 0; j+1 < len(vals); j += 2 {
			var n hotzone.Notification
			if err := decodeEntry(vals[j+1], &n); err != nil {
				return nil, fmt.Errorf("redis: notification %s: %w", vals[j], err)
			}
			kept[n.ID] = claimedEntry{raw: vals[j+1], n: n}
			n.Claim = claims[i]
			out = append(out, n)
		}
		if len(kept) > 0 {
			db.claimed.keep(claims[i], now, now.Add(lease), kept)
		}
	}
	slices.SortFunc(out, func(a, b hotzone.Notification) int { return order[a.ID] - order[b.ID] })
	return out, nil
}

// recordArgs is how many arguments record takes per result.
const recordArgs = 14

// record applies results under their claims in one shard. KEYS[1]: the
// shard. ARGV, per result: id, claim, status, its bucket, error,
// provider id, next attempt (RFC 3339), due (ms), sent at (RFC 3339 or
// ""); then the entry as claimed, its next JSON, event, device and
// provider ("" each when this node holds no copy of the entry). Answers,
// per result, its entry's event and device ("" and "" when it does not
// apply: gone, claimed again, no longer queued, or an id already given
// earlier in the call); then, for each event a final result moved, its
// id and its counts in the shard (see countsLua).
//
// An entry still as claimed takes the next JSON made by the caller; only
// one changed meanwhile (a visit marked while it was out) is decoded and
// encoded here: JSON in Lua was a third of a result's cost in the shard.
// The shard's keys are read and written once for all the results.
var record = newScript(countsLua + `
local p = KEYS[1]
local ids = {}
for i = 1, #ARGV, 14 do ids[#ids+1] = ARGV[i] end
local out = {}
if #ids == 0 then return out end
local bodies = redis.call('HMGET', p .. ':n', unpack(ids))
local claims = redis.call('HMGET', p .. ':cl', unpack(ids))
local seen, events, moves, entries, unclaimed, requeued, sent = {}, {}, {}, {}, {}, {}, {}
local function list(t, k)
  local l = t[k]
  if not l then l = {}; t[k] = l end
  return l
end
for k, id in ipairs(ids) do
  local i = (k - 1) * 14 + 1
  local ev, dev = '', ''
  local body = bodies[k]
  if body and not seen[id] and claims[k] == ARGV[i+1] then
    local n, nextBody
    if ARGV[i+9] ~= '' and body == ARGV[i+9] then
      n = {status = 'queued', event_id = ARGV[i+11], device_id = ARGV[i+12], provider = ARGV[i+13]}
      nextBody = ARGV[i+10]
    else
      n = cjson.decode(body)
    end
    if n.status == 'queued' then
      seen[id] = true
      if not nextBody then
        n.attempts = (n.attempts or 0) + 1
        if ARGV[i+4] ~= '' then n.last_error = ARGV[i+4] end
        if ARGV[i+5] ~= '' then n.provider_id = ARGV[i+5] end
        if ARGV[i+2] == 'queued' then
          n.next_attempt = ARGV[i+6]
        else
          n.next_attempt = nil
          if ARGV[i+8] ~= '' then n.sent_at = ARGV[i+8] end
        end
      end
      unclaimed[#unclaimed+1] = id
      if ARGV[i+2] == 'queued' then
        local l = list(requeued, n.provider)
        l[#l+1] = ARGV[i+7]
        l[#l+1] = id
      else
        local l = list(sent, n.provider)
        l[#l+1] = id
        moves[n.event_id .. ':queued'] = (moves[n.event_id .. ':queued'] or 0) - 1
        local f = n.event_id .. ':' .. ARGV[i+3]
        moves[f] = (moves[f] or 0) + 1
        events[n.event_id] = true
      end
      if not nextBody then
        n.status = ARGV[i+2]
        nextBody = cjson.encode(n)
      end
      entries[#entries+1] = id
      entries[#entries+1] = nextBody
      ev, dev = n.event_id, n.device_id
    end
  end
  out[#out+1] = ev
  out[#out+1] = dev
end
if #entries > 0 then
  redis.call('HSET', p .. ':n', unpack(entries))
  redis.call('HDEL', p .. ':cl', unpack(unclaimed))
end
for prov, l in pairs(requeued) do redis.call('ZADD', p .. ':o:' .. prov, unpack(l)) end
for prov, l in pairs(sent) do redis.call('ZREM', p .. ':o:' .. prov, unpack(l)) end
for f, n in pairs(moves) do
  if n ~= 0 then redis.call('HINCRBY', p .. ':c', f, n) end
end
for ev in pairs(events) do
  out[#out+1] = ev
  for _, c in ipairs(shardCounts(p, ev)) do out[#out+1] = tostring(c) end
end
return out`)

// claimedEntries keeps, per claim this node handed out, its entries as
// read (JSON and decoded) until their results are recorded, so that
// Record sends each entry's next JSON for the shard to check and write.
// A claim never recorded (a send abandoned at shutdown) is forgotten a
// while after its lease ends.
type claimedEntries struct {
	mu    sync.Mutex
	m     map[string]*claimGroup // claim -> its entries
	swept time.Time
}

type claimGroup struct {
	until   time.Time
	entries map[string]claimedEntry // id -> entry
}

type claimedEntry struct {
	raw string
	n   hotzone.Notification
}

// claimGrace is how long past its lease a claim's entries are kept.
const claimGrace = time.Minute

// keep notes a claim's entries until a while after until; now is the
// claim's clock, which also judges the claims kept before.
func (c *claimedEntries) keep(claim string, now, until time.Time, entries map[string]claimedEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*claimGroup{}
	}
	c.m[claim] = &claimGroup{until: until.Add(claimGrace), entries: entries}
	if d := now.Sub(c.swept); d >= 0 && d < 10*time.Second {
		return
	}
	c.swept = now
	for k, g := range c.m {
		if now.After(g.until) {
			delete(c.m, k)
		}
	}
}

// take hands back and forgets a claimed entry.
func (c *claimedEntries) take(claim, id string) (claimedEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.m[claim]
	if g == nil {
		return claimedEntry{}, false
	}
	e, ok := g.entries[id]
	if ok {
		delete(g.entries, id)
		if len(g.entries) == 0 {
			delete(c.m, claim)
		}
	}
	return e, ok
}

// Record applies results (see hotzone.Outbox): one script call per
// shard (of up to considerBatch results), all in one pipelined batch;
// then it clears the tokens found invalid.
func (db *DB) Record(ctx context.Context, ds []hotzone.Delivery) error {
	type group struct {
		brand string
		shard int
		idx   []int
	}
	groups := map[string]*group{}
	var order []*group
	for i, d := range ds {
		sh, _, ok := strings.Cut(d.Claim, ":")
		s, err := strconv.Atoi(sh)
		if !ok || err != nil || s < 0 || s >= Shards {
			continue // not a claim of ours: nothing to apply
		}
		k := d.BrandID + "\x00" + sh
		g := groups[k]
		if g == nil || len(g.idx) == considerBatch {
			g = &group{brand: d.BrandID, shard: s}
			groups[k] = g
			order = append(order, g)
		}
		g.idx = append(g.idx, i)
	}
	calls := make([]valkey.LuaExec, len(order))
	final := make([]bool, len(order))
	for c, g := range order {
		args := make([]string, 0, recordArgs*len(g.idx))
		for _, i := range g.idx {
			d := &ds[i]
			final[c] = final[c] || d.Status != hotzone.StatusQueued
			next, sent := "", ""
			if d.Status == hotzone.StatusQueued {
				next = d.NextAttempt.UTC().Format(time.RFC3339Nano)
			}
			if d.Status == hotzone.StatusSent || d.Status == hotzone.StatusDryRun {
				sent = d.At.UTC().Format(time.RFC3339Nano)
			}
			args = append(args, d.NotificationID, d.Claim, string(d.Status), bucket(d.Status), d.Error, d.ProviderID, next,
				millis(d.NextAttempt), sent)
			if e, ok := db.claimed.take(d.Claim, d.NotificationID); ok {
				after := e.n
				after.Apply(d)
				args = append(args, e.raw, encodeEntry(&after), e.n.EventID, e.n.DeviceID, string(e.n.Provider))
			} else {
				args = append(args, "", "", "", "", "")
			}
		}
		calls[c] = valkey.LuaExec{Keys: []string{db.shard(g.brand, g.shard)}, Args: args}
	}
	// A final result lost in a failover would send again: those writes
	// wait for the replicas, in their own round trip.
	rs, err := db.execWaiting(ctx, record, calls, final)
	if err != nil {
		return fmt.Errorf("redis: record: %w", err)
	}
	per := len(bucketNames) + 1
	for c, r := range rs {
		g := order[c]
		vals, err := strs(r)
		if err != nil {
			return fmt.Errorf("redis: record: %w", err)
		}
		if len(vals) < 2*len(g.idx) || (len(vals)-2*len(g.idx))%(1+per) != 0 {
			return fmt.Errorf("redis: record: %d values for %d results", len(vals), len(g.idx))
		}
		for k, i := range g.idx {
			d := ds[i]
			if vals[2*k] == "" {
				continue
			}
			if d.Status == hotzone.StatusInvalidToken {
				if err := db.dropToken(ctx, d.BrandID, vals[2*k+1], "", "", d.TokenInvalidSince); err != nil {
					return err
				}
			}
		}
		for rest := vals[2*len(g.idx):]; len(rest) > 0; rest = rest[1+per:] {
			counts := make([]int64, per)
			for j := range per {
				counts[j], _ = strconv.ParseInt(rest[1+j], 10, 64)
			}
			db.setShardCounts(rest[0], g.shard, counts)
		}
	}
	return nil
}

// release makes a shard's backing-off entries of a provider due now;
// those under a live lease stay leased. KEYS[1]: the shard. ARGV:
// provider, now (ms).
var release = newScript(`
local p = KEYS[1]
local o = p .. ':o:' .. ARGV[1]
for _, id in ipairs(redis.call('ZRANGE', o, '(' .. ARGV[2], '+inf', 'BYSCORE')) do
  if not redis.call('HGET', p .. ':cl', id) then
    redis.call('ZADD', o, ARGV[2], id)
    local body = redis.call('HGET', p .. ':n', id)
    if body then
      local x = cjson.decode(body)
      x.next_attempt = nil
      redis.call('HSET', p .. ':n', id, cjson.encode(x))
    end
  end
end
return 1`)

// Release makes every backing-off notification of the lane due now.
func (db *DB) Release(ctx context.Context, lane hotzone.Lane) error {
	if _, err := db.execMulti(ctx, release, db.shardCalls(lane.BrandID, string(lane.Provider), millis(db.now()))); err != nil {
		return fmt.Errorf("redis: release: %w", err)
	}
	return nil
}

// oldestQueued answers a shard's oldest queued entry's creation time
// (ms) from its oldest-queued index, taking out of the index, oldest
// first, the members none of whose entries is queued any more: results,
// expiries, erasures and pruning leave them there, so that a decision
// adds one member per run and nothing else keeps them. An entry is
// queued while it is in an outbox (claimed or not, and backing off), as
// every script that changes a status keeps it. It looks at no more than
// ARGV[1] entries. KEYS[1]: the shard. Answers {"1", ms} when it found
// the oldest, {"", ""} when nothing is queued, {"0", ""} when it
// stopped at the bound (call again).
var oldestQueued = newScript(entriesLua + `
local p = KEYS[1]
local budget = tonumber(ARGV[1])
local looked = 0
while true do
  local top = redis.call('ZRANGE', p .. ':oq', 0, 0, 'WITHSCORES')
  if #top == 0 then return {'', ''} end
  local ids = entriesOf(top[1])
  for from = 1, #ids, 256 do
    local part = {unpack(ids, from, math.min(#ids, from + 255))}
    for _, prov in ipairs({'` + string(hotzone.ProviderAPNs) + `', '` + string(hotzone.ProviderFCM) + `'}) do
      for _, s in ipairs(redis.call('ZMSCORE', p .. ':o:' .. prov, unpack(part))) do
        if s then return {'1', top[2]} end
      end
    end
  end
  looked = looked + #ids
  redis.call('ZREM', p .. ':oq', top[1])
  if looked >= budget then return {'0', ''} end
end`)

// oldestBudget is how many entries one oldestQueued call looks at: a
// variable so that a test can make Stats call again.
var oldestBudget = 4096

// Stats counts the views, and the devices and outbox in every shard of
// every brand, in one pipelined batch, then finds the oldest queued
// entry of each shard (oldestQueued), in as many more as it takes to
// clear the oldest-queued index of what left the queue.
func (db *DB) Stats(ctx context.Context) (hotzone.Stats, error) {
	s := hotzone.Stats{Brands: db.brands.Len(), Stores: db.stores.Len(), LiveEvents: db.events.Len()}
	ids := db.brands.IDs()
	const per = 3
	cmds := make([]valkey.Completed, 0, len(ids)*Shards*per)
	var shards []string
	for _, id := range ids {
		for i := range Shards {
			sh := db.shard(id, i)
			shards = append(shards, sh)
			cmds = append(cmds, db.cmd("SCARD", []string{sh + ":devs"}), db.cmd("ZCARD", []string{sh + ":o:apns"}),
				db.cmd("ZCARD", []string{sh + ":o:fcm"}))
		}
	}
	rs, err := db.doMulti(ctx, cmds)
	if err != nil {
		return s, fmt.Errorf("redis: stats: %w", err)
	}
	for i := 0; i < len(rs); i += per {
		n, _ := rs[i].AsInt64()
		a, _ := rs[i+1].AsInt64()
		f, _ := rs[i+2].AsInt64()
		s.Devices += int(n)
		s.OutboxDepth += int(a + f)
	}
	oldest := int64(-1)
	budget := strconv.Itoa(oldestBudget)
	for len(shards) > 0 {
		calls := make([]valkey.LuaExec, len(shards))
		for i, sh := range shards {
			calls[i] = valkey.LuaExec{Keys: []string{sh}, Args: []string{budget}}
		}
		rs, err := db.execMulti(ctx, oldestQueued, calls)
		if err != nil {
			return s, fmt.Errorf("redis: stats: %w", err)
		}
		var again []string
		for i, r := range rs {
			v, err := strs(r)
			if err != nil {
				return s, fmt.Errorf("redis: stats: %w", err)
			}
			if len(v) != 2 {
				return s, fmt.Errorf("redis: stats: oldestQueued answered %q", v)
			}
			switch v[0] {
			case "0":
				again = append(again, shards[i])
			case "1":
				if ms, err := strconv.ParseFloat(v[1], 64); err == nil && (oldest < 0 || int64(ms) < oldest) {
					oldest = int64(ms)
				}
			}
		}
		shards = again
	}
	if oldest >= 0 {
		s.OutboxOldest = time.UnixMilli(oldest).UTC()
	}
	return s, nil
}

// notifiedCache remembers, per live event, the devices this node saw
// notified (queued or later: a status that never goes back), so that
// their next pings in the fence cost no round trip. An event's entries
// go when it ends here; a device's when it is erased anywhere (the
// erasure is published; should that message be lost, a device of the
// same id registered anew would be taken for notified until the event
// ends).
type notifiedCache struct {
	m sync.Map // event id -> *notifiedSet
}

// notifiedSet is one event's devices, in parts each under a lock of
// its own: plain maps of device ids rather than a sync.Map, whose node
// per entry made a 100,000-device fan-out's set a large part of what
// the collector marked.
type notifiedSet struct {
	brandID string // an event belongs to one brand
	seed    maphash.Seed
	parts   [notifiedParts]struct {
		mu sync.Mutex
		m  map[string]struct{}
	}
}

const notifiedParts = 16

// with runs fn on the map of deviceID's part, under that part's lock.
func (s *notifiedSet) with(deviceID string, fn func(m map[string]struct{})) {
	p := &s.parts[maphash.String(s.seed, deviceID)%notifiedParts]
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.m)
}

func (c *notifiedCache) has(eventID, brandID, deviceID string) bool {
	v, ok := c.m.Load(eventID)
	if !ok {
		return false
	}
	s := v.(*notifiedSet)
	if s.brandID != brandID {
		return false
	}
	s.with(deviceID, func(m map[string]struct{}) { _, ok = m[deviceID] })
	return ok
}

func (c *notifiedCache) add(eventID, brandID, deviceID string) {
	v, ok := c.m.Load(eventID)
	if !ok {
		s := &notifiedSet{brandID: brandID, seed: maphash.MakeSeed()}
		for i := range s.parts {
			s.parts[i].m = map[string]struct{}{}
		}
		v, _ = c.m.LoadOrStore(eventID, s)
	}
	s := v.(*notifiedSet)
	if s.brandID != brandID {
		return
	}
	s.with(deviceID, func(m map[string]struct{}) {
		if _, ok := m[deviceID]; !ok {
			// Its own copy: an id sliced from a larger buffer would keep
			// that buffer alive for the event's life.
			m[strings.Clone(deviceID)] = struct{}{}
		}
	})
}

// ended forgets an event.
func (c *notifiedCache) ended(eventID string) { c.m.Delete(eventID) }

// erased forgets a device in every event of its brand.
func (c *notifiedCache) erased(brandID, deviceID string) {
	c.m.Range(func(_, v any) bool {
		s := v.(*notifiedSet)
		if s.brandID == brandID {
			s.with(deviceID, func(m map[string]struct{}) { delete(m, deviceID) })
		}
		return true
	})
}
