package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// Lanes lists the lanes that have queued notifications, skipping from
// lane to lane rather than reading every entry.
func (db *DB) Lanes() ([]hotzone.Lane, error) {
	var out []hotzone.Lane
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := c.First(); k != nil; {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) != 3 {
				return fmt.Errorf("store: outbox key %q", k)
			}
			out = append(out, hotzone.Lane{BrandID: string(parts[0]), Provider: hotzone.Provider(parts[1])})
			// Every id sorts below 0xff: seek past this lane.
			next := joinKey(string(parts[0]), string(parts[1]), "\xff")
			k, _ = c.Seek(next)
		}
		return nil
	})
	return out, err
}

// Due returns up to limit of the lane's queued notifications whose next
// attempt is due, oldest first, starting after the id after ("" for the
// start of the lane): a dispatcher keeps reading on while what it read
// before is still being sent. The outbox is durable: what a crash
// interrupts is found here again on the next start.
func (db *DB) Due(lane hotzone.Lane, now time.Time, after string, limit int) ([]hotzone.Notification, error) {
	out := make([]hotzone.Notification, 0, min(limit, 4096))
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return scanOutbox(tx, lane.BrandID, laneKey(lane), after, func(n hotzone.Notification) bool {
			if n.Status == hotzone.StatusQueued && !n.NextAttempt.After(now) {
				out = append(out, n)
			}
			return len(out) < limit
		})
	})
	return out, err
}

// laneKey is the outbox prefix of a lane.
func laneKey(l hotzone.Lane) []byte {
	return append(joinKey(l.BrandID, string(l.Provider)), 0)
}

// scanOutbox calls fn, in id order, with each notification of brandID
// whose outbox key starts with prefix and whose id comes after the id
// after ("" for all), until fn returns false.
func scanOutbox(tx *bolt.Tx, brandID string, prefix []byte, after string, fn func(hotzone.Notification) bool) error {
	notifs := tx.Bucket(bucketNotifs)
	c := tx.Bucket(bucketOutbox).Cursor()
	start := append(bytes.Clone(prefix), after...)
	k, _ := c.Seek(start)
	if after != "" && bytes.Equal(k, start) {
		k, _ = c.Next()
	}
	var kbuf []byte
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := k[bytes.LastIndexByte(k, 0)+1:]
		kbuf = key(kbuf, brandID, string(id))
		raw := notifs.Get(kbuf)
		if raw == nil {
			continue
		}
		var n hotzone.Notification
		if err := decodeNotification(raw, &n); err != nil {
			return fmt.Errorf("store: outbox %q: %w", k, err)
		}
		if !fn(n) {
			return nil
		}
	}
	return nil
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
	// A move is what the in-memory counts and tokens need of a recorded
	// result; the strings are the decoded entry's, not copies.
	type move struct {
		eventID, brandID, deviceID string
		prev, status               hotzone.NotificationStatus
		tokenInvalidSince          time.Time
		clearToken                 bool
	}
	moves := make([]move, 0, len(ds))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		moves = moves[:0]
		w := newNotifWriter(tx)
		var n hotzone.Notification
		for _, d := range ds {
			// Queued is exactly "in the outbox" (Consider, Complete,
			// expiry and erasure keep the two together), so the status
			// alone says whether the result still applies.
			raw := w.notifs.Get(key(w.kbuf2, d.BrandID, d.NotificationID))
			if raw == nil {
				continue
			}
			if err := decodeNotification(raw, &n); err != nil {
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
				if err := w.outbox.Delete(key(w.kbuf, n.BrandID, string(n.Provider), n.ID)); err != nil {
					return err
				}
			}
			if d.Status == hotzone.StatusSent || d.Status == hotzone.StatusDryRun {
				at := d.At.UTC()
				n.SentAt = &at
			}
			if err := w.putNotification(&n); err != nil {
				return err
			}
			m := move{eventID: n.EventID, brandID: n.BrandID, deviceID: n.DeviceID, prev: prev, status: n.Status}
			if d.Status == hotzone.StatusInvalidToken {
				if err := clearToken(tx, n.BrandID, n.DeviceID, d.TokenInvalidSince); err != nil {
					return err
				}
				m.clearToken, m.tokenInvalidSince = true, d.TokenInvalidSince
			}
			moves = append(moves, m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: complete deliveries: %w", err)
	}
	for _, m := range moves {
		if m.clearToken {
			db.clearTokenInMemory(m.brandID, m.deviceID, m.tokenInvalidSince)
		}
	}
	db.ev.mu.Lock()
	defer db.ev.mu.Unlock()
	for _, m := range moves {
		es := db.ev.byID[m.eventID]
		if es == nil || m.prev == m.status {
			continue
		}
		es.counts.Add(m.prev, -1)
		es.counts.Add(m.status, 1)
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

func (db *DB) clearTokenInMemory(brandID, deviceID string, since time.Time) {
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

// Release makes every queued notification of the lane due now: new
// credentials should not wait out the backoff the old ones earned.
func (db *DB) Release(lane hotzone.Lane) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		var held []hotzone.Notification
		err := scanOutbox(tx, lane.BrandID, laneKey(lane), "", func(n hotzone.Notification) bool {
			if !n.NextAttempt.IsZero() {
				n.NextAttempt = time.Time{}
				held = append(held, n)
			}
			return true
		})
		if err != nil {
			return err
		}
		w := newNotifWriter(tx)
		for i := range held {
			if err := w.putNotification(&held[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// OutboxOldest is when the oldest queued notification was queued (zero
// when the outbox is empty); ids are time-ordered, so it is the first
// entry of each lane.
func (db *DB) OutboxOldest() time.Time {
	var oldest time.Time
	lanes, _ := db.Lanes()
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for _, l := range lanes {
			prefix := laneKey(l)
			if k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
				if t, ok := hotzone.IDTime(string(k[len(prefix):])); ok && (oldest.IsZero() || t.Before(oldest)) {
					oldest = t
				}
			}
		}
		return nil
	})
	return oldest
}

// Stats are the counts an operator watches.
type Stats struct {
	Brands, Stores, Devices, LiveEvents int
}

// Stats counts what the in-memory views hold.
func (db *DB) Stats() Stats {
	var s Stats
	db.mu.RLock()
	brands := make([]*brandState, 0, len(db.brands))
	for _, bs := range db.brands {
		brands = append(brands, bs)
	}
	db.mu.RUnlock()
	s.Brands = len(brands)
	for _, bs := range brands {
		bs.mu.RLock()
		s.Stores += len(bs.stores)
		s.Devices += len(bs.devices)
		bs.mu.RUnlock()
	}
	db.ev.mu.RLock()
	s.LiveEvents = len(db.ev.live)
	db.ev.mu.RUnlock()
	return s
}
