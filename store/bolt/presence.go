package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/kvlog"
)

// presenceFile names the presence log (store/kvlog) in the data dir:
// brand\0device -> the device's registration (8 bytes) and its
// presence (JSON); an empty value for a device with no visit open.
const presenceFile = "presence"

// presenceCompactBytes: the presence log is compacted once it outgrows
// this and twice the snapshot.
const presenceCompactBytes = 16 << 20

// presences is every open visit in memory, so that a ping far from every
// fence learns without I/O that it changes nothing, and the sweep for
// devices gone silent reads no disk. Changes are written behind with the
// positions (dirty lists what the next flush writes): a random walk of
// pings enters and leaves fences on half of them, and a disk sync each
// cost a ping four times its CPU. It is sharded by device so that
// concurrent pings rarely share a lock; updates of one device also hold
// its devLocks lock.
type presences struct {
	seed   maphash.Seed
	shards [presenceShards]presenceShard
}

const presenceShards = 64

type presenceShard struct {
	mu    sync.RWMutex
	m     map[hotzone.DeviceRef]hotzone.Presence
	dirty map[hotzone.DeviceRef]bool
}

func (p *presences) init() {
	p.seed = maphash.MakeSeed()
	for i := range p.shards {
		p.shards[i] = presenceShard{m: map[hotzone.DeviceRef]hotzone.Presence{}, dirty: map[hotzone.DeviceRef]bool{}}
	}
}

func (p *presences) shard(r hotzone.DeviceRef) *presenceShard {
	var h maphash.Hash
	h.SetSeed(p.seed)
	h.WriteString(r.BrandID)
	h.WriteByte(0)
	h.WriteString(r.DeviceID)
	return &p.shards[h.Sum64()%presenceShards]
}

func (p *presences) get(r hotzone.DeviceRef) (hotzone.Presence, bool) {
	sh := p.shard(r)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	v, ok := sh.m[r]
	return v, ok
}

func (p *presences) set(r hotzone.DeviceRef, v hotzone.Presence) {
	sh := p.shard(r)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.dirty[r] = true
	if len(v.Visits) == 0 {
		delete(sh.m, r)
		return
	}
	sh.m[r] = v
}

// erase forgets a device's presence: nothing of it is written again
// (what the log holds belongs to a registration that is gone).
func (p *presences) erase(r hotzone.DeviceRef) {
	sh := p.shard(r)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.m, r)
	delete(sh.dirty, r)
}

// each calls fn with every open visit's device and presence, a shard at
// a time under its read lock.
func (p *presences) each(fn func(hotzone.DeviceRef, hotzone.Presence)) {
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.RLock()
		for r, v := range sh.m {
			fn(r, v)
		}
		sh.mu.RUnlock()
	}
}

// takeDirty hands the changed presences to a flush: each as it is now,
// an empty one for a device whose visits all ended.
func (p *presences) takeDirty() map[hotzone.DeviceRef]hotzone.Presence {
	var out map[hotzone.DeviceRef]hotzone.Presence
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for r := range sh.dirty {
			if out == nil {
				out = map[hotzone.DeviceRef]hotzone.Presence{}
			}
			out[r] = sh.m[r]
		}
		if len(sh.dirty) > 0 {
			sh.dirty = map[hotzone.DeviceRef]bool{}
		}
		sh.mu.Unlock()
	}
	return out
}

// redirty lists again what a failed flush took.
func (p *presences) redirty(taken map[hotzone.DeviceRef]hotzone.Presence) {
	for r := range taken {
		sh := p.shard(r)
		sh.mu.Lock()
		sh.dirty[r] = true
		sh.mu.Unlock()
	}
}

// load puts a presence read from disk in place (nothing to write).
func (p *presences) load(r hotzone.DeviceRef, v hotzone.Presence, ok bool) {
	sh := p.shard(r)
	if ok {
		sh.m[r] = v
	} else {
		delete(sh.m, r)
	}
}

