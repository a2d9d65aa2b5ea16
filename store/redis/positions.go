package redis

import (
	"context"
	"fmt"
	"sync"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// positions are the pings this node holds behind: written every
// FlushInterval in one pipelined batch, so a ping that triggers nothing
// costs no round trip of its own. A crash loses what is held (at most
// one interval), as the contract allows.
type positions struct {
	mu   sync.Mutex
	held map[devRef]heldPos
	// full asks the flush loop for a flush now: signalled at every
	// flushEarly devices held, and when a fan-out that held positions
	// back is done (FanOutDone).
	full chan struct{}
	// flushing is what a flush took and is writing: still read from here
	// until it is in the cluster, or a read in between would miss it.
	flushing map[devRef]heldPos
}

type devRef struct{ brand, device string }

// heldPos is what is held for a device. The maps keep it by value: a
// pointer to it and one to its qualifying position were two heap
// objects a ping, for the collector to mark while a burst was held.
type heldPos struct {
	last    hotzone.Position
	qual    hotzone.Position
	hasQual bool
}

// flushEarly is how many devices' positions held make a flush start at
// once: four full putPositions calls for each of a brand's shards. A
// steady load of tens of thousands of pings a second still goes out by
// the interval, batched as before (ping-ratio's p99 did not move); a
// burst goes out while it comes, where held to the interval it made
// one flush of all of it that loaded every primary at once, as a
// fan-out right after it found. A variable so that tests can lower it.
var flushEarly = 4 * Shards * flushBatch

func (ps *positions) init() {
	ps.held = map[devRef]heldPos{}
	ps.full = make(chan struct{}, 1)
}

// record keeps p unless a newer report is held.
func (ps *positions) record(brandID, deviceID string, p hotzone.Position, qualifying bool) {
	ref := devRef{brandID, deviceID}
	p.SpeedMPS = nil // positions do not keep it
	ps.mu.Lock()
	defer ps.mu.Unlock()
	h, ok := ps.held[ref]
	if !ok {
		h = heldPos{last: p}
	} else if p.TS.After(h.last.TS) {
		h.last = p
	}
	if qualifying && (!h.hasQual || p.TS.After(h.qual.TS)) {
		h.qual, h.hasQual = p, true
	}
	ps.held[ref] = h
	// Every flushEarly devices, not only the first: a flush held back
	// for a fan-out (see fanningOut) hears again as more arrive.
	if !ok && len(ps.held)%flushEarly == 0 {
		select {
		case ps.full <- struct{}{}:
		default: // already asked for
		}
	}
}

// drop forgets what is held for an erased device.
func (ps *positions) drop(brandID, deviceID string) {
	ps.mu.Lock()
	delete(ps.held, devRef{brandID, deviceID})
	delete(ps.flushing, devRef{brandID, deviceID})
	ps.mu.Unlock()
}

// lookup is what is held for a device, the newest of held and being
// flushed; callers hold mu.
func (ps *positions) lookup(ref devRef) (heldPos, bool) {
	h, hok := ps.held[ref]
	f, fok := ps.flushing[ref]
	switch {
	case !hok && !fok:
		return heldPos{}, false
	case !fok:
		return h, true
	case !hok:
		return f, true
	}
	out := f
	if h.last.TS.After(out.last.TS) {
		out.last = h.last
	}
	if h.hasQual && (!out.hasQual || h.qual.TS.After(out.qual.TS)) {
		out.qual, out.hasQual = h.qual, true
	}
	return out, true
}

// overlay answers the stored position with what is held, where newer.
func (ps *positions) overlay(brandID, deviceID string, stored *hotzone.DevicePosition) *hotzone.DevicePosition {
	ps.mu.Lock()
	cp, ok := ps.lookup(devRef{brandID, deviceID})
	ps.mu.Unlock()
	if !ok {
		return stored
	}
	out := &hotzone.DevicePosition{Last: cp.last}
	if stored != nil {
		*out = *stored
		if cp.last.TS.After(stored.Last.TS) {
			out.Last = cp.last
		}
	}
	if cp.hasQual && (out.Qualifying == nil || cp.qual.TS.After(out.Qualifying.TS)) {
		q := cp.qual
		out.Qualifying = &q
	}
	return out
}

// heldQual is what a device's newest qualifying position held says of
// a fence: its time (nanos) and whether it is inside.
type heldQual struct {
	ns int64
	in bool
}

// heldQuals answers heldQual for each device of a brand with a
// qualifying position held, in telling whether one is inside (called
// under the lock). A time and a flag rather than a copy of the
// position: a fan-out's search, with 100,000 devices held, made that
// copy its largest allocation, 39 MB.
func (ps *positions) heldQuals(brandID string, in func(hotzone.Position) bool) map[string]heldQual {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := 0
	for _, m := range []map[devRef]heldPos{ps.flushing, ps.held} {
		n += len(m)
	}
	out := make(map[string]heldQual, n)
	for _, m := range []map[devRef]heldPos{ps.flushing, ps.held} {
		for ref, h := range m {
			if ref.brand != brandID || !h.hasQual {
				continue
			}
			ns := h.qual.TS.UnixNano()
			if cur, ok := out[ref.device]; !ok || ns > cur.ns {
				out[ref.device] = heldQual{ns, in(h.qual)}
			}
		}
	}
	return out
}

// take hands over up to limit devices held to a flush; they stay
// readable until the flush calls flushed.
func (ps *positions) take(limit int) map[devRef]heldPos {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := ps.held
	if len(out) <= limit {
		ps.held = make(map[devRef]heldPos, len(out))
	} else {
		out = make(map[devRef]heldPos, limit)
		for ref, h := range ps.held {
			out[ref] = h
			delete(ps.held, ref)
			if len(out) == limit {
				break
			}
		}
	}
	ps.flushing = out
	return out
}

// size is how many devices' positions are held (not counting a flush's).
func (ps *positions) size() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.held)
}

