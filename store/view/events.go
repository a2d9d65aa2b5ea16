package view

import (
	"sync"

	"github.com/hotzone/hotzone"
)

// Events is the live events, one per store at most, with their counts,
// and the change signals live streams wait on.
type Events struct {
	mu      sync.RWMutex
	live    map[storeRef]*liveEvent
	byID    map[string]*liveEvent
	changed map[storeRef]chan struct{}
}

type storeRef struct{ brand, store string }

type liveEvent struct {
	ev     hotzone.Event
	counts hotzone.Counts
	seq    uint64 // of the counts: a later SetCounts has a higher one
}

// NewEvents returns an empty Events.
func NewEvents() *Events {
	return &Events{live: map[storeRef]*liveEvent{}, byID: map[string]*liveEvent{}, changed: map[storeRef]chan struct{}{}}
}

// Start makes ev its store's live event with the given counts (non-zero
// when loaded at start-up) and wakes the store's watchers.
func (e *Events) Start(ev hotzone.Event, c hotzone.Counts) {
	ref := storeRef{ev.BrandID, ev.StoreID}
	le := &liveEvent{ev: ev, counts: c}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.live[ref]; old != nil {
		delete(e.byID, old.ev.ID)
	}
	e.live[ref] = le
	e.byID[ev.ID] = le
	e.signalLocked(ref)
}

// End takes an ended event out of the live events and wakes the store's
// watchers.
func (e *Events) End(ended hotzone.Event) {
	ref := storeRef{ended.BrandID, ended.StoreID}
	e.mu.Lock()
	defer e.mu.Unlock()
	if le := e.byID[ended.ID]; le != nil {
		delete(e.byID, ended.ID)
		if e.live[ref] == le {
			delete(e.live, ref)
		}
	}
	e.signalLocked(ref)
}

// Live returns the store's live event and its counts.
func (e *Events) Live(brandID, storeID string) (hotzone.Event, hotzone.Counts, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if le := e.live[storeRef{brandID, storeID}]; le != nil {
		return le.ev, le.counts, true
	}
	return hotzone.Event{}, hotzone.Counts{}, false
}

// Get returns a live event by id, with its counts.
func (e *Events) Get(eventID string) (hotzone.Event, hotzone.Counts, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if le := e.byID[eventID]; le != nil {
		return le.ev, le.counts, true
	}
	return hotzone.Event{}, hotzone.Counts{}, false
}

// SetCounts sets a live event's counts to c as the backend stored them
// with sequence number seq, unless counts of a later write (a higher
// seq) are there already: writes commit in seq order but may reach the
// view in any order, and a count must never step back or go below zero
// on the way. A change to an event that is not live is ignored (its
// counts are the backend's alone). It wakes the store's watchers.
func (e *Events) SetCounts(eventID string, c hotzone.Counts, seq uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	le := e.byID[eventID]
	if le == nil || seq <= le.seq {
		return
	}
	le.seq = seq
	if le.counts != c {
		le.counts = c
		e.signalLocked(storeRef{le.ev.BrandID, le.ev.StoreID})
	}
}

// All returns every live event.
func (e *Events) All() []hotzone.Event {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]hotzone.Event, 0, len(e.live))
	for _, le := range e.live {
		out = append(out, le.ev)
	}
	return out
}

// Len is how many events are live.
func (e *Events) Len() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.live)
}

// Changed returns a channel that is closed at the next change of the
// store's events, or at the next Signal for it.
func (e *Events) Changed(brandID, storeID string) <-chan struct{} {
	ref := storeRef{brandID, storeID}
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.changed[ref]
	if !ok {
		ch = make(chan struct{})
		e.changed[ref] = ch
	}
	return ch
}

// Signal wakes the store's watchers: something they show may have
// changed (a key revoked, the store deleted).
func (e *Events) Signal(brandID, storeID string) {
	e.mu.Lock()
	e.signalLocked(storeRef{brandID, storeID})
	e.mu.Unlock()
}

func (e *Events) signalLocked(ref storeRef) {
	if ch, ok := e.changed[ref]; ok {
		close(ch)
		delete(e.changed, ref)
	}
}
