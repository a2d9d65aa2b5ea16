package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// OldEvents lists a brand's ended events that ended before cutoff.
func OldEvents(tx *bbolt.Tx, brandID string, cutoff time.Time) ([]string, error) {
	var ids []string
	prefix := append([]byte(brandID), 0)
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ev struct {
			Status hotzone.EventStatus `json:"status"`
			EndsAt time.Time           `json:"ends_at"`
		}
		if err := json.Unmarshal(v, &ev); err != nil {
			return nil, fmt.Errorf("event %q: %w", k, err)
		}
		if ev.Status == hotzone.EventEnded && ev.EndsAt.Before(cutoff) {
			ids = append(ids, string(k[len(prefix):]))
		}
	}
	return ids, nil
}

// PruneEvent deletes up to limit of an event's log entries (each with
// its index entry and any outbox entry); once none is left it deletes
// the event and its counts. It answers how many entries it deleted and
// whether the event is gone. A live event is never pruned.
func PruneEvent(tx *bbolt.Tx, brandID, eventID string, limit int) (int, bool, error) {
	ev, _, err := Event(tx, brandID, eventID)
	if err != nil {
		return 0, true, nil // gone already
	}
	if ev.Status != hotzone.EventEnded {
		return 0, false, fmt.Errorf("event %s is %s, not ended", eventID, ev.Status)
	}
	w := NewWriter(tx)
	prefix := key(nil, brandID, eventID, "")
	var keys [][]byte
	c := w.keys.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < limit; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		id := w.keys.Get(k)
		nk := key(nil, brandID, string(id))
		if v := w.notifs.Get(nk); v != nil {
			var n hotzone.Notification
			if err := decodeNotification(v, &n); err == nil && n.Status == hotzone.StatusQueued {
				if err := w.outbox.Delete(outboxKey(nil, &n)); err != nil {
					return 0, false, err
				}
			}
			if err := w.notifs.Delete(nk); err != nil {
				return 0, false, err
			}
		}
		if err := w.keys.Delete(k); err != nil {
			return 0, false, err
		}
	}
	if len(keys) == limit {
		return len(keys), false, nil
	}
	if err := tx.Bucket(bucketCounts).Delete(key(nil, brandID, eventID)); err != nil {
		return len(keys), false, err
	}
	return len(keys), true, tx.Bucket(bucketEvents).Delete(key(nil, brandID, eventID))
}

// PruneIdempotency deletes a brand's idempotency keys older than the
// window, in which they no longer answer anything.
func PruneIdempotency(tx *bbolt.Tx, brandID string, now time.Time) error {
	prefix := append([]byte(brandID), 0)
	b := tx.Bucket(bucketIdem)
	var old [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var rec idemRecord
		if json.Unmarshal(v, &rec) != nil || now.Sub(rec.At) >= hotzone.IdempotencyWindow {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