// flushed ends a flush: what it took is in the cluster now (or held
// again).
func (ps *positions) flushed() {
	ps.mu.Lock()
	ps.flushing = nil
	ps.mu.Unlock()
}

// tsLua defines tsOf(packed): the time of a packed position (see
// packPos), its last word, "" for none. packPos spells times in 20
// digits after a space, which string.sub takes at once and an anchored
// string.find checks; anything else goes to string.match, whose '%d+$'
// tries every starting position: 1.6 µs a call against 0.45 on a
// primary (100,000 calls in one EVAL), twice per device in a flush.
const tsLua = `
local function tsOf(v)
  if not v then return '' end
  if #v > 20 and string.byte(v, -21) == 32 then
    local t = string.sub(v, -20)
    if string.find(t, '^%d+$') then return t end
  end
  return string.match(v, '%d+$') or ''
end
`

// putPositions stores devices' positions where they are newer, and
// only for devices that exist; one call per shard and flush carries all
// of the shard's devices, so a ping costs Redis a few hash operations,
// not a script call of its own. A device with visits open (in {S}:pv)
// has its score there moved to its new qualifying ping; if that ping
// was far from every fence and went through a node that did not know of
// the visits, the device is noted in {S}:pf for Lingering. KEYS[1]: the
// shard. ARGV: per device, its id, last position, its nanos, qualifying
// position ("" for none), its nanos and ms, and "1" when it is far.
// Answers, per device, the old qualifying position when the qualifying
// one changed, "-" when it did not, "!" for a device that does not
// exist. A qualifying position written goes to {S}:q too (see
// qualsOf), one HSET for the call.
//
// A stored position's time is the last word of its packed form (see
// packPos), read back by tsLua: the hash keeps two fields per device
// rather than four, which made this script about a fifth cheaper on an
// idle primary. Hashes written before kept the times apart too, in lts
// and qts, which nothing reads any more (prunePositions deletes them).
var putPositions = newScript(tsLua + `
local out = {}
local pv = KEYS[1] .. ':pv'
local visits = redis.call('EXISTS', pv) == 1
local quals = {}
for i = 1, #ARGV, 7 do
  local dev = ARGV[i]
  local d = KEYS[1] .. ':d:' .. dev
  local r = '-'
  -- rv is written with every record (see putDevice); a hash without it
  -- and without positions may be a device written before rv was, or
  -- none at all: only then is existence asked separately.
  local cur = redis.call('HMGET', d, 'last', 'qual', 'rv')
  if not cur[1] and not cur[3] and redis.call('EXISTS', d) == 0 then
    r = '!'
  else
    local set = {}
    if ARGV[i+2] > tsOf(cur[1]) then
      set[#set+1] = 'last'
      set[#set+1] = ARGV[i+1]
    end
    if ARGV[i+3] ~= '' and ARGV[i+4] > tsOf(cur[2]) then
      set[#set+1] = 'qual'
      set[#set+1] = ARGV[i+3]
      quals[#quals+1] = dev
      quals[#quals+1] = ARGV[i+3]
      r = cur[2] or ''
      if visits and redis.call('ZSCORE', pv, dev) then
        redis.call('ZADD', pv, ARGV[i+5], dev)
        if ARGV[i+6] == '1' then redis.call('SADD', KEYS[1] .. ':pf', dev) end
      end
    end
    if #set > 0 then redis.call('HSET', d, unpack(set)) end
  end
  out[#out+1] = r
end
if #quals > 0 then redis.call('HSET', KEYS[1] .. ':q', unpack(quals)) end
return out`)

