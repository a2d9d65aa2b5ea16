package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

var (
	bucketEvents = []byte("events")       // brand\0event -> Event
	bucketLive   = []byte("live")         // brand\0store -> event id
	bucketIdem   = []byte("idem")         // brand\0store\0idempotency key -> idemRecord
	bucketCounts = []byte("event_counts") // brand\0event -> counts (see appendCounts)
)

// loadEvents puts the live events, with their stored counts, in the
// view; ended events stay on disk until asked for.
func (db *DB) loadEvents(tx *bbolt.Tx) error {
	events, counts := tx.Bucket(bucketEvents), tx.Bucket(bucketCounts)
	return tx.Bucket(bucketLive).ForEach(func(k, v []byte) error {
		brandID, _ := splitKey(k)
		ek := joinKey(brandID, string(v))
		raw := events.Get(ek)
		if raw == nil {
			return fmt.Errorf("store: live event %q of %q is missing", v, k)
		}
		var ev hotzone.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("store: event %q: %w", ek, err)
		}
		c, err := decodeCounts(counts.Get(ek))
		if err != nil {
			return fmt.Errorf("store: counts of %q: %w", ek, err)
		}
		db.events.Start(ev, c)
		return nil
	})
}

// StartEvent implements hotzone.Events.
func (db *DB) StartEvent(_ context.Context, ev hotzone.Event, idemKey string) (hotzone.Event, hotzone.Counts, bool, error) {
	bs := db.brand(ev.BrandID)
	if bs == nil {
		return hotzone.Event{}, hotzone.Counts{}, false, notFound("brand")
	}
	now := ev.StartsAt.UTC()
	ev.Status = hotzone.EventLive
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	if !db.stores.Has(ev.BrandID, ev.StoreID) {
		return hotzone.Event{}, hotzone.Counts{}, false, notFound("store")
	}
	var (
		existing hotzone.Event
		counts   hotzone.Counts
	)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if idemKey != "" {
			if v := tx.Bucket(bucketIdem).Get(joinKey(ev.BrandID, ev.StoreID, idemKey)); v != nil {
				var rec idemRecord
				if err := json.Unmarshal(v, &rec); err == nil && now.Sub(rec.At) < hotzone.IdempotencyWindow {
					var err error
					existing, counts, err = readEvent(tx, ev.BrandID, rec.EventID)
					return err
				}
			}
		}
		if id := tx.Bucket(bucketLive).Get(joinKey(ev.BrandID, ev.StoreID)); id != nil {
			var err error
			if existing, counts, err = readEvent(tx, ev.BrandID, string(id)); err != nil {
				return err
			}
			return hotzone.ErrConflict
		}
		if err := putJSON(tx.Bucket(bucketEvents), joinKey(ev.BrandID, ev.ID), ev); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLive).Put(joinKey(ev.BrandID, ev.StoreID), []byte(ev.ID)); err != nil {
			return err
		}
		if idemKey != "" {
			return putJSON(tx.Bucket(bucketIdem), joinKey(ev.BrandID, ev.StoreID, idemKey), idemRecord{EventID: ev.ID, At: now})
		}
		return nil
	})
	switch {
	case errors.Is(err, hotzone.ErrConflict):
		// The live event is the view's, whose counts are current.
		if live, c, ok := db.events.Get(existing.ID); ok {
			existing, counts = live, c
		}
		return existing, counts, false, hotzone.ErrConflict
	case err != nil:
		return hotzone.Event{}, hotzone.Counts{}, false, fmt.Errorf("store: start event: %w", err)
	case existing.ID != "":
		if live, c, ok := db.events.Get(existing.ID); ok {
			existing, counts = live, c
		}
		return existing, counts, false, nil
	}
	db.events.Start(ev, hotzone.Counts{})
	return ev, hotzone.Counts{}, true, nil
}

type idemRecord struct {
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
}

// readEvent reads an event and its stored counts inside tx.
func readEvent(tx *bbolt.Tx, brandID, eventID string) (hotzone.Event, hotzone.Counts, error) {
	k := joinKey(brandID, eventID)
	raw := tx.Bucket(bucketEvents).Get(k)
	if raw == nil {
		return hotzone.Event{}, hotzone.Counts{}, notFound("event")
	}
	var ev hotzone.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("store: event %q: %w", k, err)
	}
	c, err := decodeCounts(tx.Bucket(bucketCounts).Get(k))
	return ev, c, err
}

// LiveEvent implements hotzone.Events from the view.
func (db *DB) LiveEvent(_ context.Context, brandID, storeID string) (hotzone.Event, hotzone.Counts, error) {
	ev, c, ok := db.events.Live(brandID, storeID)
	if !ok {
		return hotzone.Event{}, hotzone.Counts{}, errNoLiveEvent
	}
	return ev, c, nil
}

var errNoLiveEvent = notFound("live event")

// Event implements hotzone.Events: a live event from the view, an ended
// one from disk.
func (db *DB) Event(_ context.Context, brandID, eventID string) (hotzone.Event, hotzone.Counts, error) {
	if ev, c, ok := db.events.Get(eventID); ok && ev.BrandID == brandID {
		return ev, c, nil
	}
	var (
		ev hotzone.Event
		c  hotzone.Counts
	)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		ev, c, err = readEvent(tx, brandID, eventID)
		return err
	})
	return ev, c, err
}

// LiveEvents implements hotzone.Events from the view.
func (db *DB) LiveEvents(context.Context) ([]hotzone.Event, error) {
	return db.events.All(), nil
}

