package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
	"github.com/hotzone/hotzone/store/bolt/ledger"
	"github.com/hotzone/hotzone/store/poslog"
)

// errNoDevice is an unknown (or erased) device.
var errNoDevice = notFound("device")

// devLocks serialise the writes of one device id (a registration, an
// erasure) across their commit; different devices share commits.
type devLocks struct {
	seed  maphash.Seed
	locks [256]sync.Mutex
}

// lockAll takes every device's lock, in order: a bulk write.
func (l *devLocks) lockAll() {
	for i := range l.locks {
		l.locks[i].Lock()
	}
}

func (l *devLocks) unlockAll() {
	for i := range l.locks {
		l.locks[i].Unlock()
	}
}

func (l *devLocks) lock(brandID, deviceID string) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(brandID)
	h.WriteByte(0)
	h.WriteString(deviceID)
	return &l.locks[h.Sum64()%uint64(len(l.locks))]
}

// PutDevice implements hotzone.Devices. The registration is written
// ahead to the journal with others that come at once (one disk sync for
// many) and answered once that sync returns; the device that held the
// token before loses it in the same journal record.
func (db *DB) PutDevice(_ context.Context, d hotzone.Device) (hotzone.Device, bool, error) {
	if db.brandLock(d.BrandID) == nil {
		return hotzone.Device{}, false, notFound("brand")
	}
	lock := db.devLocks.lock(d.BrandID, d.ID)
	lock.Lock()
	defer lock.Unlock()
	now := db.now().UTC()
	// The device table knows every device (a write of the id holds this
	// lock until the table has it): an unknown id needs no lookup.
	_, known := db.devs.Has(d.BrandID, d.ID)
	var (
		out     hotzone.Device
		created bool
	)
	err := db.devGroup(func(tx *devTx) error {
		k := joinKey(d.BrandID, d.ID)
		var (
			prev hotzone.Device
			raw  []byte
		)
		if known {
			raw = tx.get(classDevice, k)
		}
		if raw != nil {
			var err error
			if prev, err = decodeDevice(d.BrandID, d.ID, raw); err != nil {
				return err
			}
		}
		nd := d.Registered(prev, raw != nil, now)
		if prev.Token != "" && (prev.Token != nd.Token || prev.Provider != nd.Provider) {
			tx.del(classToken, joinKey(d.BrandID, string(prev.Provider), prev.Token))
		}
		if nd.Token != "" {
			tk := joinKey(d.BrandID, string(nd.Provider), nd.Token)
			if holder := tx.get(classToken, tk); holder != nil && string(holder) != d.ID {
				if err := dropToken(tx, d.BrandID, string(holder), now); err != nil {
					return err
				}
			}
			tx.put(classToken, tk, []byte(d.ID))
		}
		tx.put(classDevice, k, appendDevice(nil, &nd))
		out, created = nd, raw == nil
		return nil
	})
	if err != nil {
		return hotzone.Device{}, false, fmt.Errorf("store: put device: %w", err)
	}
	db.devs.Add(d.BrandID, d.ID, generation(out.CreatedAt))
	return out, created, nil
}

// dropToken takes a device's token from it: another device of the brand
// registered it.
func dropToken(tx *devTx, brandID, deviceID string, now time.Time) error {
	k := joinKey(brandID, deviceID)
	raw := tx.get(classDevice, k)
	if raw == nil {
		return nil
	}
	other, err := decodeDevice(brandID, deviceID, raw)
	if err != nil {
		return err
	}
	other.Provider, other.Token, other.TokenAt = "", "", time.Time{}
	other.UpdatedAt = now
	tx.put(classDevice, k, appendDevice(nil, &other))
	return nil
}

// readDevice reads a device inside tx, which must see bbolt current
// (devUpdate's); ok is false when there is none.
func readDevice(tx *bbolt.Tx, brandID, deviceID string) (hotzone.Device, bool, error) {
	raw := tx.Bucket(bucketDevices).Get(joinKey(brandID, deviceID))
	if raw == nil {
		return hotzone.Device{}, false, nil
	}
	d, err := decodeDevice(brandID, deviceID, raw)
	return d, err == nil, err
}

// Device implements hotzone.Devices: the registration from disk, the
// position from memory.
func (db *DB) Device(_ context.Context, brandID, deviceID string) (hotzone.Device, *hotzone.DevicePosition, error) {
	raw, err := db.deviceRecord(joinKey(brandID, deviceID))
	if err != nil {
		return hotzone.Device{}, nil, fmt.Errorf("store: device: %w", err)
	}
	if raw == nil {
		return hotzone.Device{}, nil, errNoDevice
	}
	d, err := decodeDevice(brandID, deviceID, raw)
	if err != nil {
		return hotzone.Device{}, nil, fmt.Errorf("store: device: %w", err)
	}
	pos, _ := db.devs.Position(brandID, deviceID)
	return d, pos, nil
}

