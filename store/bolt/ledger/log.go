package ledger

import (
	"bytes"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// List reads a page of a brand's log, newest first, by a backward walk
// (ids sort by creation), and whether more follow.
func List(tx *bbolt.Tx, brandID string, q hotzone.NotificationQuery) ([]hotzone.Notification, bool, error) {
	var out []hotzone.Notification
	prefix := append([]byte(brandID), 0)
	c := tx.Bucket(bucketNotifs).Cursor()
	// Seek to the first key at or after the bound, then step back.
	bound := append([]byte(brandID), 1) // just past the brand
	if q.Before != "" {
		bound = key(nil, brandID, q.Before)
	}
	var k, v []byte
	if first, _ := c.Seek(bound); first == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		var n hotzone.Notification
		if err := decodeNotification(v, &n); err != nil {
			return nil, false, err
		}
		if (q.EventID != "" && n.EventID != q.EventID) || (q.DeviceID != "" && n.DeviceID != q.DeviceID) || (q.Status != "" && n.Status != q.Status) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			return out, true, nil
		}
		out = append(out, n)
	}
	return out, false, nil
}

// Expire turns the event's queued notifications into expired and takes
// them out of the outbox, answering how many. Every queued notification
// is in the outbox, so the outbox (only what is pending) is what it
// scans.
func Expire(tx *bbolt.Tx, ev hotzone.Event) (int, error) {
	var out []hotzone.Notification
	err := scan(tx, ev.BrandID, append([]byte(ev.BrandID), 0), nil, func(n hotzone.Notification) bool {
		if n.EventID == ev.ID && n.Status == hotzone.StatusQueued {
			n.Status, n.NextAttempt = hotzone.StatusExpired, time.Time{}
			out = append(out, n)
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	w := NewWriter(tx)
	// Deleting behind a bbolt cursor can skip keys; change after the scan.
	for _, n := range out {
		if err := w.outbox.Delete(outboxKey(w.kbuf, &n)); err != nil {
			return 0, err
		}
		if err := w.put(&n); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

// Erase deletes every log entry of a device, looking up its index entry
// in each of the events given (the brand's), and its queue history; it
// answers the change it makes to each event's counts.
func Erase(tx *bbolt.Tx, brandID, deviceID string, eventIDs []string) (map[string]hotzone.Counts, error) {
	w := NewWriter(tx)
	var (
		out  []hotzone.Notification
		keys [][]byte
	)
	for _, eventID := range eventIDs {
		ik := key(nil, brandID, eventID, deviceID)
		id := get(w.cKeys, ik)
		if id == nil {
			continue
		}
		keys = append(keys, ik)
		if v := w.notifs.Get(key(nil, brandID, string(id))); v != nil {
			var n hotzone.Notification
			if err := decodeNotification(v, &n); err != nil {
				return nil, err
			}
			out = append(out, n)
		}
	}
	for _, k := range keys {
		if err := w.keys.Delete(k); err != nil {
			return nil, err
		}
	}
	deltas := map[string]hotzone.Counts{}
	for _, n := range out {
		if err := w.notifs.Delete(key(nil, brandID, n.ID)); err != nil {
			return nil, err
		}
		if err := w.outbox.Delete(outboxKey(w.kbuf, &n)); err != nil {
			return nil, err
		}
		d := deltas[n.EventID]
		d.Add(n.Status, -1)
		if n.OpenedAt != nil {
			d.Opened--
		}
		deltas[n.EventID] = d
	}
	return deltas, ForgetHistory(tx, brandID, deviceID)
}

// bucketNotifKeysV1 is the index as earlier versions kept it, keyed
// brand\0device\0event; migrateNotifKeys moves it to bucketNotifKeys.
var bucketNotifKeysV1 = []byte("notif_keys")

// migrateNotifKeys rewrites an index of an earlier version, if any, in
// the current order.
func migrateNotifKeys(tx *bbolt.Tx) error {
	old := tx.Bucket(bucketNotifKeysV1)
	if old == nil {
		return nil
	}
	idx, err := tx.CreateBucketIfNotExists(bucketNotifKeys)
	if err != nil {
		return err
	}
	if err := old.ForEach(func(k, v []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			return fmt.Errorf("index key %q", k)
		}
		return idx.Put(key(nil, string(parts[0]), string(parts[2]), string(parts[1])), bytes.Clone(v))
	}); err != nil {
		return err
	}
	return tx.DeleteBucket(bucketNotifKeysV1)
}
