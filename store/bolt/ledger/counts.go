package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// Counts are kept per event as six uvarints (queued, sent, suppressed,
// failed, expired, opened; records of versions before opens have five);
// devices_in_fence is the sum of the first five. They change in the
// same transaction as the entries they count, so they equal the log.
func appendCounts(buf []byte, c hotzone.Counts) []byte {
	for _, n := range [...]int{c.Queued, c.Sent, c.Suppressed, c.Failed, c.Expired, c.Opened} {
		buf = binary.AppendUvarint(buf, uint64(max(n, 0)))
	}
	return buf
}

var errBadCounts = errors.New("malformed counts record")

func decodeCounts(b []byte) (hotzone.Counts, error) {
	var c hotzone.Counts
	if b == nil {
		return c, nil
	}
	for i, p := range [...]*int{&c.Queued, &c.Sent, &c.Suppressed, &c.Failed, &c.Expired, &c.Opened} {
		if i == 5 && len(b) == 0 {
			break // written before opens were counted
		}
		v, n := binary.Uvarint(b)
		if n <= 0 || v > 1<<40 {
			return hotzone.Counts{}, errBadCounts
		}
		*p, b = int(v), b[n:]
	}
	if len(b) != 0 {
		return hotzone.Counts{}, errBadCounts
	}
	c.DevicesInFence = c.Queued + c.Sent + c.Suppressed + c.Failed + c.Expired
	return c, nil
}

// Counts reads an event's counts (zero for an event without entries).
func Counts(tx *bbolt.Tx, brandID, eventID string) (hotzone.Counts, error) {
	c, err := decodeCounts(tx.Bucket(bucketCounts).Get(key(nil, brandID, eventID)))
	if err != nil {
		return c, fmt.Errorf("counts of %s: %w", eventID, err)
	}
	return c, nil
}

// AddCounts applies per-event count changes (built with Counts.Add) and
// calls stored with each changed event's new counts.
func AddCounts(tx *bbolt.Tx, brandID string, deltas map[string]hotzone.Counts, stored func(eventID string, c hotzone.Counts)) error {
	b := tx.Bucket(bucketCounts)
	for eventID, d := range deltas {
		if d == (hotzone.Counts{}) {
			continue
		}
		k := key(nil, brandID, eventID)
		c, err := decodeCounts(b.Get(k))
		if err != nil {
			return fmt.Errorf("counts of %q: %w", k, err)
		}
		c.Merge(d)
		if err := b.Put(k, appendCounts(nil, c)); err != nil {
			return err
		}
		if stored != nil {
			stored(eventID, c)
		}
	}
	return nil
}

// migrateCounts fills the counts of a database written before counts
// were kept, by reading its log once.
func migrateCounts(tx *bbolt.Tx) error {
	deltas := map[string]map[string]hotzone.Counts{} // brand -> event -> counts
	var n hotzone.Notification
	if err := tx.Bucket(bucketNotifs).ForEach(func(k, v []byte) error {
		if err := decodeNotification(v, &n); err != nil {
			return fmt.Errorf("notification %q: %w", k, err)
		}
		if deltas[n.BrandID] == nil {
			deltas[n.BrandID] = map[string]hotzone.Counts{}
		}
		c := deltas[n.BrandID][n.EventID]
		c.Add(n.Status, 1)
		deltas[n.BrandID][n.EventID] = c
		return nil
	}); err != nil {
		return err
	}
	for brandID, d := range deltas {
		if err := AddCounts(tx, brandID, d, nil); err != nil {
			return err
		}
	}
	return nil
}