// RecordPosition implements hotzone.Devices: the position is kept in
// memory and written behind, so a ping never waits on the disk; a crash
// loses at most the positions of the last flush interval.
func (db *DB) RecordPosition(_ context.Context, brandID, deviceID string, p hotzone.Position, qualifying bool) error {
	if !db.devs.Record(brandID, deviceID, p, qualifying) {
		return errNoDevice
	}
	return nil
}

// DevicesIn implements hotzone.Devices through the device table's grid.
func (db *DB) DevicesIn(_ context.Context, brandID string, f *geo.Fence, since time.Time) ([]string, error) {
	if db.brandLock(brandID) == nil {
		return nil, notFound("brand")
	}
	return db.devs.Within(brandID, f, since), nil
}

// DeleteDevice implements hotzone.Devices in one transaction. A decision
// for the device commits before it (and is erased with it) or after it
// (and finds no device).
func (db *DB) DeleteDevice(_ context.Context, brandID, deviceID string) error {
	if db.brandLock(brandID) == nil {
		return notFound("brand")
	}
	lock := db.devLocks.lock(brandID, deviceID)
	lock.Lock()
	defer lock.Unlock()
	var changes []countsChange
	err := db.devUpdate(func(tx *bbolt.Tx) error {
		d, ok, err := readDevice(tx, brandID, deviceID)
		if err != nil {
			return err
		}
		if !ok {
			return errNoDevice
		}
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
		return tx.Bucket(bucketDevices).Delete(joinKey(brandID, deviceID))
	})
	if errors.Is(err, hotzone.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: delete device: %w", err)
	}
	db.devs.Remove(brandID, deviceID)
	db.present.erase(hotzone.DeviceRef{BrandID: brandID, DeviceID: deviceID})
	db.publishCounts(changes)
	db.flushMu.Lock()
	if db.erasedAt.IsZero() {
		db.erasedAt = db.now()
	}
	db.flushMu.Unlock()
	return nil
}

// Positions written behind are compacted (the snapshot rewritten, the
// log started over) when the log outgrows the snapshot, and within
// eraseCompaction of an erasure, so that an erased device's positions
// leave the disk too.
const (
	compactMinBytes = 64 << 20
	eraseCompaction = 10 * time.Minute
)

// flushBlockBytes bounds a block of a flush: a flush of many devices
// goes as several blocks and one sync, so its buffer stays this small
// however many devices pinged.
const flushBlockBytes = 1 << 20

// FlushPositions writes every position recorded since the last flush
// (blocks appended to the positions log, one disk sync), the manager
// keys' last use and the presences changed; it also tidies the fan-out
// grid.
func (db *DB) FlushPositions() error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	block := &db.flushBlock
	block.Reset()
	var werr error
	db.devs.TakeDirty(func(brandID string, deviceID []byte, gen int64, pos *hotzone.DevicePosition) {
		if werr != nil {
			return // every device is listed again below
		}
		block.AddBytes(brandID, deviceID, gen, pos)
		if block.Size() >= flushBlockBytes {
			werr = db.plog.Write(block)
		}
	})
	if werr == nil {
		werr = db.plog.Write(block)
	}
	if werr == nil {
		werr = db.plog.Sync()
	}
	if werr != nil {
		// Which of them reached the disk is not known: all go again.
		db.devs.RedirtyAll()
		return fmt.Errorf("store: flush positions: %w", werr)
	}
	if err := db.flushKeysUse(); err != nil {
		return err
	}
	if err := db.flushPresence(); err != nil {
		return err
	}
	logBytes, snapBytes := db.plog.Sizes()
	if logBytes > max(compactMinBytes, 2*snapBytes) || !db.erasedAt.IsZero() && db.now().Sub(db.erasedAt) >= eraseCompaction {
		if err := db.compactPositionsLocked(); err != nil {
			return err
		}
	}
	return nil
}

// flushKeysUse writes when each manager key touched since the last flush
// was last used.
func (db *DB) flushKeysUse() error {
	touched := db.keys.TakeTouched()
	if len(touched) == 0 {
		return nil
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
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
		db.keys.Retouch(touched)
		return fmt.Errorf("store: flush keys' last use: %w", err)
	}
	return nil
}

