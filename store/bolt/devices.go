package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// deviceEntry is a device and its latest position; the position changes
// on every ping and reaches disk through the write-behind.
type deviceEntry struct {
	brandID string
	mu      sync.Mutex
	dev     hotzone.Device
	pos     *hotzone.DevicePosition
	deleted bool

	dirty        bool // listed in DB.dirty; guarded by DB.dirtyMu
	pendingPoint bool // listed in brandState.pending; guarded by its pendingMu
}

// PutDevice implements hotzone.Devices. The device that held the token
// before loses it in the same transaction.
func (db *DB) PutDevice(_ context.Context, d hotzone.Device) (hotzone.Device, bool, error) {
	bs := db.brand(d.BrandID)
	if bs == nil {
		return hotzone.Device{}, false, notFound("brand")
	}
	now := db.now().UTC()
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	old := bs.devices[d.ID]
	created := old == nil
	d.UpdatedAt = now
	d.CreatedAt = now
	var prev hotzone.Device
	if old != nil {
		old.mu.Lock()
		prev = old.dev
		old.mu.Unlock()
		d.CreatedAt = prev.CreatedAt
	}
	switch {
	case d.Token == "":
		d.TokenAt = time.Time{}
	case prev.Token == d.Token && prev.Provider == d.Provider:
		d.TokenAt = prev.TokenAt
	default:
		d.TokenAt = now
	}
	var robbed *deviceEntry // the device that held this token before
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		robbed = nil
		tokens, devices := tx.Bucket(bucketTokens), tx.Bucket(bucketDevices)
		if prev.Token != "" && (prev.Token != d.Token || prev.Provider != d.Provider) {
			if err := tokens.Delete(joinKey(d.BrandID, string(prev.Provider), prev.Token)); err != nil {
				return err
			}
		}
		if d.Token != "" {
			tk := joinKey(d.BrandID, string(d.Provider), d.Token)
			if holder := tokens.Get(tk); holder != nil && string(holder) != d.ID {
				robbed = bs.devices[string(holder)]
				if robbed != nil {
					robbed.mu.Lock()
					other := robbed.dev
					robbed.mu.Unlock()
					other.Provider, other.Token, other.TokenAt = "", "", time.Time{}
					other.UpdatedAt = now
					if err := putJSON(devices, joinKey(d.BrandID, other.ID), other); err != nil {
						return err
					}
				}
			}
			if err := tokens.Put(tk, []byte(d.ID)); err != nil {
				return err
			}
		}
		return putJSON(devices, joinKey(d.BrandID, d.ID), d)
	})
	if err != nil {
		return hotzone.Device{}, false, fmt.Errorf("store: put device: %w", err)
	}
	if robbed != nil {
		robbed.mu.Lock()
		robbed.dev.Provider, robbed.dev.Token, robbed.dev.TokenAt = "", "", time.Time{}
		robbed.dev.UpdatedAt = now
		robbed.mu.Unlock()
	}
	if old != nil {
		old.mu.Lock()
		old.dev = d
		old.mu.Unlock()
	} else {
		bs.mu.Lock()
		bs.devices[d.ID] = &deviceEntry{brandID: d.BrandID, dev: d}
		bs.mu.Unlock()
	}
	return d, created, nil
}

// errNoDevice is an unknown (or erased) device.
var errNoDevice = notFound("device")

// brandEntry is a brand's state and one of its devices; either may be nil.
func (db *DB) brandEntry(brandID, deviceID string) (*brandState, *deviceEntry) {
	bs := db.brand(brandID)
	if bs == nil {
		return nil, nil
	}
	bs.mu.RLock()
	e := bs.devices[deviceID]
	bs.mu.RUnlock()
	return bs, e
}

