package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

var (
	bucketEvents = []byte("events") // brand\0event -> Event
	bucketLive   = []byte("live")   // brand\0store -> event id
	bucketIdem   = []byte("idem")   // brand\0store\0idempotency key -> idemRecord
)

// ErrNoEvent: the event is not there (or, for End, not live).
var ErrNoEvent = fmt.Errorf("event: %w", hotzone.ErrNotFound)

type idemRecord struct {
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
}

func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, buf)
}

// Live calls fn with every live event and its counts.
func Live(tx *bbolt.Tx, fn func(hotzone.Event, hotzone.Counts) error) error {
	return tx.Bucket(bucketLive).ForEach(func(k, v []byte) error {
		brandID := string(k[:bytes.IndexByte(k, 0)])
		ev, c, err := Event(tx, brandID, string(v))
		if err != nil {
			return fmt.Errorf("live event %q of %q: %w", v, k, err)
		}
		return fn(ev, c)
	})
}

// Start makes ev (with its status live) the live event of its store. An
// idempotency key seen at this store within hotzone.IdempotencyWindow of
// ev.StartsAt answers that event and its stored counts instead, and a
// store with another live event answers that one with
// hotzone.ErrConflict; neither starts anything.
func Start(tx *bbolt.Tx, ev hotzone.Event, idemKey string) (existing hotzone.Event, counts hotzone.Counts, err error) {
	now := ev.StartsAt.UTC()
	if idemKey != "" {
		if v := tx.Bucket(bucketIdem).Get(key(nil, ev.BrandID, ev.StoreID, idemKey)); v != nil {
			var rec idemRecord
			if err := json.Unmarshal(v, &rec); err == nil && now.Sub(rec.At) < hotzone.IdempotencyWindow {
				return Event(tx, ev.BrandID, rec.EventID)
			}
		}
	}
	if id := tx.Bucket(bucketLive).Get(key(nil, ev.BrandID, ev.StoreID)); id != nil {
		if existing, counts, err = Event(tx, ev.BrandID, string(id)); err != nil {
			return existing, counts, err
		}
		return existing, counts, hotzone.ErrConflict
	}
	ev.Status = hotzone.EventLive
	if err := putJSON(tx.Bucket(bucketEvents), key(nil, ev.BrandID, ev.ID), ev); err != nil {
		return existing, counts, err
	}
	if err := tx.Bucket(bucketLive).Put(key(nil, ev.BrandID, ev.StoreID), []byte(ev.ID)); err != nil {
		return existing, counts, err
	}
	if idemKey != "" {
		err = putJSON(tx.Bucket(bucketIdem), key(nil, ev.BrandID, ev.StoreID, idemKey), idemRecord{EventID: ev.ID, At: now})
	}
	return existing, counts, err
}

// Event reads an event and its counts.
func Event(tx *bbolt.Tx, brandID, eventID string) (hotzone.Event, hotzone.Counts, error) {
	k := key(nil, brandID, eventID)
	raw := tx.Bucket(bucketEvents).Get(k)
	if raw == nil {
		return hotzone.Event{}, hotzone.Counts{}, ErrNoEvent
	}
	var ev hotzone.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("event %q: %w", k, err)
	}
	c, err := Counts(tx, brandID, eventID)
	return ev, c, err
}

// Events reads a page of a brand's events, newest first, by a backward
// walk (ids sort by creation), and whether more follow. live, when it
// knows an event (a live one, say), answers it and its counts in place
// of what is stored.
func Events(tx *bbolt.Tx, brandID string, q hotzone.EventQuery, live func(eventID string) (hotzone.Event, hotzone.Counts, bool)) ([]hotzone.EventCounts, bool, error) {
	var out []hotzone.EventCounts
	prefix := append([]byte(brandID), 0)
	bound := append([]byte(brandID), 1) // just past the brand
	if q.Before != "" {
		bound = key(nil, brandID, q.Before)
	}
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
			return nil, false, fmt.Errorf("event %q: %w", k, err)
		}
		if (q.Status != "" && ev.Status != q.Status) || (q.StoreID != "" && ev.StoreID != q.StoreID) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			return out, true, nil
		}
		ec := hotzone.EventCounts{Event: ev}
		if lev, lc, ok := live(ev.ID); ok {
			ec = hotzone.EventCounts{Event: lev, Counts: lc}
		} else {
			var err error
			if ec.Counts, err = Counts(tx, brandID, ev.ID); err != nil {
				return nil, false, err
			}
		}
		out = append(out, ec)
	}
	return out, false, nil
}

// End ends a live event: status ended, ends_at at if earlier than
// planned, and every notification of it still queued expired (the
// counts change passed to stored). ErrNoEvent when it is not live.
// Checking liveness in the transaction orders an end against every
// decision: one that committed before is expired here, one after finds
// no live event.
func End(tx *bbolt.Tx, brandID, eventID string, at time.Time, stored func(eventID string, c hotzone.Counts)) (hotzone.Event, hotzone.Counts, error) {
	ev, counts, err := Event(tx, brandID, eventID)
	if err != nil {
		return ev, counts, err
	}
	if ev.Status != hotzone.EventLive || string(tx.Bucket(bucketLive).Get(key(nil, brandID, ev.StoreID))) != eventID {
		return ev, counts, ErrNoEvent
	}
	ev.Status = hotzone.EventEnded
	if at.Before(ev.EndsAt) {
		ev.EndsAt = at.UTC()
	}
	if err := putJSON(tx.Bucket(bucketEvents), key(nil, brandID, eventID), ev); err != nil {
		return ev, counts, err
	}
	if err := tx.Bucket(bucketLive).Delete(key(nil, brandID, ev.StoreID)); err != nil {
		return ev, counts, err
	}
	expired, err := Expire(tx, ev)
	if err != nil {
		return ev, counts, err
	}
	var d hotzone.Counts
	d.Add(hotzone.StatusQueued, -expired)
	d.Add(hotzone.StatusExpired, expired)
	counts.Merge(d)
	return ev, counts, AddCounts(tx, brandID, map[string]hotzone.Counts{eventID: d}, stored)
}

// IsLive tells whether eventID is its store's live event, as stored.
func IsLive(tx *bbolt.Tx, ev hotzone.Event) bool {
	return string(tx.Bucket(bucketLive).Get(key(nil, ev.BrandID, ev.StoreID))) == ev.ID
}

// EventIDs lists every event of a brand, ended ones included.
func EventIDs(tx *bbolt.Tx, brandID string) []string {
	var ids []string
	prefix := append([]byte(brandID), 0)
	c := tx.Bucket(bucketEvents).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}
