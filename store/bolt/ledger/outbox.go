package ledger

import (
	"bytes"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// Lanes lists the lanes that have queued notifications, skipping from
// lane to lane rather than reading every entry.
func Lanes(tx *bbolt.Tx) ([]hotzone.Lane, error) {
	var out []hotzone.Lane
	c := tx.Bucket(bucketOutbox).Cursor()
	for k, _ := c.First(); k != nil; {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("outbox key %q", k)
		}
		out = append(out, hotzone.Lane{BrandID: string(parts[0]), Provider: hotzone.Provider(parts[1])})
		// Every id sorts below 0xff: seek past this lane.
		k, _ = c.Seek(key(nil, string(parts[0]), string(parts[1]), "\xff"))
	}
	return out, nil
}

// Scan calls fn, in id order, with each notification queued in the lane,
// until fn returns false. want, when not nil, is asked first with the
// id, and an entry it refuses is not even decoded.
func Scan(tx *bbolt.Tx, lane hotzone.Lane, want func(id []byte) bool, fn func(hotzone.Notification) bool) error {
	return scan(tx, lane.BrandID, append(key(nil, lane.BrandID, string(lane.Provider)), 0), want, fn)
}

// scan is Scan over every outbox key of brandID that starts with prefix.
func scan(tx *bbolt.Tx, brandID string, prefix []byte, want func(id []byte) bool, fn func(hotzone.Notification) bool) error {
	notifs := tx.Bucket(bucketNotifs)
	c := tx.Bucket(bucketOutbox).Cursor()
	var kbuf []byte
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
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
			return fmt.Errorf("outbox %q: %w", k, err)
		}
		if !fn(n) {
			return nil
		}
	}
	return nil
}

// Stats is how many notifications wait and when the oldest of them was
// created; ids are in creation order, so it is the first entry of a
// lane. Its time is the entry's, not the id's: ids never go back, so
// after the clock did, an id's time is ahead of it.
func Stats(tx *bbolt.Tx) (int, time.Time) {
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
		if raw := notifs.Get(key(nil, string(parts[0]), string(parts[2]))); raw != nil && decodeNotification(raw, &first) == nil &&
			(oldest.IsZero() || first.CreatedAt.Before(oldest)) {
			oldest = first.CreatedAt
		}
		k, _ = c.Seek(key(nil, string(parts[0]), string(parts[1]), "\xff"))
	}
	return n, oldest
}

// Record applies one send result: it answers the entry as it was and
// whether the result applied, which it does only while the entry is
// still queued (Consider, Record, Expire and Erase keep "queued" and "in
// the outbox" together, so the status alone says so). A final result
// takes the entry out of the outbox.
func (w *Writer) Record(d hotzone.Delivery) (hotzone.Notification, bool, error) {
	var n hotzone.Notification
	raw := w.notifs.Get(key(w.kbuf2, d.BrandID, d.NotificationID))
	if raw == nil {
		return n, false, nil // erased
	}
	if err := decodeNotification(raw, &n); err != nil {
		return n, false, err
	}
	if n.Status != hotzone.StatusQueued {
		return n, false, nil
	}
	prev := n
	n.Apply(&d)
	if d.Status != hotzone.StatusQueued {
		if err := w.outbox.Delete(outboxKey(w.kbuf, &n)); err != nil {
			return prev, false, err
		}
	}
	return prev, true, w.put(&n)
}

// Release makes every queued notification of the lane due now.
func Release(tx *bbolt.Tx, lane hotzone.Lane) error {
	var held []hotzone.Notification
	err := Scan(tx, lane, nil, func(n hotzone.Notification) bool {
		if !n.NextAttempt.IsZero() {
			n.NextAttempt = time.Time{}
			held = append(held, n)
		}
		return true
	})
	if err != nil {
		return err
	}
	w := NewWriter(tx)
	for i := range held {
		if err := w.put(&held[i]); err != nil {
			return err
		}
	}
	return nil
}
