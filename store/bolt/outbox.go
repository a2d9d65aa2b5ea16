package bolt

import (
	"context"
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
	var changes []countsChange
	// A result whose lease passed and was taken over is not ours to
	// record. The lease table is not held across the commit (a Claim
	// would wait for the disk): a lease passing during the commit can
	// only hand the notification to a consumer that will find it no
	// longer queued, or queued again for a retry.
	mine := db.leases.Mine(ds)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
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
				if err := clearToken(tx, prev.BrandID, prev.DeviceID, d.TokenInvalidSince); err != nil {
					return err
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
	db.publishCounts(changes)
	return nil
}

// clearToken removes a device's token if it was registered before since
// (zero since: always), so a dead token is never tried again until the
// app registers a new one.
func clearToken(tx *bbolt.Tx, brandID, deviceID string, since time.Time) error {
	d, ok, err := readDevice(tx, brandID, deviceID)
	if err != nil || !ok || d.Token == "" || (!since.IsZero() && !d.TokenAt.Before(since)) {
		return err
	}
	if err := tx.Bucket(bucketTokens).Delete(joinKey(brandID, string(d.Provider), d.Token)); err != nil {
		return err
	}
	d.Provider, d.Token, d.TokenAt = "", "", time.Time{}
	return tx.Bucket(bucketDevices).Put(joinKey(brandID, deviceID), appendDevice(nil, &d))
}

// Release implements hotzone.Outbox.
func (db *DB) Release(_ context.Context, lane hotzone.Lane) error {
	return db.bolt.Update(func(tx *bbolt.Tx) error { return ledger.Release(tx, lane) })
}