// flushPresence appends the presences changed since the last flush to
// the presence log (one block, one disk sync); those of devices erased
// meanwhile go as deletions. Called with flushMu held.
func (db *DB) flushPresence() error {
	taken := db.present.takeDirty()
	if len(taken) > 0 {
		var b kvlog.Block
		for r, p := range taken {
			b.Add(joinKey(r.BrandID, r.DeviceID), db.presenceValue(r, p))
		}
		if err := db.presLog.Append(&b); err != nil {
			db.present.redirty(taken)
			return fmt.Errorf("store: flush presence: %w", err)
		}
	}
	if logBytes, snapBytes := db.presLog.Sizes(); logBytes > max(presenceCompactBytes, 2*snapBytes) {
		err := db.presLog.Compact(func(yield func(key, value []byte)) {
			db.present.each(func(r hotzone.DeviceRef, p hotzone.Presence) {
				yield(joinKey(r.BrandID, r.DeviceID), db.presenceValue(r, p))
			})
		})
		if err != nil {
			return fmt.Errorf("store: compact presence: %w", err)
		}
	}
	return nil
}

// presenceValue is a presence as the log keeps it: the registration it
// belongs to, then the presence (appendPresence); empty for none (or an
// erased device).
func (db *DB) presenceValue(r hotzone.DeviceRef, p hotzone.Presence) []byte {
	gen, ok := db.devs.Has(r.BrandID, r.DeviceID)
	if !ok || len(p.Visits) == 0 {
		return nil
	}
	return appendPresence(binary.BigEndian.AppendUint64(nil, uint64(gen)), p)
}

// appendPresence encodes a presence: as of (nanos), the number of visits,
// then each visit's store id (length first), entered and seen at
// (nanos), dwelled (0 or 1) and the count of pings just outside. A few
// dozen bytes, where JSON took a hundred and a fifth of a flush's CPU.
func appendPresence(b []byte, p hotzone.Presence) []byte {
	b = binary.AppendVarint(b, p.AsOf.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(p.Visits)))
	for _, v := range p.Visits {
		b = binary.AppendUvarint(b, uint64(len(v.StoreID)))
		b = append(b, v.StoreID...)
		b = binary.AppendVarint(b, v.EnteredAt.UnixNano())
		b = binary.AppendVarint(b, v.SeenAt.UnixNano())
		d := uint64(0)
		if v.Dwelled {
			d = 1
		}
		b = binary.AppendUvarint(b, d)
		b = binary.AppendUvarint(b, uint64(v.Outside))
	}
	return b
}

// errBadPresence: a stored presence that does not decode.
var errBadPresence = errors.New("store: damaged presence record")

// decodePresence reads what appendPresence wrote, all of it.
func decodePresence(b []byte) (hotzone.Presence, error) {
	var p hotzone.Presence
	bad := false
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	p.AsOf = time.Unix(0, varint()).UTC()
	n := uvarint()
	if bad || n > uint64(len(b)) {
		return hotzone.Presence{}, errBadPresence
	}
	p.Visits = make([]hotzone.Visit, 0, n)
	for range n {
		l := uvarint()
		if bad || l > uint64(len(b)) {
			return hotzone.Presence{}, errBadPresence
		}
		v := hotzone.Visit{StoreID: string(b[:l])}
		b = b[l:]
		v.EnteredAt = time.Unix(0, varint()).UTC()
		v.SeenAt = time.Unix(0, varint()).UTC()
		v.Dwelled = uvarint() == 1
		v.Outside = int(min(uvarint(), 1<<20))
		if bad {
			return hotzone.Presence{}, errBadPresence
		}
		p.Visits = append(p.Visits, v)
	}
	if len(b) != 0 {
		return hotzone.Presence{}, errBadPresence
	}
	return p, nil
}

