package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// A device is one hash in its shard, {S}:d:ID, with fields rec (the
// registration, JSON), hist (its queue times), last and qual (its last
// and last qualifying position, packed by packPos, whose last word is
// the time in nanos that scripts compare). {S}:devs is the shard's set
// of device ids. A push token's owner is {P:t:BRAND:PROV:TOKEN}. Qualifying
// positions are also indexed per grid cell, {P:c:BRAND:CELL}, a hash of
// device id to position, so a fan-out reads only the cells its fence
// covers; and kept per shard, {S}:q, a hash of device id to position
// that the scripts writing qual keep equal to it, so that a fan-out
// confirms the cells' candidates a shard at a time (see qualsOf).

var errNoDevice = notFound("device")

// devCache remembers devices this node saw exist, so that a ping, which
// must be refused for an unknown device, costs no round trip. An erasure
// anywhere is published and forgets the device on every node; a lost
// message leaves a ping of an erased device accepted, whose position the
// flush then drops (it writes only to devices that exist).
//
// A device is kept as a 128-bit hash of its brand and id, in plain maps
// under locks of their own: maps of pointer-free keys are not scanned by
// Go's collector, where the sync.Map with string keys this was made
// three objects per device that every collection marked, a third of a
// node's heap objects after a 100,000-device fan-out. Two devices would
// have to share both 64-bit hashes, seeded apart, to be mistaken for
// each other (about one chance in 10^26 among two million devices).
type devCache struct {
	seeds [2]maphash.Seed
	parts [devParts]struct {
		mu sync.Mutex
		m  map[devKey]struct{}
	}
}

// devKey is a device's hash in devCache.
type devKey [2]uint64

const devParts = 64

// devCacheMax bounds the cache; past it, each part starts over as it
// fills. A variable so that tests can lower it.
var devCacheMax = 2_000_000

func (c *devCache) init() {
	c.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	for i := range c.parts {
		c.parts[i].m = map[devKey]struct{}{}
	}
}

func (c *devCache) key(brandID, deviceID string) devKey {
	var k devKey
	for i, seed := range c.seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(brandID)
		h.WriteByte(0)
		h.WriteString(deviceID)
		k[i] = h.Sum64()
	}
	return k
}

// with runs fn on the map of k's part, under that part's lock.
func (c *devCache) with(k devKey, fn func(m map[devKey]struct{})) {
	p := &c.parts[k[0]%devParts]
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.m)
}

func (c *devCache) has(brandID, deviceID string) bool {
	var ok bool
	k := c.key(brandID, deviceID)
	c.with(k, func(m map[devKey]struct{}) { _, ok = m[k] })
	return ok
}

func (c *devCache) add(brandID, deviceID string) {
	k := c.key(brandID, deviceID)
	c.with(k, func(m map[devKey]struct{}) {
		if len(m) >= devCacheMax/devParts {
			clear(m)
		}
		m[k] = struct{}{}
	})
}

func (c *devCache) forget(brandID, deviceID string) {
	k := c.key(brandID, deviceID)
	c.with(k, func(m map[devKey]struct{}) { delete(m, k) })
}

// putDevice writes a device's record if it is still as read. KEYS:
// device hash, shard's device set. ARGV: record read ("" for none), new
// record, device id. Answers {"1"}, or {"0", the record as it is} for
// the caller to decide again on, with no read of its own. The record's
// SHA-1 goes with it (field "rv"): a decision checks that the record it
// was made on is unchanged by that, not by sending the record back. A
// write answers {"1", rv, history}: the device's state for this node's
// next decision (see stateCache).
var putDevice = newScript(`
local cur = redis.call('HGET', KEYS[1], 'rec') or ''
if cur ~= ARGV[1] then return {'0', cur} end
local rv = redis.sha1hex(ARGV[2])
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'rv', rv)
redis.call('SADD', KEYS[2], ARGV[3])
return {'1', rv, redis.call('HGET', KEYS[1], 'hist') or ''}`)