// Device implements hotzone.Devices from memory.
func (db *DB) Device(_ context.Context, brandID, deviceID string) (hotzone.Device, *hotzone.DevicePosition, error) {
	_, e := db.brandEntry(brandID, deviceID)
	if e == nil {
		return hotzone.Device{}, nil, errNoDevice
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deleted {
		return hotzone.Device{}, nil, errNoDevice
	}
	var pos *hotzone.DevicePosition
	if e.pos != nil {
		p := *e.pos
		pos = &p
	}
	return e.dev, pos, nil
}

// RecordPosition implements hotzone.Devices: the position is kept in
// memory and scheduled for the write-behind, so a ping never waits on
// the disk; a crash loses at most the positions of the last flush
// interval.
func (db *DB) RecordPosition(_ context.Context, brandID, deviceID string, p hotzone.Position, qualifying bool) error {
	bs, e := db.brandEntry(brandID, deviceID)
	if e == nil {
		return errNoDevice
	}
	e.mu.Lock()
	if e.deleted {
		e.mu.Unlock()
		return errNoDevice
	}
	if e.pos == nil {
		e.pos = new(hotzone.DevicePosition)
	}
	// Pings may arrive out of order (batches, retries); an older report
	// never overwrites a newer one.
	if !p.TS.Before(e.pos.Last.TS) {
		e.pos.Last = p
	}
	if qualifying && (e.pos.Qualifying == nil || !p.TS.Before(e.pos.Qualifying.TS)) {
		q := p
		e.pos.Qualifying = &q
	}
	e.mu.Unlock()
	// Flags instead of sets: a device pinging every second is listed
	// once per flush, and a ping costs no map insert.
	db.dirtyMu.Lock()
	if !e.dirty {
		e.dirty = true
		db.dirty = append(db.dirty, e)
	}
	db.dirtyMu.Unlock()
	if qualifying {
		bs.pendingMu.Lock()
		if !e.pendingPoint {
			e.pendingPoint = true
			bs.pending = append(bs.pending, e)
		}
		bs.pendingMu.Unlock()
	}
	return nil
}

// DeleteDevice implements hotzone.Devices in one transaction.
func (db *DB) DeleteDevice(_ context.Context, brandID, deviceID string) error {
	bs := db.brand(brandID)
	if bs == nil {
		return notFound("brand")
	}
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	e := bs.devices[deviceID]
	if e == nil {
		return errNoDevice
	}
	// Marked before the transaction so that a queueing transaction after
	// it cannot write for this device (see Consider).
	e.mu.Lock()
	d := e.dev
	e.deleted = true
	e.mu.Unlock()
	k := joinKey(brandID, deviceID)
	var changes []countsChange
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		deltas, err := eraseNotifications(tx, brandID, deviceID)
		if err != nil {
			return err
		}
		if changes, err = db.addCounts(tx, brandID, deltas); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistory).Delete(k); err != nil {
			return err
		}
		if d.Token != "" {
			if err := tx.Bucket(bucketTokens).Delete(joinKey(brandID, string(d.Provider), d.Token)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketPositions).Delete(k); err != nil {
			return err
		}
		return tx.Bucket(bucketDevices).Delete(k)
	})
	if err != nil {
		e.mu.Lock()
		e.deleted = false
		e.mu.Unlock()
		return fmt.Errorf("store: delete device: %w", err)
	}
	e.mu.Lock()
	e.pos = nil
	e.mu.Unlock()
	bs.mu.Lock()
	delete(bs.devices, deviceID)
	bs.mu.Unlock()
	// A pending point of the erased entry is skipped at the next sync
	// (it is marked deleted), so the index loses it for good here.
	bs.pendingMu.Lock()
	bs.points.Delete(deviceID)
	bs.pendingMu.Unlock()
	db.publishCounts(changes)
	return nil
}

