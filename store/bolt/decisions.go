package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/bolt/ledger"
)

// Consider implements hotzone.Decisions. The devices given in one call
// are decided in one transaction (a fan-out's chunk, or concurrent
// pings sharing a commit through bbolt's Batch); the event's liveness is
// checked in the same transaction, so a decision commits either before
// the event's end (and is expired by it) or sees it ended.
func (db *DB) Consider(_ context.Context, ev hotzone.Event, deviceIDs []string, decide hotzone.DecideFunc) ([]hotzone.Outcome, error) {
	if db.brandLock(ev.BrandID) == nil {
		return nil, notFound("brand")
	}
	now := db.now().UTC()
	out := make([]hotzone.Outcome, len(deviceIDs))
	var changes []countsChange
	fn := func(tx *bbolt.Tx) error {
		changes = nil
		if !ledger.IsLive(tx, ev) {
			for i := range out {
				out[i] = hotzone.Outcome{DeviceID: deviceIDs[i]}
			}
			return nil
		}
		w := ledger.NewWriter(tx)
		if len(deviceIDs) > 1 {
			w.Preload(ev, deviceIDs)
		}
		var delta hotzone.Counts
		// Each device is read here, in the transaction: bbolt runs one
		// writer at a time, so a device erased before it is gone, and one
		// erased after has what this writes erased with it. A change in
		// the journal's overlay is read first. What the overlay holds is
		// never older than bbolt: a checkpoint drops what it applied only
		// after its commit (the same values as bbolt has then), and a
		// direct writer (devUpdate) holds the overlay's readers from its
		// commit until it has cleared the overlay.
		devices := tx.Bucket(bucketDevices).Cursor()
		var kbuf []byte
		for i, id := range deviceIDs {
			var d hotzone.Device
			kbuf = key(kbuf, ev.BrandID, id)
			raw, ok := db.journal.lookup(classDevice, kbuf)
			if !ok {
				raw = get(devices, kbuf)
			}
			if raw != nil {
				var err error
				if d, err = decodeDevice(ev.BrandID, id, raw); err != nil {
					return fmt.Errorf("device %q: %w", id, err)
				}
			}
			o, err := w.Consider(ev, id, d, decide, now)
			if err != nil {
				return err
			}
			if o.Changed {
				if o.Prev != "" {
					delta.Add(o.Prev, -1)
				}
				delta.Add(o.Status, 1)
			}
			out[i] = o
		}
		var err error
		changes, err = db.addCounts(tx, ev.BrandID, map[string]hotzone.Counts{ev.ID: delta})
		return err
	}
	var err error
	if len(deviceIDs) == 1 {
		// One device is a ping: concurrent pings share a commit.
		err = db.group(fn)
	} else {
		err = db.bolt.Update(fn)
	}
	if err != nil {
		return nil, fmt.Errorf("store: consider: %w", err)
	}
	db.publishCounts(changes)
	return out, nil
}

// Notifications implements hotzone.Log.
func (db *DB) Notifications(_ context.Context, brandID string, q hotzone.NotificationQuery) ([]hotzone.Notification, bool, error) {
	if db.brandLock(brandID) == nil {
		return nil, false, notFound("brand")
	}
	var (
		out  []hotzone.Notification
		more bool
	)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		out, more, err = ledger.List(tx, brandID, q)
		return err
	})
	return out, more, err
}