// releaseToken forgets a token's owner if it is still this device.
var releaseToken = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`)

// PutDevice creates or updates a device. Its record is written first
// (checked against what was read); then the token's owner is set to it,
// and a previous owner loses its copy of the token before this returns.
// Two devices racing for one token end with one owner and one copy:
// whichever set the owner last clears the other. A crash between the
// record and the owner leaves the device holding a token it does not
// own until it registers again; the dispatcher sends only to a
// device's own record, so no other device is pushed with it.
func (db *DB) PutDevice(ctx context.Context, d hotzone.Device) (hotzone.Device, bool, error) {
	if _, ok := db.brands.Brand(d.BrandID); !ok {
		return hotzone.Device{}, false, notFound("brand")
	}
	sh := db.devShard(d.BrandID, d.ID)
	k := sh + ":d:" + d.ID
	var (
		nd      hotzone.Device
		prev    hotzone.Device
		created bool
		// First as if the device were new: a new one is written in one
		// round trip, a known one answers its record with the refusal.
		raw string
	)
	for i := 0; ; i++ {
		if i == casRetries {
			return hotzone.Device{}, false, errContended
		}
		prev = hotzone.Device{}
		if raw != "" {
			if err := decodeDevice(raw, &prev); err != nil {
				return hotzone.Device{}, false, fmt.Errorf("redis: device %s: %w", d.ID, err)
			}
		}
		nd = d.Registered(prev, raw != "", db.now().UTC())
		next := encodeDevice(&nd)
		ans, err := strs(db.exec(ctx, putDevice, []string{k, sh + ":devs"}, []string{raw, next, d.ID}))
		if err == nil && len(ans) < 1 {
			err = errors.New("no answer")
		}
		if err != nil {
			return hotzone.Device{}, false, fmt.Errorf("redis: write device: %w", err)
		}
		if ans[0] == "1" {
			created = raw == ""
			if len(ans) == 3 {
				db.states.keep(d.BrandID, d.ID, string(next), ans[1], ans[2])
			}
			break
		}
		if len(ans) < 2 {
			return hotzone.Device{}, false, errors.New("redis: write device: refused without the record")
		}
		raw = ans[1]
	}
	nd.BrandID = d.BrandID
	db.devs.add(d.BrandID, d.ID)
	if prev.Token != "" && (prev.Token != nd.Token || prev.Provider != nd.Provider) {
		if err := db.exec(ctx, releaseToken, []string{db.tokenKey(d.BrandID, prev.Provider, prev.Token)}, []string{d.ID}).Error(); err != nil {
			return hotzone.Device{}, false, fmt.Errorf("redis: release token: %w", err)
		}
	}
	if nd.Token != "" {
		holder, err := str(db.do(ctx, db.cmd("SET", []string{db.tokenKey(d.BrandID, nd.Provider, nd.Token)}, d.ID, "GET")))
		if err != nil {
			return hotzone.Device{}, false, fmt.Errorf("redis: take token: %w", err)
		}
		if holder != "" && holder != d.ID {
			if err := db.dropToken(ctx, d.BrandID, holder, nd.Provider, nd.Token, time.Time{}); err != nil {
				return hotzone.Device{}, false, err
			}
		}
	}
	return nd, created, nil
}

// dropToken clears a device's token if it still has this one, and (when
// since is set) was registered before since.
func (db *DB) dropToken(ctx context.Context, brandID, deviceID string, p hotzone.Provider, token string, since time.Time) error {
	sh := db.devShard(brandID, deviceID)
	k := sh + ":d:" + deviceID
	for range casRetries {
		raw, err := str(db.do(ctx, db.cmd("HGET", []string{k}, "rec")))
		if err != nil {
			return fmt.Errorf("redis: read device: %w", err)
		}
		if raw == "" {
			return nil
		}
		var d hotzone.Device
		if err := decodeDevice(raw, &d); err != nil {
			return fmt.Errorf("redis: device %s: %w", deviceID, err)
		}
		if d.Token == "" || (token != "" && (d.Token != token || d.Provider != p)) || (!since.IsZero() && !d.TokenAt.Before(since)) {
			return nil
		}
		old := d.Token
		oldP := d.Provider
		d.Provider, d.Token, d.TokenAt = "", "", time.Time{}
		d.UpdatedAt = db.now().UTC()
		ans, err := strs(db.exec(ctx, putDevice, []string{k, sh + ":devs"}, []string{raw, encodeDevice(&d), deviceID}))
		if err != nil {
			return fmt.Errorf("redis: write device: %w", err)
		}
		if len(ans) > 0 && ans[0] == "1" {
			db.states.forget(brandID, deviceID)
			if token == "" { // an invalid token: its owner entry goes too
				return db.exec(ctx, releaseToken, []string{db.tokenKey(brandID, oldP, old)}, []string{deviceID}).Error()
			}
			return nil
		}
	}
	return errContended
}

// Device returns a device and its position, the one held behind if it
// is newer than the stored one.
func (db *DB) Device(ctx context.Context, brandID, deviceID string) (hotzone.Device, *hotzone.DevicePosition, error) {
	sh := db.devShard(brandID, deviceID)
	vals, err := strs(db.do(ctx, db.cmd("HMGET", []string{sh + ":d:" + deviceID}, "rec", "last", "qual")))
	if err != nil {
		return hotzone.Device{}, nil, fmt.Errorf("redis: device: %w", err)
	}
	if vals[0] == "" {
		return hotzone.Device{}, nil, errNoDevice
	}
	var d hotzone.Device
	if err := decodeDevice(vals[0], &d); err != nil {
		return hotzone.Device{}, nil, fmt.Errorf("redis: device %s: %w", deviceID, err)
	}
	d.BrandID = brandID
	db.devs.add(brandID, deviceID)
	var pos *hotzone.DevicePosition
	if last, ok := unpackPos(vals[1]); ok {
		pos = &hotzone.DevicePosition{Last: last}
		if q, ok := unpackPos(vals[2]); ok {
			pos.Qualifying = &q
		}
	}
	return d, db.pos.overlay(brandID, deviceID, pos), nil
}

// RecordPosition keeps a position in memory until the next flush; a
// device this node has not seen costs one round trip to check that it
// exists.
func (db *DB) RecordPosition(ctx context.Context, brandID, deviceID string, p hotzone.Position, qualifying bool) error {
	if !db.devs.has(brandID, deviceID) {
		// The read that tells the device exists also brings its state,
		// so that its first decision here needs no read of its own.
		vals, err := strs(db.do(ctx, db.cmd("HMGET", []string{db.devShard(brandID, deviceID) + ":d:" + deviceID}, "rec", "rv", "hist")))
		if err == nil && len(vals) != 3 {
			err = fmt.Errorf("HMGET answered %d values", len(vals))
		}
		if err != nil {
			return fmt.Errorf("redis: device: %w", err)
		}
		if vals[0] == "" {
			return errNoDevice
		}
		db.states.keep(brandID, deviceID, vals[0], vals[1], vals[2])
		db.devs.add(brandID, deviceID)
	}
	db.pos.record(brandID, deviceID, p, qualifying)
	return nil
}

// eraseDevice removes a device and everything of it in its shard, and
// takes its entries out of its events' counts. KEYS[1]: the shard.
// ARGV: device id. Answers nil for an unknown device, else its record
// and qualifying position.
var eraseDevice = newScript(countsLua + `
local p = KEYS[1]
local d = p .. ':d:' .. ARGV[1]
local rec = redis.call('HGET', d, 'rec')
if not rec then return false end
local qual = redis.call('HGET', d, 'qual') or ''
redis.call('HDEL', p .. ':q', ARGV[1])
local fields = redis.call('HGETALL', d)
local buckets = {queued='queued', sent='sent', dry_run='sent', suppressed='suppressed', failed='failed', invalid_token='failed', expired='expired'}
for i = 1, #fields, 2 do
  -- Field n:EVENT holds the device's entry for the event.
  if string.sub(fields[i], 1, 2) == 'n:' then
    local ev, id = string.sub(fields[i], 3), fields[i+1]
    local body = redis.call('HGET', p .. ':n', id)
    if body then
      local x = cjson.decode(body)
      local b = buckets[x.status]
      if b then
        redis.call('HINCRBY', p .. ':c', ev .. ':' .. b, -1)
        if x.opened_at then redis.call('HINCRBY', p .. ':c', ev .. ':opened', -1) end
        shardCounts(p, ev)
      end
      if type(x.provider) == 'string' and x.provider ~= '' then redis.call('ZREM', p .. ':o:' .. x.provider, id) end
    end
    redis.call('HDEL', p .. ':n', id)
    redis.call('HDEL', p .. ':cl', id)
    redis.call('ZREM', p .. ':li', id)
    redis.call('ZREM', p .. ':le:' .. ev, id)
    redis.call('ZREM', p .. ':oq', id)
  end