// FlushPositions writes every position recorded since the last flush, and
// the manager keys' last use, in one transaction; it also brings the
// fan-out point indexes up to date, so an event start finds little left
// to apply.
func (db *DB) FlushPositions() error {
	db.mu.RLock()
	brands := make([]*brandState, 0, len(db.devices))
	for _, bs := range db.devices {
		brands = append(brands, bs)
	}
	db.mu.RUnlock()
	for _, bs := range brands {
		bs.syncPoints()
	}
	db.dirtyMu.Lock()
	dirty := db.dirty
	db.dirty = make([]*deviceEntry, 0, len(dirty))
	for _, e := range dirty {
		e.dirty = false
	}
	db.dirtyMu.Unlock()
	touched := db.keys.TakeTouched()
	if len(dirty) == 0 && len(touched) == 0 {
		return nil
	}
	// Encoded outside the transaction and written in key order: bbolt
	// inserts into a node by shifting it, so random order over a large
	// flush costs quadratic copying.
	type rec struct{ k, v []byte }
	recs := make([]rec, 0, len(dirty))
	for _, e := range dirty {
		e.mu.Lock()
		if e.deleted || e.pos == nil {
			e.mu.Unlock()
			continue
		}
		k := joinKey(e.brandID, e.dev.ID)
		buf, err := json.Marshal(e.pos)
		e.mu.Unlock()
		if err != nil {
			return fmt.Errorf("store: encode position: %w", err)
		}
		recs = append(recs, rec{k, buf})
	}
	slices.SortFunc(recs, func(a, b rec) int { return bytes.Compare(a.k, b.k) })
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		devices, positions := tx.Bucket(bucketDevices), tx.Bucket(bucketPositions)
		for _, r := range recs {
			// A device erased since it was marked dirty must not come back
			// as an orphan position.
			if devices.Get(r.k) == nil {
				continue
			}
			if err := positions.Put(r.k, r.v); err != nil {
				return err
			}
		}
		keys := tx.Bucket(bucketKeys)
		for _, k := range touched {
			if keys.Get(k.Hash[:]) == nil {
				continue
			}
			if err := putJSON(keys, k.Hash[:], k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Put them back so the next flush tries again.
		db.dirtyMu.Lock()
		for _, e := range dirty {
			if !e.dirty {
				e.dirty = true
				db.dirty = append(db.dirty, e)
			}
		}
		db.dirtyMu.Unlock()
		db.keys.Retouch(touched)
		return fmt.Errorf("store: flush positions: %w", err)
	}
	return nil
}

// RunWriteBehind flushes positions every interval until ctx ends.
func (db *DB) RunWriteBehind(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := db.FlushPositions(); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// PutDevices registers many new devices of one brand in one transaction
// (a migration from another system, a load test's setup). Ids already
// registered, or tokens already held, are refused: it never moves
// anything, so it cannot be used to steal a token quietly.
func (db *DB) PutDevices(_ context.Context, brandID string, ds []hotzone.Device) error {
	bs := db.brand(brandID)
	if bs == nil {
		return notFound("brand")
	}
	now := db.now().UTC()
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	for i := range ds {
		d := &ds[i]
		d.BrandID, d.CreatedAt, d.UpdatedAt = brandID, now, now
		if d.Token != "" {
			d.TokenAt = now
		}
		if bs.devices[d.ID] != nil {
			return fmt.Errorf("store: device %q exists: %w", d.ID, hotzone.ErrConflict)
		}
	}
	// Written in key order per bucket: bbolt inserts by shifting a node,
	// so random order (tokens are random) costs quadratic copying.
	type rec struct{ k, v []byte }
	var toks, devs []rec
	for _, d := range ds {
		buf, err := json.Marshal(d)
		if err != nil {
			return err
		}
		devs = append(devs, rec{joinKey(brandID, d.ID), buf})
		if d.Token != "" {
			toks = append(toks, rec{joinKey(brandID, string(d.Provider), d.Token), []byte(d.ID)})
		}
	}
	byKey := func(a, b rec) int { return bytes.Compare(a.k, b.k) }
	slices.SortFunc(toks, byKey)
	slices.SortFunc(devs, byKey)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		tokens, devices := tx.Bucket(bucketTokens), tx.Bucket(bucketDevices)
		for _, r := range toks {
			if tokens.Get(r.k) != nil {
				return fmt.Errorf("store: token of %q is held: %w", r.v, hotzone.ErrConflict)
			}
			if err := tokens.Put(r.k, r.v); err != nil {
				return err
			}
		}
		for _, r := range devs {
			if err := devices.Put(r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put devices: %w", err)
	}
	bs.mu.Lock()
	for _, d := range ds {
		bs.devices[d.ID] = &deviceEntry{brandID: brandID, dev: d}
	}
	bs.mu.Unlock()
	return nil
}
