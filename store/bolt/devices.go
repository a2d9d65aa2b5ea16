package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
	"github.com/hotzone/hotzone/store/bolt/ledger"
)

// errNoDevice is an unknown (or erased) device.
var errNoDevice = notFound("device")

// PutDevice implements hotzone.Devices. The device that held the token
// before loses it in the same transaction.
func (db *DB) PutDevice(_ context.Context, d hotzone.Device) (hotzone.Device, bool, error) {
	lock := db.brandLock(d.BrandID)
	if lock == nil {
		return hotzone.Device{}, false, notFound("brand")
	}
	now := db.now().UTC()
	lock.Lock()
	defer lock.Unlock()
	prev, _, existed := db.devs.Get(d.BrandID, d.ID)
	d.UpdatedAt = now
	d.CreatedAt = now
	if existed {
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
	var robbed *hotzone.Device // the device that held this token before
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
				if other, _, ok := db.devs.Get(d.BrandID, string(holder)); ok {
					other.Provider, other.Token, other.TokenAt = "", "", time.Time{}
					other.UpdatedAt = now
					if err := putJSON(devices, joinKey(d.BrandID, other.ID), other); err != nil {
						return err
					}
					robbed = &other
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
		db.devs.Put(*robbed)
	}
	db.devs.Put(d)
	return d, !existed, nil
}

// Device implements hotzone.Devices from memory.
func (db *DB) Device(_ context.Context, brandID, deviceID string) (hotzone.Device, *hotzone.DevicePosition, error) {
	d, pos, ok := db.devs.Get(brandID, deviceID)
	if !ok {
		return hotzone.Device{}, nil, errNoDevice
	}
	return d, pos, nil
}

// RecordPosition implements hotzone.Devices: the position is kept in
// memory and scheduled for the write-behind, so a ping never waits on
// the disk; a crash loses at most the positions of the last flush
// interval.
func (db *DB) RecordPosition(_ context.Context, brandID, deviceID string, p hotzone.Position, qualifying bool) error {
	if !db.devs.Record(brandID, deviceID, p, qualifying) {
		return errNoDevice
	}
	return nil
}

// DevicesIn implements hotzone.Devices through the brand's position
// index.
func (db *DB) DevicesIn(_ context.Context, brandID string, f *geo.Fence, since time.Time) ([]string, error) {
	if db.brandLock(brandID) == nil {
		return nil, notFound("brand")
	}
	return db.devs.Within(brandID, f, since), nil
}

// DeleteDevice implements hotzone.Devices in one transaction.
func (db *DB) DeleteDevice(_ context.Context, brandID, deviceID string) error {
	lock := db.brandLock(brandID)
	if lock == nil {
		return notFound("brand")
	}
	lock.Lock()
	defer lock.Unlock()
	// Forbidden before the transaction so that a queueing transaction
	// after it cannot write for this device (see Consider).
	d, ok := db.devs.Forbid(brandID, deviceID)
	if !ok {
		return errNoDevice
	}
	k := joinKey(brandID, deviceID)
	var changes []countsChange
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		deltas, err := ledger.Erase(tx, brandID, deviceID, ledger.EventIDs(tx, brandID))
		if err != nil {
			return err
		}
		if changes, err = db.addCounts(tx, brandID, deltas); err != nil {
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
		db.devs.Allow(brandID, deviceID)
		return fmt.Errorf("store: delete device: %w", err)
	}
	db.devs.Remove(brandID, deviceID)
	db.publishCounts(changes)
	return nil
}

// FlushPositions writes every position recorded since the last flush, and
// the manager keys' last use, in one transaction; it also brings the
// fan-out position indexes up to date, so an event start finds little
// left to apply.
func (db *DB) FlushPositions() error {
	dirty := db.devs.TakeDirty()
	touched := db.keys.TakeTouched()
	if len(dirty) == 0 && len(touched) == 0 {
		return nil
	}
	// Encoded outside the transaction and written in key order: bbolt
	// inserts into a node by shifting it, so random order over a large
	// flush costs quadratic copying.
	type rec struct{ k, v []byte }
	recs := make([]rec, 0, len(dirty))
	for _, d := range dirty {
		buf, err := json.Marshal(d.Position)
		if err != nil {
			return fmt.Errorf("store: encode position: %w", err)
		}
		recs = append(recs, rec{joinKey(d.BrandID, d.DeviceID), buf})
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
		db.devs.Redirty(dirty)
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
	lock := db.brandLock(brandID)
	if lock == nil {
		return notFound("brand")
	}
	now := db.now().UTC()
	lock.Lock()
	defer lock.Unlock()
	for i := range ds {
		d := &ds[i]
		d.BrandID, d.CreatedAt, d.UpdatedAt = brandID, now, now
		if d.Token != "" {
			d.TokenAt = now
		}
		if _, _, ok := db.devs.Get(brandID, d.ID); ok {
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
	for _, d := range ds {
		db.devs.Put(d)
	}
	return nil
}