end
redis.call('DEL', d)
redis.call('SREM', p .. ':devs', ARGV[1])
redis.call('ZREM', p .. ':pv', ARGV[1])
redis.call('SREM', p .. ':pf', ARGV[1])
return {rec, qual}`)

// DeleteDevice erases a device: in its shard at once (record, history,
// positions, log entries, outbox, counts), then its token's owner entry
// and its grid cell entry, and every node forgets it.
func (db *DB) DeleteDevice(ctx context.Context, brandID, deviceID string) error {
	if _, ok := db.brands.Brand(brandID); !ok {
		return notFound("brand")
	}
	db.pos.drop(brandID, deviceID)
	res, err := strs(db.exec(ctx, eraseDevice, []string{db.devShard(brandID, deviceID)}, []string{deviceID}))
	if err != nil {
		return fmt.Errorf("redis: erase device: %w", err)
	}
	if len(res) == 0 {
		return errNoDevice
	}
	var d hotzone.Device
	if err := decodeDevice(res[0], &d); err != nil {
		return fmt.Errorf("redis: device %s: %w", deviceID, err)
	}
	cmds := []valkey.Completed{db.c.B().Publish().Channel(db.channel()).Message(msgErase + brandID + "\x00" + deviceID).Build()}
	if q, ok := unpackPos(res[1]); ok {
		cmds = append(cmds, db.cmd("HDEL", []string{db.cellKey(brandID, geo.CellOf(q.Point()))}, deviceID))
	}
	if _, err := db.doMulti(ctx, cmds); err != nil {
		return fmt.Errorf("redis: erase device: %w", err)
	}
	if d.Token != "" {
		if err := db.exec(ctx, releaseToken, []string{db.tokenKey(brandID, d.Provider, d.Token)}, []string{deviceID}).Error(); err != nil {
			return fmt.Errorf("redis: erase device token: %w", err)
		}
	}
	db.devs.forget(brandID, deviceID)
	db.states.forget(brandID, deviceID)
	db.notified.erased(brandID, deviceID)
	db.pos.drop(brandID, deviceID)
	db.refreshEventCounts(ctx, brandID, db.liveIDs(brandID)...)
	return nil
}

// liveIDs are the brand's live events in the view.
func (db *DB) liveIDs(brandID string) []string {
	db.mu.Lock()
	defer db.mu.Unlock()
	st := db.known[brandID]
	if st == nil {
		return nil
	}
	ids := make([]string, 0, len(st.live))
	for id := range st.live {
		ids = append(ids, id)
	}
	return ids
}

// cellKey is the key of a grid cell's qualifying positions.
func (db *DB) cellKey(brandID string, c geo.Cell) string {
	return "{" + db.p + ":c:" + brandID + ":" + strconv.FormatUint(uint64(c), 36) + "}"
}

// qualsOf reads devices' qualifying positions ("" for none) from their
// shards' {S}:q, which putPositions, prunePositions and eraseDevice
// write in the same script as the record's qual, so that the two always
// agree: one HMGET per shard and qualBatch devices, where reading each
// record cost a command per device, most of a fan-out's search. A
// device missing there (its position written before {S}:q was, or none)
// is read from its record.
func (db *DB) qualsOf(ctx context.Context, brandID string, ids []string) ([]string, error) {
	all := make([]int, len(ids))
	for i := range all {
		all[i] = i
	}
	which := shardGroups(ids, all, qualBatch)
	cmds := make([]valkey.Completed, len(which))
	for j, part := range which {
		fields := make([]string, len(part))
		for k, i := range part {
			fields[k] = ids[i]
		}
		cmds[j] = db.cmd("HMGET", []string{db.devShard(brandID, ids[part[0]]) + ":q"}, fields...)
	}
	rs, err := db.doMulti(ctx, cmds)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ids))
	var missing []int
	for j, r := range rs {
		vals, err := strs(r)
		if err != nil {
			return nil, err
		}
		if len(vals) != len(which[j]) {
			return nil, fmt.Errorf("HMGET answered %d of %d fields", len(vals), len(which[j]))
		}
		for k, i := range which[j] {
			if out[i] = vals[k]; out[i] == "" {
				missing = append(missing, i)
			}
		}
	}
	if len(missing) > 0 {
		rest := make([]string, len(missing))
		for k, i := range missing {
			rest[k] = ids[i]
		}
		quals, err := db.deviceField(ctx, brandID, rest, "qual")
		if err != nil {
			return nil, err
		}
		for k, i := range missing {
			out[i] = quals[k]
		}
	}
	return out, nil
}

// qualBatch bounds the fields of one HMGET of {S}:q.
const qualBatch = 1024

// packPos spells a position as "lat lon accuracy nanos".
func packPos(p hotzone.Position) string {
	return strconv.FormatFloat(p.Lat, 'g', -1, 64) + " " + strconv.FormatFloat(p.Lon, 'g', -1, 64) + " " +
		strconv.FormatFloat(p.AccuracyM, 'g', -1, 64) + " " + nanos(p.TS)
}

// samePacked tells whether packPos spells a and b alike.
func samePacked(a, b hotzone.Position) bool {
	return a.Lat == b.Lat && a.Lon == b.Lon && a.AccuracyM == b.AccuracyM && a.TS.Equal(b.TS)
}

// unpackPos reads packPos.
// It cuts s at its spaces rather than calling strings.Fields, whose
// slice was one allocation per position read, 200,000 in a fan-out's
// search of 100,000 devices.
func unpackPos(s string) (hotzone.Position, bool) {
	var f [4]string
	for i := range 3 {
		var ok bool
		if f[i], s, ok = strings.Cut(s, " "); !ok {
			return hotzone.Position{}, false
		}
	}
	f[3] = s
	lat, err1 := strconv.ParseFloat(f[0], 64)
	lon, err2 := strconv.ParseFloat(f[1], 64)
	acc, err3 := strconv.ParseFloat(f[2], 64)
	ns, err4 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return hotzone.Position{}, false
	}
	return hotzone.Position{Lat: lat, Lon: lon, AccuracyM: acc, TS: time.Unix(0, ns).UTC()}, true
}

// maxCells bounds the cells a fan-out reads one by one; a fence covering
// more (tens of kilometres across) reads its brand's shards whole.
const maxCells = 4096

// DevicesIn finds the devices whose last qualifying position is inside
// the fence since since: the grid cells the fence covers give the
// candidates, each device's qualifying position as its shard keeps it
// (qualsOf, equal to its record's) confirms them (a cell entry may
// be stale, left by a device that moved through another node), and the
// positions this node holds behind are added.
func (db *DB) DevicesIn(ctx context.Context, brandID string, f *geo.Fence, since time.Time) ([]string, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, notFound("brand")
	}
	if f == nil {
		return nil, nil
	}
	inside := func(p hotzone.Position) bool { return !p.TS.Before(since) && f.Contains(p.Point()) }
	// What this node holds is taken before the cells are read: a flush
	// that ends in between has written its positions to the cells by
	// then, where taken after they would be in neither.
	pending := db.pos.heldQuals(brandID, inside)
	cand := map[string]bool{}
	var cells []geo.Cell
	n := geo.CellsCovering(f.BBox(), maxCells, func(c geo.Cell) bool {
		cells = append(cells, c)
		return true
	})
	if n > maxCells {
		ids, err := db.allDevices(ctx, brandID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			cand[id] = true
		}
	} else {
		cmds := make([]valkey.Completed, len(cells))
		for i, c := range cells {
			cmds[i] = db.cmd("HGETALL", []string{db.cellKey(brandID, c)})
		}
		rs, err := db.doMulti(ctx, cmds)
		if err != nil {
			return nil, fmt.Errorf("redis: read cells: %w", err)
		}
		for _, r := range rs {
			m, err := strMap(r)
			if err != nil {
				return nil, err
			}
			for id, packed := range m {
				if p, ok := unpackPos(packed); ok && inside(p) {
					cand[id] = true
				}
			}
		}
	}
	// Confirm each candidate against its record.
	ids := make([]string, 0, len(cand))
	for id := range cand {
		ids = append(ids, id)
	}
	quals, err := db.qualsOf(ctx, brandID, ids)
	if err != nil {
		return nil, fmt.Errorf("redis: read positions: %w", err)
	}
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		q, ok := unpackPos(quals[i])
		in := ok && inside(q)
		if pq, held := pending[id]; held && (!ok || pq.ns > q.TS.UnixNano()) {
			in = pq.in
		}
		if in {
			out = append(out, id)
		}
	}
	for id, pq := range pending {
		if !cand[id] && pq.in {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// allDevices lists every device of a brand, shard by shard.
func (db *DB) allDevices(ctx context.Context, brandID string) ([]string, error) {
	rs, err := db.doMulti(ctx, db.shardCmds(brandID, func(sh string, _ int) valkey.Completed {
		return db.cmd("SMEMBERS", []string{sh + ":devs"})
	}))
	if err != nil {
		return nil, fmt.Errorf("redis: list devices: %w", err)
	}
	var out []string
	for _, r := range rs {
		ids, err := r.AsStrSlice()
		if err != nil && !valkey.IsValkeyNil(err) {
			return nil, err
		}
		out = append(out, ids...)
	}
	return out, nil
}

// DevicesByID reads many devices of a brand in one pipelined batch (see
// push.DeviceBatch); unknown ones are absent from the answer.
func (db *DB) DevicesByID(ctx context.Context, brandID string, ids []string) (map[string]hotzone.Device, error) {
	recs, err := db.deviceField(ctx, brandID, ids, "rec")
	if err != nil {
		return nil, fmt.Errorf("redis: devices: %w", err)
	}
	out := make(map[string]hotzone.Device, len(ids))
	for i, raw := range recs {
		if raw == "" {
			continue
		}
		var d hotzone.Device
		if err := decodeDevice(raw, &d); err != nil {
			return nil, fmt.Errorf("redis: device %s: %w", ids[i], err)
		}
		d.BrandID = brandID
		out[ids[i]] = d
	}
	return out, nil
}

// deviceField reads one field of many devices' records in one pipelined
// batch, "" where a device or the field is missing.
func (db *DB) deviceField(ctx context.Context, brandID string, ids []string, field string) ([]string, error) {
	cmds := make([]valkey.Completed, len(ids))
	for i, id := range ids {
		cmds[i] = db.cmd("HGET", []string{db.devShard(brandID, id) + ":d:" + id}, field)
	}
	rs, err := db.doMulti(ctx, cmds)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		if out[i], err = str(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeviceIDs implements hotzone.Devices: every shard's set, merged.
func (db *DB) DeviceIDs(ctx context.Context, brandID string) ([]string, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, notFound("brand")
	}
	ids, err := db.allDevices(ctx, brandID)
	slices.Sort(ids)
	return ids, err
}