// Events implements hotzone.Events by a backward walk of the brand's
// events (ids sort by creation).
func (db *DB) Events(_ context.Context, brandID string, q hotzone.EventQuery) ([]hotzone.EventCounts, bool, error) {
	if db.brand(brandID) == nil {
		return nil, false, notFound("brand")
	}
	var (
		out  []hotzone.EventCounts
		more bool
	)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		prefix := append([]byte(brandID), 0)
		bound := append([]byte(brandID), 1) // just past the brand
		if q.Before != "" {
			bound = joinKey(brandID, q.Before)
		}
		counts := tx.Bucket(bucketCounts)
		c := tx.Bucket(bucketEvents).Cursor()
		var k, v []byte
		if first, _ := c.Seek(bound); first == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			var ev hotzone.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("store: event %q: %w", k, err)
			}
			if (q.Status != "" && ev.Status != q.Status) || (q.StoreID != "" && ev.StoreID != q.StoreID) {
				continue
			}
			if q.Limit > 0 && len(out) == q.Limit {
				more = true
				return nil
			}
			ec := hotzone.EventCounts{Event: ev}
			if live, lc, ok := db.events.Get(ev.ID); ok {
				ec = hotzone.EventCounts{Event: live, Counts: lc}
			} else {
				var err error
				if ec.Counts, err = decodeCounts(counts.Get(k)); err != nil {
					return fmt.Errorf("store: counts of %q: %w", k, err)
				}
			}
			out = append(out, ec)
		}
		return nil
	})
	return out, more, err
}

// EndEvent implements hotzone.Events. bbolt runs one writer at a time,
// so checking liveness inside the transaction orders an end against
// every queueing transaction: one that committed before is expired
// here, one after sees no live event.
func (db *DB) EndEvent(_ context.Context, brandID, eventID string, at time.Time) (hotzone.Event, hotzone.Counts, error) {
	var (
		ev      hotzone.Event
		counts  hotzone.Counts
		changes []countsChange
	)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		var err error
		if ev, counts, err = readEvent(tx, brandID, eventID); err != nil {
			return err
		}
		if ev.Status != hotzone.EventLive || string(tx.Bucket(bucketLive).Get(joinKey(brandID, ev.StoreID))) != eventID {
			return errNoLiveEvent
		}
		ev.Status = hotzone.EventEnded
		if at.Before(ev.EndsAt) {
			ev.EndsAt = at.UTC()
		}
		if err := putJSON(tx.Bucket(bucketEvents), joinKey(brandID, eventID), ev); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLive).Delete(joinKey(brandID, ev.StoreID)); err != nil {
			return err
		}
		expired, err := expireQueued(tx, ev)
		if err != nil {
			return err
		}
		var d hotzone.Counts
		d.Add(hotzone.StatusQueued, -expired)
		d.Add(hotzone.StatusExpired, expired)
		if changes, err = db.addCounts(tx, brandID, map[string]hotzone.Counts{eventID: d}); err != nil {
			return err
		}
		counts.Merge(d)
		return nil
	})
	if errors.Is(err, hotzone.ErrNotFound) {
		return hotzone.Event{}, hotzone.Counts{}, err
	}
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("store: end event: %w", err)
	}
	db.publishCounts(changes)
	db.events.End(ev)
	return ev, counts, nil
}

// Changed implements hotzone.Events from the view.
func (db *DB) Changed(_ context.Context, brandID, storeID string) (<-chan struct{}, error) {
	return db.events.Changed(brandID, storeID), nil
}

// Counts are kept per event as five uvarints (queued, sent, suppressed,
// failed, expired); devices_in_fence is their sum.
func appendCounts(buf []byte, c hotzone.Counts) []byte {
	for _, n := range [...]int{c.Queued, c.Sent, c.Suppressed, c.Failed, c.Expired} {
		buf = binary.AppendUvarint(buf, uint64(max(n, 0)))
	}
	return buf
}

var errBadCounts = errors.New("store: malformed counts record")

func decodeCounts(b []byte) (hotzone.Counts, error) {
	var c hotzone.Counts
	if b == nil {
		return c, nil
	}
	for _, p := range [...]*int{&c.Queued, &c.Sent, &c.Suppressed, &c.Failed, &c.Expired} {
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

// countsChange is an event's counts as a write stored them, and the
// sequence number of that write: applied to the view after the commit
// (view.Events.SetCounts), in whatever order commits get there.
type countsChange struct {
	eventID string
	counts  hotzone.Counts
	seq     uint64
}

// addCounts applies per-event count changes to the stored counts inside
// the write transaction tx and returns the new counts. The sequence
// numbers grow in commit order: only one write transaction runs at a
// time, and this is called inside one.
func (db *DB) addCounts(tx *bbolt.Tx, brandID string, deltas map[string]hotzone.Counts) ([]countsChange, error) {
	b := tx.Bucket(bucketCounts)
	out := make([]countsChange, 0, len(deltas))
	for eventID, d := range deltas {
		if d == (hotzone.Counts{}) {
			continue
		}
		k := joinKey(brandID, eventID)
		c, err := decodeCounts(b.Get(k))
		if err != nil {
			return nil, fmt.Errorf("counts of %q: %w", k, err)
		}
		c.Merge(d)
		if err := b.Put(k, appendCounts(nil, c)); err != nil {
			return nil, err
		}
		db.countSeq++
		out = append(out, countsChange{eventID, c, db.countSeq})
	}
	return out, nil
}

// publishCounts shows committed counts in the view.
func (db *DB) publishCounts(changes []countsChange) {
	for _, ch := range changes {
		db.events.SetCounts(ch.eventID, ch.counts, ch.seq)
	}
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
	var db DB // its sequence numbers mean nothing before the views exist
	for brandID, d := range deltas {
		if _, err := db.addCounts(tx, brandID, d); err != nil {
			return err
		}
	}
	return nil
}