// compactPositionsLocked writes every position in memory as the new
// snapshot; flushMu is held.
func (db *DB) compactPositionsLocked() error {
	err := db.plog.Compact(func(yield func(poslog.Record)) {
		db.devs.Each(func(brandID, deviceID string, gen int64, pos hotzone.DevicePosition) {
			yield(poslog.Record{BrandID: brandID, DeviceID: deviceID, Gen: gen, Position: pos})
		})
	})
	if err != nil {
		return fmt.Errorf("store: compact positions: %w", err)
	}
	db.erasedAt = time.Time{}
	return nil
}

// RunWriteBehind, every interval until ctx ends, flushes positions,
// applies the registration journal to bbolt (a checkpoint, which groups
// also start once the journal holds checkpointEntries changes) and lets
// go of device memory the table no longer uses.
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
			if err := db.Checkpoint(); err != nil && onErr != nil {
				onErr(fmt.Errorf("store: apply the journal: %w", err))
			}
			db.releaseMapped()
		}
	}
}

// loadDevices puts every device in the table, with no more of it than
// its generation, then the positions written behind.
func (db *DB) loadDevices(tx *bbolt.Tx) error {
	err := tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
		brandID, deviceID := splitKey(k)
		created, err := deviceCreatedAt(v)
		if err != nil {
			return fmt.Errorf("store: device %q: %w", k, err)
		}
		db.devs.Add(brandID, deviceID, generation(created))
		return nil
	})
	if err != nil {
		return err
	}
	if err := db.plog.Replay(func(r poslog.Record) {
		db.devs.Restore(r.BrandID, r.DeviceID, r.Gen, r.Position)
	}); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := db.migratePositions(tx); err != nil {
		return err
	}
	db.devs.SyncGrid()
	return nil
}

// bucketPositions is where earlier versions wrote positions behind
// (brand\0device -> DevicePosition as JSON); opening moves them to the
// positions log.
var bucketPositions = []byte("positions")

func (db *DB) migratePositions(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketPositions)
	if b == nil {
		return nil
	}
	err := b.ForEach(func(k, v []byte) error {
		brandID, deviceID := splitKey(k)
		gen, ok := db.devs.Has(brandID, deviceID)
		if !ok {
			return nil
		}
		var pos hotzone.DevicePosition
		if err := json.Unmarshal(v, &pos); err != nil {
			return fmt.Errorf("store: position %q: %w", k, err)
		}
		db.devs.Restore(brandID, deviceID, gen, pos)
		return nil
	})
	if err != nil {
		return err
	}
	if err := db.compactPositionsLocked(); err != nil {
		return err
	}
	return tx.DeleteBucket(bucketPositions)
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
	// No registration may run meanwhile: it decides "new" from the
	// device table, which learns of these only after the commit.
	db.devLocks.lockAll()
	defer db.devLocks.unlockAll()
	for i := range ds {
		d := &ds[i]
		d.BrandID, d.CreatedAt, d.UpdatedAt = brandID, now, now
		if d.Token != "" {
			d.TokenAt = now
		}
		if _, ok := db.devs.Has(brandID, d.ID); ok {
			return fmt.Errorf("store: device %q exists: %w", d.ID, hotzone.ErrConflict)
		}
	}
	// Written in key order per bucket: bbolt inserts by shifting a node,
	// so random order (tokens are random) costs quadratic copying.
	type rec struct{ k, v []byte }
	var toks, devs []rec
	for _, d := range ds {
		devs = append(devs, rec{joinKey(brandID, d.ID), appendDevice(nil, &d)})
		if d.Token != "" {
			toks = append(toks, rec{joinKey(brandID, string(d.Provider), d.Token), []byte(d.ID)})
		}
	}
	byKey := func(a, b rec) int { return bytes.Compare(a.k, b.k) }
	slices.SortFunc(toks, byKey)
	slices.SortFunc(devs, byKey)
	err := db.devUpdate(func(tx *bbolt.Tx) error {
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
			if devices.Get(r.k) != nil {
				return fmt.Errorf("store: device %q exists: %w", r.k, hotzone.ErrConflict)
			}
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
		db.devs.Add(brandID, d.ID, generation(d.CreatedAt))
	}
	return nil
}

// DeviceIDs implements hotzone.Devices from the device table, which
// holds every registered device.
func (db *DB) DeviceIDs(_ context.Context, brandID string) ([]string, error) {
	if db.brandLock(brandID) == nil {
		return nil, notFound("brand")
	}
	ids := db.devs.IDs(brandID)
	slices.Sort(ids)
	return ids, nil
}
