package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// bucketPresence holds each device's open visits: brand\0device ->
// Presence (JSON). A device with none has no key.
var bucketPresence = []byte("presence")

// presences is every open visit in memory, so that a ping far from every
// fence learns without I/O that it changes nothing, and the sweep for
// devices gone silent reads no disk. Writes hold the device's lock
// (devLocks) across their commit; mu guards the map itself.
type presences struct {
	mu sync.RWMutex
	m  map[hotzone.DeviceRef]hotzone.Presence
}

func (p *presences) get(r hotzone.DeviceRef) (hotzone.Presence, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	v, ok := p.m[r]
	return v, ok
}

func (p *presences) set(r hotzone.DeviceRef, v hotzone.Presence) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(v.Visits) == 0 {
		delete(p.m, r)
		return
	}
	p.m[r] = v
}

// loadPresence reads every open visit into memory.
func (db *DB) loadPresence(tx *bbolt.Tx) error {
	db.present.m = map[hotzone.DeviceRef]hotzone.Presence{}
	return tx.Bucket(bucketPresence).ForEach(func(k, v []byte) error {
		brandID, deviceID, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return fmt.Errorf("store: presence key %q", k)
		}
		var p hotzone.Presence
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("store: presence of %q: %w", k, err)
		}
		db.present.m[hotzone.DeviceRef{BrandID: string(brandID), DeviceID: string(deviceID)}] = p
		return nil
	})
}

// UpdatePresence implements hotzone.Presences: fn runs on the presence
// in memory under the device's lock; a change commits (sharing the disk
// sync with other small writes) before memory takes it.
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
	key := joinKey(brandID, deviceID)
	var raw []byte
	if len(next.Visits) > 0 {
		var err error
		if raw, err = json.Marshal(next); err != nil {
			return hotzone.Presence{}, fmt.Errorf("store: presence: %w", err)
		}
	}
	if err := db.group(func(tx *bbolt.Tx) error {
		if raw == nil {
			return tx.Bucket(bucketPresence).Delete(key)
		}
		return tx.Bucket(bucketPresence).Put(key, raw)
	}); err != nil {
		return hotzone.Presence{}, fmt.Errorf("store: presence: %w", err)
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
	db.present.mu.RLock()
	refs := make([]hotzone.DeviceRef, 0, len(db.present.m))
	for r := range db.present.m {
		refs = append(refs, r)
	}
	db.present.mu.RUnlock()
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
