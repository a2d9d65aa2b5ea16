package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

var (
	bucketEvents = []byte("events") // brand\0event -> Event
	bucketLive   = []byte("live")   // brand\0store -> event id
	bucketIdem   = []byte("idem")   // brand\0store\0idempotency key -> event id
)

// IdempotencyWindow is how long an Idempotency-Key of an event start is
// remembered.
const IdempotencyWindow = 24 * time.Hour

// eventState is an event and its counts as the hot paths read them.
type eventState struct {
	ev     hotzone.Event
	counts hotzone.Counts
}

// events is the in-memory view of every event: counts for the list, the
// live event per store for pings and fan-out, and a change signal per
// store for live streams.
type events struct {
	mu      sync.RWMutex
	byID    map[string]*eventState
	live    map[storeRef]*eventState
	changed map[storeRef]chan struct{}
}

type storeRef struct{ brand, store string }

func newEvents() *events {
	return &events{byID: map[string]*eventState{}, live: map[storeRef]*eventState{}, changed: map[storeRef]chan struct{}{}}
}

// signalLocked wakes everyone watching the store; e.mu is held.
func (e *events) signalLocked(ref storeRef) {
	if ch, ok := e.changed[ref]; ok {
		close(ch)
		delete(e.changed, ref)
	}
}

// Changed returns a channel that is closed at the next change of the
// store's events: one starting or ending, or its counts moving.
func (db *DB) Changed(brandID, storeID string) <-chan struct{} {
	ref := storeRef{brandID, storeID}
	db.ev.mu.Lock()
	defer db.ev.mu.Unlock()
	ch, ok := db.ev.changed[ref]
	if !ok {
		ch = make(chan struct{})
		db.ev.changed[ref] = ch
	}
	return ch
}

func (db *DB) loadEvents(tx *bolt.Tx) error {
	if err := tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
		es := new(eventState)
		if err := json.Unmarshal(v, &es.ev); err != nil {
			return fmt.Errorf("store: event %q: %w", k, err)
		}
		db.ev.byID[es.ev.ID] = es
		if es.ev.Status == hotzone.EventLive {
			db.ev.live[storeRef{es.ev.BrandID, es.ev.StoreID}] = es
		}
		return nil
	}); err != nil {
		return err
	}
	return tx.Bucket(bucketNotifs).ForEach(func(k, v []byte) error {
		var n hotzone.Notification
		if err := decodeNotification(v, &n); err != nil {
			return fmt.Errorf("store: notification %q: %w", k, err)
		}
		if es := db.ev.byID[n.EventID]; es != nil {
			es.counts.Add(n.Status, 1)
		}
		return nil
	})
}

// StartEvent makes ev the store's live event. With an idempotency key
// seen at this store within IdempotencyWindow it returns that event
// instead (created false). A store with another live event answers
// ErrConflict together with that event.
func (db *DB) StartEvent(_ context.Context, ev hotzone.Event, idemKey string) (hotzone.Event, hotzone.Counts, bool, error) {
	bs := db.brand(ev.BrandID)
	if bs == nil {
		return hotzone.Event{}, hotzone.Counts{}, false, hotzone.ErrNotFound
	}
	now := db.now().UTC()
	ref := storeRef{ev.BrandID, ev.StoreID}
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	if _, ok := bs.stores[ev.StoreID]; !ok {
		return hotzone.Event{}, hotzone.Counts{}, false, hotzone.ErrNotFound
	}
	var existing string
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if idemKey != "" {
			if v := tx.Bucket(bucketIdem).Get(joinKey(ev.BrandID, ev.StoreID, idemKey)); v != nil {
				var rec idemRecord
				if err := json.Unmarshal(v, &rec); err == nil && now.Sub(rec.At) < IdempotencyWindow {
					existing = rec.EventID
					return nil
				}
			}
		}
		if tx.Bucket(bucketLive).Get(joinKey(ev.BrandID, ev.StoreID)) != nil {
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
	db.ev.mu.Lock()
	defer db.ev.mu.Unlock()
	switch {
	case err == hotzone.ErrConflict:
		if es := db.ev.live[ref]; es != nil {
			return es.ev, es.counts, false, hotzone.ErrConflict
		}
		return hotzone.Event{}, hotzone.Counts{}, false, hotzone.ErrConflict
	case err != nil:
		return hotzone.Event{}, hotzone.Counts{}, false, fmt.Errorf("store: start event: %w", err)
	case existing != "":
		if es := db.ev.byID[existing]; es != nil {
			return es.ev, es.counts, false, nil
		}
		return hotzone.Event{}, hotzone.Counts{}, false, hotzone.ErrNotFound
	}
	es := &eventState{ev: ev}
	db.ev.byID[ev.ID] = es
	db.ev.live[ref] = es
	db.ev.signalLocked(ref)
	return ev, es.counts, true, nil
}

type idemRecord struct {
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
}

// LiveEvent returns the store's live event and its counts.
func (db *DB) LiveEvent(brandID, storeID string) (hotzone.Event, hotzone.Counts, bool) {
	db.ev.mu.RLock()
	defer db.ev.mu.RUnlock()
	es := db.ev.live[storeRef{brandID, storeID}]
	if es == nil {
		return hotzone.Event{}, hotzone.Counts{}, false
	}
	return es.ev, es.counts, true
}

// Event returns one event of a brand with its counts.
func (db *DB) Event(brandID, eventID string) (hotzone.Event, hotzone.Counts, error) {
	db.ev.mu.RLock()
	defer db.ev.mu.RUnlock()
	es := db.ev.byID[eventID]
	if es == nil || es.ev.BrandID != brandID {
		return hotzone.Event{}, hotzone.Counts{}, hotzone.ErrNotFound
	}
	return es.ev, es.counts, nil
}

// EventWithCounts is an event as listed.
type EventWithCounts struct {
	Event  hotzone.Event
	Counts hotzone.Counts
}

// Events lists a brand's events newest first (ids sort by creation), with
// optional status and store filters, starting after the id `before`.
func (db *DB) Events(brandID string, status hotzone.EventStatus, storeID, before string, limit int) ([]EventWithCounts, bool) {
	db.ev.mu.RLock()
	var out []EventWithCounts
	for _, es := range db.ev.byID {
		ev := es.ev
		if ev.BrandID != brandID || (status != "" && ev.Status != status) || (storeID != "" && ev.StoreID != storeID) {
			continue
		}
		if before != "" && ev.ID >= before {
			continue
		}
		out = append(out, EventWithCounts{ev, es.counts})
	}
	db.ev.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Event.ID > out[j].Event.ID })
	more := limit > 0 && len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more
}

