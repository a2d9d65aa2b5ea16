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
	var dead []deadToken
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		dead = dead[:0]
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
				dead = append(dead, deadToken{prev.BrandID, prev.DeviceID, d.TokenInvalidSince})
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
	// The deliveries are recorded whatever happens here: a token left
	// in place is found dead again at its next send (and a journal that
	// cannot write fails registrations and checkpoints loudly).
	_ = db.clearTokens(dead)
	return nil
}

// deadToken is a token a provider refused (since: as of when).
type deadToken struct {
	brandID, deviceID string
	since             time.Time
}

// clearTokens removes the tokens the providers refused, each only if
// the device registered it before since (zero since: always), so a dead
// token is never tried again until the app registers a new one. It runs
// after the deliveries' commit, through the journal: a crash between
// the two leaves the token, and the next send to it finds it dead again.
func (db *DB) clearTokens(dead []deadToken) error {
	if len(dead) == 0 {
		return nil
	}
	return db.devGroup(func(tx *devTx) error {
		for _, t := range dead {
			k := joinKey(t.brandID, t.deviceID)
			raw := tx.get(classDevice, k)
			if raw == nil {
				continue
			}
			d, err := decodeDevice(t.brandID, t.deviceID, raw)
			if err != nil {
				return err
			}
			if d.Token == "" || (!t.since.IsZero() && !d.TokenAt.Before(t.since)) {
				continue
			}
			tx.del(classToken, joinKey(t.brandID, string(d.Provider), d.Token))
			d.Provider, d.Token, d.TokenAt = "", "", time.Time{}
			tx.put(classDevice, k, appendDevice(nil, &d))
		}
		return nil
	})
}

// Release implements hotzone.Outbox.
func (db *DB) Release(_ context.Context, lane hotzone.Lane) error {
	return db.bolt.Update(func(tx *bbolt.Tx) error { return ledger.Release(tx, lane) })
}