// flushBatch bounds the devices one putPositions call carries, so that
// one script never holds its shard for long.
const flushBatch = 256

// flushChunk is how many devices' positions one round of a flush takes:
// about one full putPositions call per shard. A burst held (a hundred
// thousand pings) goes out in rounds rather than in one pipelined
// batch, so that what is sent at a time is small: a fan-out that starts
// meanwhile waits behind one round at most, and the rounds after it
// wait for the fan-out (see fanningOut). A variable so that tests can
// lower it; a DB reads it when it opens.
var flushChunk = Shards * flushBatch

// putPositionsArgs is how many arguments putPositions takes per device.
const putPositionsArgs = 7

// FlushPositions writes the positions and key uses held behind now.
func (db *DB) FlushPositions(ctx context.Context) error { return db.flush(ctx) }

// flush writes everything held behind now.
func (db *DB) flush(ctx context.Context) error { return db.flushHeld(ctx, nil) }

// flushHeld writes the positions held when it starts, flushChunk at a
// time, then the keys' last uses. Before each round, stop may end it:
// what is left stays held (and readable) for a later flush. Positions
// held after it started wait for the next one, so that a steady stream
// of pings cannot keep one flush going.
func (db *DB) flushHeld(ctx context.Context, stop func() bool) error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	for left := db.pos.size(); left > 0; {
		if stop != nil && stop() {
			return nil
		}
		held := db.pos.take(min(left, db.flushChunk))
		if len(held) == 0 {
			break
		}
		left -= len(held)
		err := db.writePositions(ctx, held)
		db.pos.flushed()
		if err != nil {
			return err
		}
	}
	return db.flushTouches(ctx)
}

