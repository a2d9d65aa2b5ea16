package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// claims are the outbox's leases. They live in memory: bbolt is one
// process's, so a restart drops every lease at once, which is what their
// expiry would have done (everything unrecorded is due again).
type claims struct {
	mu    sync.Mutex
	m     map[string]lease // notification id -> its lease
	seq   uint64
	sweep int // sweep expired leases once the table has grown past this
}

type lease struct {
	token string
	until time.Time
}

func (c *claims) init() {
	c.m = map[string]lease{}
	c.sweep = 1024
}

// takenOver tells whether a claim other than token's holds id: a later
// claim, since one replaces another only after the first's lease passed.
func (c *claims) takenOver(id, token string) bool {
	l, ok := c.m[id]
	return ok && l.token != token
}

// Lanes implements hotzone.Outbox, skipping from lane to lane rather
// than reading every entry.
func (db *DB) Lanes(context.Context) ([]hotzone.Lane, error) {
	var out []hotzone.Lane
	err := db.bolt.View(func(tx *bbolt.Tx) error {
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

// Claim implements hotzone.Outbox. It walks the lane in id order from
// its start; what is claimed and not yet recorded (at most what the
// consumers have in flight) is skipped by a look at the lease table
// before anything is decoded.
func (db *DB) Claim(_ context.Context, lane hotzone.Lane, now time.Time, limit int, leaseFor time.Duration) ([]hotzone.Notification, error) {
	out := make([]hotzone.Notification, 0, min(limit, 4096))
	db.claims.mu.Lock()
	defer db.claims.mu.Unlock()
	db.claims.seq++
	token := strconv.FormatUint(db.claims.seq, 36)
	until := now.Add(leaseFor)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return scanOutbox(tx, lane.BrandID, laneKey(lane), func(id []byte) bool {
			l, ok := db.claims.m[string(id)]
			return !ok || !now.Before(l.until)
		}, func(n hotzone.Notification) bool {
			if n.Status == hotzone.StatusQueued && !n.NextAttempt.After(now) {
				n.Claim = token
				db.claims.m[n.ID] = lease{token, until}
				out = append(out, n)
			}
			return len(out) < limit
		})
	})
	if len(db.claims.m) > db.claims.sweep {
		for id, l := range db.claims.m {
			if !now.Before(l.until) {
				delete(db.claims.m, id)
			}
		}
		db.claims.sweep = max(1024, 2*len(db.claims.m))
	}
	return out, err
}

// laneKey is the outbox prefix of a lane.
func laneKey(l hotzone.Lane) []byte {
	return append(joinKey(l.BrandID, string(l.Provider)), 0)
}

// scanOutbox calls fn, in id order, with each notification of brandID
// whose outbox key starts with prefix, until fn returns false. want,
// when not nil, is asked first with the id, and an entry it refuses is
// not even decoded.
func scanOutbox(tx *bbolt.Tx, brandID string, prefix []byte, want func(id []byte) bool, fn func(hotzone.Notification) bool) error {
	notifs := tx.Bucket(bucketNotifs)
	c := tx.Bucket(bucketOutbox).Cursor()
	k, _ := c.Seek(prefix)
	var kbuf []byte
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := k[bytes.LastIndexByte(k, 0)+1:]
		if want != nil && !want(id) {
			continue
		}
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

// outboxStats is how many notifications wait and when the oldest of them
// was queued; ids are in creation order, so it is the first entry of a
// lane. Its time is the entry's, not the id's: ids never go back, so
// after the clock did an id's time is ahead of it.
func outboxStats(tx *bbolt.Tx) (int, time.Time) {
	b, notifs := tx.Bucket(bucketOutbox), tx.Bucket(bucketNotifs)
	n := b.Stats().KeyN
	var oldest time.Time
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			break
		}
		var first hotzone.Notification
		if raw := notifs.Get(joinKey(string(parts[0]), string(parts[2]))); raw != nil && decodeNotification(raw, &first) == nil &&
			(oldest.IsZero() || first.CreatedAt.Before(oldest)) {
			oldest = first.CreatedAt
		}
		k, _ = c.Seek(joinKey(string(parts[0]), string(parts[1]), "\xff"))
	}
	return n, oldest
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
	mine := make([]hotzone.Delivery, 0, len(ds))
	db.claims.mu.Lock()
	for _, d := range ds {
		if !db.claims.takenOver(d.NotificationID, d.Claim) {
			mine = append(mine, d)
		}
	}
	db.claims.mu.Unlock()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		clears = clears[:0]
		w := newNotifWriter(tx)
		deltas := map[string]map[string]hotzone.Counts{} // brand -> event -> change
		var n hotzone.Notification
		for _, d := range mine {
			// Queued is exactly "in the outbox" (Consider, Record,
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
			if prev != n.Status {
				if deltas[n.BrandID] == nil {
					deltas[n.BrandID] = map[string]hotzone.Counts{}
				}
				c := deltas[n.BrandID][n.EventID]
				c.Add(prev, -1)
				c.Add(n.Status, 1)
				deltas[n.BrandID][n.EventID] = c
			}
			if d.Status == hotzone.StatusInvalidToken {
				cleared, err := clearToken(tx, n.BrandID, n.DeviceID, d.TokenInvalidSince)
				if err != nil {
					return err
				}
				if cleared.Token != "" {
					clears = append(clears, clear{n.BrandID, n.DeviceID, cleared})
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
	db.claims.mu.Lock()
	for _, d := range mine {
		if l, ok := db.claims.m[d.NotificationID]; ok && l.token == d.Claim {
			delete(db.claims.m, d.NotificationID)
		}
	}
	db.claims.mu.Unlock()
	for _, c := range clears {
		db.clearTokenInMemory(c.brandID, c.deviceID, c.cleared)
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

// clearTokenInMemory follows clearToken's commit. A registration that
// committed in between (the same token again, or a new one) left memory
// as the disk now has it: only the very token cleared on disk, with its
// registration time, is cleared here.
func (db *DB) clearTokenInMemory(brandID, deviceID string, cleared hotzone.Device) {
	_, e := db.brandEntry(brandID, deviceID)
	if e == nil {
		return
	}
	e.mu.Lock()
	if e.dev.Token == cleared.Token && e.dev.Provider == cleared.Provider && e.dev.TokenAt.Equal(cleared.TokenAt) {
		e.dev.Provider, e.dev.Token, e.dev.TokenAt = "", "", time.Time{}
	}
	e.mu.Unlock()
}

// Release implements hotzone.Outbox.
func (db *DB) Release(_ context.Context, lane hotzone.Lane) error {
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		var held []hotzone.Notification
		err := scanOutbox(tx, lane.BrandID, laneKey(lane), nil, func(n hotzone.Notification) bool {
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