// LiveEvents returns every live event of every brand, for the expiry loop
// and the dispatcher.
func (db *DB) LiveEvents() []hotzone.Event {
	db.ev.mu.RLock()
	defer db.ev.mu.RUnlock()
	out := make([]hotzone.Event, 0, len(db.ev.live))
	for _, es := range db.ev.live {
		out = append(out, es.ev)
	}
	return out
}

// EndEvent ends the store's live event now: status ended, ends_at now,
// and every notification of it not yet sent becomes expired.
func (db *DB) EndEvent(_ context.Context, brandID, storeID string) (hotzone.Event, hotzone.Counts, error) {
	db.ev.mu.RLock()
	es := db.ev.live[storeRef{brandID, storeID}]
	db.ev.mu.RUnlock()
	if es == nil {
		return hotzone.Event{}, hotzone.Counts{}, hotzone.ErrNotFound
	}
	return db.endEvent(es.ev.ID, db.now().UTC())
}

// EndDue ends every live event whose ends_at has passed; events end by
// themselves, not only when asked.
func (db *DB) EndDue() error {
	now := db.now().UTC()
	for _, ev := range db.LiveEvents() {
		if !ev.EndsAt.After(now) {
			if _, _, err := db.endEvent(ev.ID, ev.EndsAt); err != nil && err != hotzone.ErrNotFound {
				return err
			}
		}
	}
	return nil
}

func (db *DB) endEvent(eventID string, at time.Time) (hotzone.Event, hotzone.Counts, error) {
	db.ev.mu.RLock()
	es := db.ev.byID[eventID]
	db.ev.mu.RUnlock()
	if es == nil {
		return hotzone.Event{}, hotzone.Counts{}, hotzone.ErrNotFound
	}
	db.ev.mu.RLock()
	ev := es.ev
	db.ev.mu.RUnlock()
	ev.Status = hotzone.EventEnded
	if at.Before(ev.EndsAt) {
		ev.EndsAt = at
	}
	// bbolt runs one writer at a time, so checking liveness inside the
	// transaction orders an end against every queueing transaction: one
	// that committed before is expired here, one after sees no live event.
	var expired []hotzone.Notification
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if string(tx.Bucket(bucketLive).Get(joinKey(ev.BrandID, ev.StoreID))) != ev.ID {
			return hotzone.ErrNotFound
		}
		if err := putJSON(tx.Bucket(bucketEvents), joinKey(ev.BrandID, ev.ID), ev); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLive).Delete(joinKey(ev.BrandID, ev.StoreID)); err != nil {
			return err
		}
		var err error
		expired, err = expireQueued(tx, ev)
		return err
	})
	if err == hotzone.ErrNotFound {
		return hotzone.Event{}, hotzone.Counts{}, err
	}
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, fmt.Errorf("store: end event: %w", err)
	}
	ref := storeRef{ev.BrandID, ev.StoreID}
	db.ev.mu.Lock()
	es.ev = ev
	for range expired {
		es.counts.Add(hotzone.StatusQueued, -1)
		es.counts.Add(hotzone.StatusExpired, 1)
	}
	if db.ev.live[ref] == es {
		delete(db.ev.live, ref)
	}
	counts := es.counts
	db.ev.signalLocked(ref)
	db.ev.mu.Unlock()
	return ev, counts, nil
}

// liveEventID is the id of the store's live event, or "".
func (db *DB) liveEventID(brandID, storeID string) string {
	db.ev.mu.RLock()
	defer db.ev.mu.RUnlock()
	if es := db.ev.live[storeRef{brandID, storeID}]; es != nil {
		return es.ev.ID
	}
	return ""
}
