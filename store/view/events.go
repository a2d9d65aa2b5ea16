package view

import (
	"sync"
	"sync/atomic"

	"github.com/hotzone/hotzone"
)

// Events is the live events, one per store at most, with their counts,
// and the change signals live streams wait on. A ping inside a fence
// asks whether its store has a live event, so that read takes no lock
// (sync.Maps, read without writing to shared memory); starting and
// ending events, and their counts, take one.
type Events struct {
	live sync.Map // storeRef -> *liveEvent
	byID sync.Map // event id -> *liveEvent
	// brands counts each brand's live events: most pings land where no
	// event is live, and a brand without one is answered at once.
	brands sync.Map // brand id -> *atomic.Int32

	mu      sync.Mutex // serialises starts and ends, and guards changed
	n       int
	changed map[storeRef]chan struct{}
}

type storeRef struct{ brand, store string }

type liveEvent struct {
	ev     hotzone.Event // never changed once published
	mu     sync.Mutex    // guards counts and seq
	counts hotzone.Counts
	seq    uint64 // of the counts: a later SetCounts has a higher one
}

func (le *liveEvent) get() (hotzone.Event, hotzone.Counts) {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.ev, le.counts
}

// NewEvents returns an empty Events.
func NewEvents() *Events {
	return &Events{changed: map[storeRef]chan struct{}{}}
}

// Start makes ev its store's live event with the given counts (non-zero
// when loaded at start-up) and wakes the store's watchers.
func (e *Events) Start(ev hotzone.Event, c hotzone.Counts) {
	ref := storeRef{ev.BrandID, ev.StoreID}
	le := &liveEvent{ev: ev, counts: c}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.live.Load(ref); ok {
		e.byID.Delete(old.(*liveEvent).ev.ID)
	} else {
		e.n++
		e.brandCount(ev.BrandID).Add(1)
	}
	e.byID.Store(ev.ID, le)
	e.live.Store(ref, le)
	e.signalLocked(ref)
}

// End takes an ended event out of the live events and wakes the store's
// watchers.
func (e *Events) End(ended hotzone.Event) {
	ref := storeRef{ended.BrandID, ended.StoreID}
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.byID.LoadAndDelete(ended.ID); ok {
		if cur, ok := e.live.Load(ref); ok && cur == v {
			e.live.Delete(ref)
			e.n--
			e.brandCount(ended.BrandID).Add(-1)
		}
	}
	e.signalLocked(ref)
}

func (e *Events) brandCount(brandID string) *atomic.Int32 {
	v, _ := e.brands.LoadOrStore(brandID, new(atomic.Int32))
	return v.(*atomic.Int32)
}

// Live returns the store's live event and its counts.
func (e *Events) Live(brandID, storeID string) (hotzone.Event, hotzone.Counts, bool) {
	if n, ok := e.brands.Load(brandID); !ok || n.(*atomic.Int32).Load() == 0 {
		return hotzone.Event{}, hotzone.Counts{}, false
	}
	v, ok := e.live.Load(storeRef{brandID, storeID})
	if !ok {
		return hotzone.Event{}, hotzone.Counts{}, false
	}
	ev, c := v.(*liveEvent).get()
	return ev, c, true
}

// Get returns a live event by id, with its counts.
func (e *Events) Get(eventID string) (hotzone.Event, hotzone.Counts, bool) {
	v, ok := e.byID.Load(eventID)
	if !ok {
		return hotzone.Event{}, hotzone.Counts{}, false
	}
	ev, c := v.(*liveEvent).get()
	return ev, c, true
}

// SetCounts sets a live event's counts to c as the backend stored them
// with sequence number seq, unless counts of a later write (a higher
// seq) are there already: writes commit in seq order but may reach the
// view in any order, and a count must never step back or go below zero
// on the way. A change to an event that is not live is ignored (its
// counts are the backend's alone). It wakes the store's watchers.
func (e *Events) SetCounts(eventID string, c hotzone.Counts, seq uint64) {
	v, ok := e.byID.Load(eventID)
	if !ok {
		return
	}
	le := v.(*liveEvent)
	le.mu.Lock()
	if seq <= le.seq {
		le.mu.Unlock()
		return
	}
	le.seq = seq
	changed := le.counts != c
	le.counts = c
	le.mu.Unlock()
	if changed {
		e.Signal(le.ev.BrandID, le.ev.StoreID)
	}
}

// All returns every live event.
func (e *Events) All() []hotzone.Event {
	var out []hotzone.Event
	e.live.Range(func(_, v any) bool {
		out = append(out, v.(*liveEvent).ev)
		return true
	})
	return out
}

// Len is how many events are live.
func (e *Events) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
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
