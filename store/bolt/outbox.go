package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/bolt/ledger"
)

// Lanes implements hotzone.Outbox.
func (db *DB) Lanes(context.Context) ([]hotzone.Lane, error) {
	var out []hotzone.Lane
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = ledger.Lanes(tx)
		return err
	})
	return out, err
}

// Claim implements hotzone.Outbox with leases in memory.
func (db *DB) Claim(_ context.Context, lane hotzone.Lane, now time.Time, limit int, lease time.Duration) ([]hotzone.Notification, error) {
	var out []hotzone.Notification
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = db.leases.Claim(tx, lane, now, limit, lease)
		return err
	})
	return out, err
}

// Record implements hotzone.Outbox in one transaction.
func (db *DB) Record(_ context.Context, ds []hotzone.Delivery) error {
	// A token to clear is the in-memory half of an invalid_token result;
	// the strings are the decoded entry's, not copies.
	type clear struct {
		brandID, deviceID string
		cleared           hotzone.Device // as it was on disk before
	}
	var (
		clears  []clear
		changes []countsChange
	)
	// A result whose lease passed and was taken over is not ours to
	// record. The lease table is not held across the commit (a Claim
	// would wait for the disk): a lease passing during the commit can
	// only hand the notification to a consumer that will find it no
	// longer queued, or queued again for a retry.
	mine := db.leases.Mine(ds)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		clears = clears[:0]
		w := ledger.NewWriter(tx)
		deltas := map[string]map[string]hotzone.Counts{} // brand -> event -> change
		for _, d := range mine {
			prev, applied, err := w.Record(d)
			if err != nil {
				return err
			}
			if !applied {
				continue
			}
			if prev.Status != d.Status {
				if deltas[prev.BrandID] == nil {
					deltas[prev.BrandID] = map[string]hotzone.Counts{}
				}
				c := deltas[prev.BrandID][prev.EventID]
				c.Add(prev.Status, -1)
				c.Add(d.Status, 1)
				deltas[prev.BrandID][prev.EventID] = c
			}
			if d.Status == hotzone.StatusInvalidToken {
				cleared, err := clearToken(tx, prev.BrandID, prev.DeviceID, d.TokenInvalidSince)
				if err != nil {
					return err
				}
				if cleared.Token != "" {
					clears = append(clears, clear{prev.BrandID, prev.DeviceID, cleared})
				}
			}
		}
		changes = changes[:0]
		for brandID, d := range deltas {
			ch, err := db.addCounts(tx, brandID, d)
			if err != nil {
				return err
			}
			changes = append(changes, ch...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record deliveries: %w", err)
	}
	db.leases.Done(mine)
	for _, c := range clears {
		db.devs.ClearToken(c.brandID, c.deviceID, c.cleared)
	}
	db.publishCounts(changes)
	return nil
}

// clearToken removes a device's token if it was registered before since
// (zero since: always), so a dead token is never tried again until the
// app registers a new one. It answers the device as it was when it
// cleared a token, else the zero Device.
func clearToken(tx *bbolt.Tx, brandID, deviceID string, since time.Time) (hotzone.Device, error) {
	devices := tx.Bucket(bucketDevices)
	k := joinKey(brandID, deviceID)
	raw := devices.Get(k)
	if raw == nil {
		return hotzone.Device{}, nil
	}
	var d hotzone.Device
	if err := json.Unmarshal(raw, &d); err != nil {
		return hotzone.Device{}, err
	}
	if d.Token == "" || (!since.IsZero() && !d.TokenAt.Before(since)) {
		return hotzone.Device{}, nil
	}
	if err := tx.Bucket(bucketTokens).Delete(joinKey(brandID, string(d.Provider), d.Token)); err != nil {
		return hotzone.Device{}, err
	}
	cleared := d
	d.Provider, d.Token, d.TokenAt = "", "", time.Time{}
	return cleared, putJSON(devices, k, d)
}

// Release implements hotzone.Outbox.
func (db *DB) Release(_ context.Context, lane hotzone.Lane) error {
	return db.bolt.Update(func(tx *bbolt.Tx) error { return ledger.Release(tx, lane) })
}