// loadPresence reads every open visit into memory, of devices that
// exist in the registration it was kept for.
func (db *DB) loadPresence() error {
	db.present.init()
	var bad error
	err := db.presLog.Replay(func(k, v []byte) {
		brandID, deviceID, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return
		}
		r := hotzone.DeviceRef{BrandID: string(brandID), DeviceID: string(deviceID)}
		if len(v) < 8 {
			db.present.load(r, hotzone.Presence{}, false)
			return
		}
		if gen, ok := db.devs.Has(r.BrandID, r.DeviceID); !ok || uint64(gen) != binary.BigEndian.Uint64(v) {
			db.present.load(r, hotzone.Presence{}, false) // erased (and maybe registered again) since
			return
		}
		p, err := decodePresence(v[8:])
		if err != nil {
			bad = fmt.Errorf("store: presence of %q: %w", k, err)
			return
		}
		db.present.load(r, p, true)
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("store: load presence: %w", err)
	}
	return nil
}

// UpdatePresence implements hotzone.Presences: fn runs on the presence
// in memory under the device's lock, and a change is written behind
// with the positions.
func (db *DB) UpdatePresence(_ context.Context, brandID, deviceID string, fn func(*hotzone.Presence) bool) (hotzone.Presence, error) {
	if db.brandLock(brandID) == nil {
		return hotzone.Presence{}, notFound("brand")
	}
	lock := db.devLocks.lock(brandID, deviceID)
	lock.Lock()
	defer lock.Unlock()
	if _, ok := db.devs.Has(brandID, deviceID); !ok {
		return hotzone.Presence{}, errNoDevice
	}
	ref := hotzone.DeviceRef{BrandID: brandID, DeviceID: deviceID}
	cur, _ := db.present.get(ref)
	next := clonePresence(cur)
	if !fn(&next) {
		return cur, nil
	}
	db.present.set(ref, next)
	return next, nil
}

// clonePresence copies p's visits, so fn's changes stay its own until
// they commit.
func clonePresence(p hotzone.Presence) hotzone.Presence {
	p.Visits = append([]hotzone.Visit(nil), p.Visits...)
	return p
}

// Presences implements hotzone.Presences from memory.
func (db *DB) Presences(_ context.Context, brandID string, deviceIDs []string) ([]hotzone.Presence, error) {
	if db.brandLock(brandID) == nil {
		return nil, notFound("brand")
	}
	out := make([]hotzone.Presence, len(deviceIDs))
	for i, id := range deviceIDs {
		p, _ := db.present.get(hotzone.DeviceRef{BrandID: brandID, DeviceID: id})
		out[i] = clonePresence(p)
	}
	return out, nil
}

// MayBePresent implements hotzone.Presences: memory holds every open
// visit, so the answer is exact.
func (db *DB) MayBePresent(brandID, deviceID string) bool {
	_, ok := db.present.get(hotzone.DeviceRef{BrandID: brandID, DeviceID: deviceID})
	return ok
}

// Lingering implements hotzone.Presences: one process sees every ping,
// so only devices gone silent linger. It walks the open visits in
// memory (devices inside a fence are few next to all devices).
func (db *DB) Lingering(_ context.Context, now time.Time, limit int) ([]hotzone.DeviceRef, error) {
	var refs []hotzone.DeviceRef
	db.present.each(func(r hotzone.DeviceRef, _ hotzone.Presence) { refs = append(refs, r) })
	var out []hotzone.DeviceRef
	for _, r := range refs {
		if len(out) >= limit {
			break
		}
		p, ok := db.brands.Policy(r.BrandID)
		if !ok {
			continue
		}
		stale := now.Add(-time.Duration(p.PresenceTTLS) * time.Second)
		pos, _ := db.devs.Position(r.BrandID, r.DeviceID)
		if pos == nil || pos.Qualifying == nil || pos.Qualifying.TS.Before(stale) {
			out = append(out, r)
		}
	}
	return out, nil
}
