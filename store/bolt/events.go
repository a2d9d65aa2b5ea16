package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/bolt/ledger"
)

// loadEvents puts the live events, with their stored counts, in the
// view; ended events stay on disk until asked for.
func (db *DB) loadEvents(tx *bbolt.Tx) error {
	return ledger.Live(tx, func(ev hotzone.Event, c hotzone.Counts) error {
		db.events.Start(ev, c)
		return nil
	})
}

// StartEvent implements hotzone.Events.
func (db *DB) StartEvent(_ context.Context, ev hotzone.Event, idemKey string) (hotzone.Event, hotzone.Counts, bool, error) {
	lock := db.brandLock(ev.BrandID)
	if lock == nil {
		return hotzone.Event{}, hotzone.Counts{}, false, notFound("brand")
	}
	ev.Status = hotzone.EventLive
	lock.Lock()
	defer lock.Unlock()
	if !db.stores.Has(ev.BrandID, ev.StoreID) {
		return hotzone.Event{}, hotzone.Counts{}, false, notFound("store")
	}
	var (
		existing hotzone.Event
		counts   hotzone.Counts
	)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		var err error
		existing, counts, err = ledger.Start(tx, ev, idemKey)
		return err
	})
	if err != nil && !errors.Is(err, hotzone.ErrConflict) {
		return hotzone.Event{}, hotzone.Counts{}, false, fmt.Errorf("store: start event: %w", err)
	}
	if existing.ID != "" {
		// A live event is the view's, whose counts are current.
		if live, c, ok := db.events.Get(existing.ID); ok {
			existing, counts = live, c
		}
		return existing, counts, false, err
	}
	db.events.Start(ev, hotzone.Counts{})
	return ev, hotzone.Counts{}, true, nil
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
		ev, c, err = ledger.Event(tx, brandID, eventID)
		return err
	})
	return ev, c, err
}

// LiveEvents implements hotzone.Events from the view.
func (db *DB) LiveEvents(context.Context) ([]hotzone.Event, error) {
	return db.events.All(), nil
}

// Events implements hotzone.Events; live events' counts come from the
// view.
func (db *DB) Events(_ context.Context, brandID string, q hotzone.EventQuery) ([]hotzone.EventCounts, bool, error) {
	if db.brandLock(brandID) == nil {
		return nil, false, notFound("brand")
	}
	var (
		out  []hotzone.EventCounts
		more bool
	)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		out, more, err = ledger.Events(tx, brandID, q, db.events.Get)
		return err
	})
	return out, more, err
}

// EndEvent implements hotzone.Events in one transaction.
func (db *DB) EndEvent(_ context.Context, brandID, eventID string, at time.Time) (hotzone.Event, hotzone.Counts, error) {
	var (
		ev      hotzone.Event
		counts  hotzone.Counts
		changes []countsChange
	)
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		changes = changes[:0]
		var err error
		ev, counts, err = ledger.End(tx, brandID, eventID, at, db.countsStored(&changes))
		return err
	})
	if errors.Is(err, hotzone.ErrNotFound) {
		return hotzone.Event{}, hotzone.Counts{}, errNoLiveEvent
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

// countsChange is an event's counts as a write stored them, and the
// sequence number of that write: applied to the view after the commit
// (view.Events.SetCounts), in whatever order commits get there.
type countsChange struct {
	eventID string
	counts  hotzone.Counts
	seq     uint64
}

// countsStored collects into changes the counts a write transaction
// stores, numbered in commit order: only one write transaction runs at a
// time, and this is called inside one.
func (db *DB) countsStored(changes *[]countsChange) func(eventID string, c hotzone.Counts) {
	return func(eventID string, c hotzone.Counts) {
		db.countSeq++
		*changes = append(*changes, countsChange{eventID, c, db.countSeq})
	}
}

// addCounts applies per-event count changes inside the write
// transaction tx and returns the new counts.
func (db *DB) addCounts(tx *bbolt.Tx, brandID string, deltas map[string]hotzone.Counts) ([]countsChange, error) {
	var out []countsChange
	err := ledger.AddCounts(tx, brandID, deltas, db.countsStored(&out))
	return out, err
}

// publishCounts shows committed counts in the view.
func (db *DB) publishCounts(changes []countsChange) {
	for _, ch := range changes {
		db.events.SetCounts(ch.eventID, ch.counts, ch.seq)
	}
}
