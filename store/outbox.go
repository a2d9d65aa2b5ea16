package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// Due returns up to limit queued notifications whose next attempt is due,
// oldest first. The outbox is durable: what a crash interrupts is found
// here again on the next start.
func (db *DB) Due(now time.Time, limit int) ([]hotzone.Notification, error) {
	var out []hotzone.Notification
	err := db.bolt.View(func(tx *bolt.Tx) error {
		notifs := tx.Bucket(bucketNotifs)
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			raw := notifs.Get(joinKey(string(v), string(k)))
			if raw == nil {
				continue
			}
			var n hotzone.Notification
			if err := json.Unmarshal(raw, &n); err != nil {
				return fmt.Errorf("store: outbox %s: %w", k, err)
			}
			if n.Status == hotzone.StatusQueued && !n.NextAttempt.After(now) {
				out = append(out, n)
			}
		}
		return nil
	})
	return out, err
}

// OutboxLen is how many notifications wait in the outbox.
func (db *DB) OutboxLen() int {
	n := 0
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return n
}

// Complete records the results of send attempts in one transaction. A
// notification that is no longer queued (its event ended meanwhile, or
// the device was erased) keeps its status.
func (db *DB) Complete(ds []hotzone.Delivery) error {
	type move struct {
		n    hotzone.Notification
		prev hotzone.NotificationStatus
	}
	var (
		moves   []move
		cleared []hotzone.Notification
	)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		moves, cleared = moves[:0], cleared[:0]
		w := newNotifWriter(tx)
		for _, d := range ds {
			brand := w.outbox.Get([]byte(d.NotificationID))
			if brand == nil {
				continue
			}
			key := joinKey(string(brand), d.NotificationID)
			raw := w.notifs.Get(key)
			if raw == nil {
				continue
			}
			var n hotzone.Notification
			if err := json.Unmarshal(raw, &n); err != nil {
				return err
			}
			if n.Status != hotzone.StatusQueued {
				continue
			}
			prev := n.Status
			n.Attempts++
			if d.Error != "" {
				e := d.Error
				n.LastError = &e
			}
			if d.ProviderID != "" {
				n.ProviderID = d.ProviderID
			}
			n.Status = d.Status
			if d.Status == hotzone.StatusQueued {
				n.NextAttempt = d.NextAttempt
			} else {
				n.NextAttempt = time.Time{}
				if err := w.outbox.Delete([]byte(n.ID)); err != nil {
					return err
				}
			}
			if d.Status == hotzone.StatusSent || d.Status == hotzone.StatusDryRun {
				at := d.At.UTC()
				n.SentAt = &at
			}
			if err := putJSON(w.notifs, key, n); err != nil {
				return err
			}
			if d.Status == hotzone.StatusInvalidToken {
				if err := clearToken(tx, n.BrandID, n.DeviceID, d.TokenInvalidSince); err != nil {
					return err
				}
				cleared = append(cleared, n)
			}
			moves = append(moves, move{n, prev})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: complete deliveries: %w", err)
	}
	for _, n := range cleared {
		db.clearTokenInMemory(n.BrandID, n.DeviceID, ds, n.ID)
	}
	db.ev.mu.Lock()
	defer db.ev.mu.Unlock()
	for _, m := range moves {
		es := db.ev.byID[m.n.EventID]
		if es == nil || m.prev == m.n.Status {
			continue
		}
		es.counts.Add(m.prev, -1)
		es.counts.Add(m.n.Status, 1)
		db.ev.signalLocked(storeRef{es.ev.BrandID, es.ev.StoreID})
	}
	return nil
}

// clearToken removes a device's token if it was registered before since
// (zero since: always), so a dead token is never tried again until the
// app registers a new one.
func clearToken(tx *bolt.Tx, brandID, deviceID string, since time.Time) error {
	devices := tx.Bucket(bucketDevices)
	k := joinKey(brandID, deviceID)
	raw := devices.Get(k)
	if raw == nil {
		return nil
	}
	var d hotzone.Device
	if err := json.Unmarshal(raw, &d); err != nil {
		return err
	}
	if d.Token == "" || (!since.IsZero() && !d.TokenAt.Before(since)) {
		return nil
	}
	if err := tx.Bucket(bucketTokens).Delete(joinKey(brandID, string(d.Provider), d.Token)); err != nil {
		return err
	}
	d.Provider, d.Token, d.TokenAt = "", "", time.Time{}
	return putJSON(devices, k, d)
}

func (db *DB) clearTokenInMemory(brandID, deviceID string, ds []hotzone.Delivery, notifID string) {
	var since time.Time
	for _, d := range ds {
		if d.NotificationID == notifID {
			since = d.TokenInvalidSince
		}
	}
	e := db.entry(brandID, deviceID)
	if e == nil {
		return
	}
	e.mu.Lock()
	if e.dev.Token != "" && (since.IsZero() || e.dev.TokenAt.Before(since)) {
		e.dev.Provider, e.dev.Token, e.dev.TokenAt = "", "", time.Time{}
	}
	e.mu.Unlock()
}