// writePositions writes positions taken from what is held, then moves
// each changed qualifying position between grid cells. What fails is
// held again for the next flush.
func (db *DB) writePositions(ctx context.Context, held map[devRef]heldPos) error {
	type call struct {
		idx  int // in calls and order
		refs []devRef
		qual []string // each ref's qualifying position, packed ("" for none)
	}
	// Each call's slices are made to size: grown by appending, they
	// were most of what a flush allocated (about 1 KB a position),
	// and so a good part of what the collector then had to do.
	type item struct {
		ref devRef
		sh  string
	}
	items := make([]item, 0, len(held))
	left := map[string]int{} // shard -> positions not yet in a call
	for ref := range held {
		sh := db.devShard(ref.brand, ref.device)
		items = append(items, item{ref, sh})
		left[sh]++
	}
	byShard := map[string]*call{}
	var calls []valkey.LuaExec
	var order []*call
	for _, it := range items {
		ref, sh, h := it.ref, it.sh, held[it.ref]
		c := byShard[sh]
		if c == nil || len(c.refs) == flushBatch {
			size := min(left[sh], flushBatch)
			c = &call{idx: len(order), refs: make([]devRef, 0, size), qual: make([]string, 0, size)}
			byShard[sh] = c
			order = append(order, c)
			calls = append(calls, valkey.LuaExec{Keys: []string{sh}, Args: make([]string, 0, putPositionsArgs*size)})
		}
		left[sh]--
		// Formatting floats was a twentieth of a node's CPU in a
		// flush: a ping that is both last and qualifying (the
		// usual one) is packed once, for the record and its cell,
		// and its time formatted once.
		last, lts := packPos(h.last), nanos(h.last.TS)
		q, qts, qms, far := "", "", "", ""
		if h.hasQual {
			q, qts, qms = last, lts, millis(h.qual.TS)
			if !h.qual.TS.Equal(h.last.TS) {
				qts = nanos(h.qual.TS)
			}
			if !samePacked(h.qual, h.last) {
				q = packPos(h.qual)
			}
			if db.farPing(ref, h.qual) {
				far = "1"
			}
		}
		c.refs = append(c.refs, ref)
		c.qual = append(c.qual, q)
		calls[c.idx].Args = append(calls[c.idx].Args, ref.device, last, lts, q, qts, qms, far)
	}
	rs, _ := db.execMulti(ctx, putPositions, calls)
	cells := map[string][]string{} // cell key -> HSET field, value, …
	dels := map[string][]string{}  // cell key -> devices to take out
	// A burst's devices share a few cells: each key is spelled once.
	type cellRef struct {
		brand string
		c     geo.Cell
	}
	keys := map[cellRef]string{}
	cellKey := func(brandID string, c geo.Cell) string {
		k, ok := keys[cellRef{brandID, c}]
		if !ok {
			k = db.cellKey(brandID, c)
			keys[cellRef{brandID, c}] = k
		}
		return k
	}
	var firstErr error
	for i, r := range rs {
		olds, err := strs(r)
		if err == nil && len(olds) != len(order[i].refs) {
			err = fmt.Errorf("putPositions answered %d of %d devices", len(olds), len(order[i].refs))
		}
		for j, ref := range order[i].refs {
			h := held[ref]
			if err != nil {
				// Held again unless something newer arrived meanwhile.
				db.pos.record(ref.brand, ref.device, h.last, false)
				if h.hasQual {
					db.pos.record(ref.brand, ref.device, h.qual, true)
				}
				continue
			}
			if olds[j] == "-" || olds[j] == "!" || !h.hasQual {
				continue
			}
			nk := cellKey(ref.brand, geo.CellOf(h.qual.Point()))
			cells[nk] = append(cells[nk], ref.device, order[i].qual[j])
			if op, ok := unpackPos(olds[j]); ok {
				if oldKey := cellKey(ref.brand, geo.CellOf(op.Point())); oldKey != nk {
					dels[oldKey] = append(dels[oldKey], ref.device)
				}
			}
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	cmds := make([]valkey.Completed, 0, len(cells)+len(dels))
	for k, fv := range cells {
		cmds = append(cmds, db.cmd("HSET", []string{k}, fv...))
	}
	for k, ids := range dels {
		cmds = append(cmds, db.cmd("HDEL", []string{k}, ids...))
	}
	if _, err := db.doMulti(ctx, cmds); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		return fmt.Errorf("redis: write positions: %w", firstErr)
	}
	return nil
}

// farPing tells whether a qualifying ping lies outside every fence's
// hysteresis band while this node knew of no visit of the device: the
// presence update a ping near a fence or of a known visitor makes never
// happened for it, so any visit another node opened must be looked at.
func (db *DB) farPing(ref devRef, p hotzone.Position) bool {
	if db.present.has(hotzone.DeviceRef{BrandID: ref.brand, DeviceID: ref.device}) {
		return false
	}
	// A brand that keeps no presence has no visits to look at: no fence
	// search for each of its positions.
	if policy, ok := db.brands.Policy(ref.brand); !ok ||
		!hotzone.PresenceUsed(&policy, func(t hotzone.HookType) bool { return db.Listens(ref.brand, t) }) {
		return false
	}
	var buf [4]hotzone.FenceDistance
	return len(db.stores.Around(ref.brand, p.Point(), hotzone.PresenceBandM(p.AccuracyM), buf[:0])) == 0
}
