package push

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Visits are noticed on pings: a qualifying ping inside a store's visit
// area, while one of the store's events is within its attribution
// window, asks the backend to mark the device's entry for that event.
// Which events are in their window is kept here, in memory, so a ping of
// a brand with none costs one map lookup; it is fed by every live event
// the node sees (its own starts, and the live events the expiry loop
// reads each second, which brings in other nodes' events) and, at
// start, by the events that ended within the longest window.

// unsettledFor is how long a device whose visit could not be attributed
// (no entry yet, or one a later decision may still change) is left
// alone before its pings ask again: a device standing in a store pings
// every few seconds, and each ask is a write transaction or a round
// trip.
const unsettledFor = time.Minute

// attribution is a node's list of events within their attribution
// window, by store, and the devices it need not ask about again.
type attribution struct {
	mu     sync.Mutex
	stores map[storeRef][]window
	// brands is read on every qualifying ping, without the lock.
	brands  sync.Map                 // brand id -> *atomic.Int64, its latest window end (Unix ns)
	settled map[settledRef]time.Time // -> until when
	swept   time.Time
}

type storeRef struct{ brandID, storeID string }

type settledRef struct{ eventID, deviceID string }

// window is an event's attribution window: visits count until until
// (its end plus its attribution), each within within of its decision.
type window struct {
	eventID string
	until   time.Time
	within  time.Duration
}

func newAttribution() *attribution {
	return &attribution{stores: map[storeRef][]window{}, settled: map[settledRef]time.Time{}}
}

// note adds ev's window, or moves it on.
func (a *attribution) note(ev *hotzone.Event) {
	w := window{eventID: ev.ID, within: ev.Attribution()}
	w.until = ev.EndsAt.Add(w.within)
	ref := storeRef{ev.BrandID, ev.StoreID}
	a.mu.Lock()
	defer a.mu.Unlock()
	ws := a.stores[ref]
	found := false
	for i := range ws {
		if ws[i].eventID == ev.ID {
			ws[i], found = w, true
		}
	}
	if !found {
		a.stores[ref] = append(ws, w)
	}
	v, _ := a.brands.LoadOrStore(ev.BrandID, new(atomic.Int64))
	b := v.(*atomic.Int64)
	if u := w.until.UnixNano(); u > b.Load() {
		b.Store(u)
	}
}

// open tells whether any event of the brand may still count a visit.
func (a *attribution) open(brandID string, now time.Time) bool {
	v, ok := a.brands.Load(brandID)
	return ok && v.(*atomic.Int64).Load() > now.UnixNano()
}

// marks appends to dst a visit mark for each event of the store within
// its window whose entry for the device is not settled.
func (a *attribution) marks(brandID, storeID, deviceID string, now time.Time, dst []hotzone.VisitMark) []hotzone.VisitMark {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.stores[storeRef{brandID, storeID}] {
		if !now.Before(w.until) || now.Before(a.settled[settledRef{w.eventID, deviceID}]) {
			continue
		}
		dst = append(dst, hotzone.VisitMark{EventID: w.eventID, DeviceID: deviceID, At: now, Within: w.within})
	}
	return dst
}

// settle leaves a device's entry for an event alone until until.
func (a *attribution) settle(eventID, deviceID string, until time.Time) {
	a.mu.Lock()
	a.settled[settledRef{eventID, deviceID}] = until
	a.mu.Unlock()
}

// sweep forgets windows and settlements that have passed, at most once
// a minute.
func (a *attribution) sweep(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.swept) < time.Minute {
		return
	}
	a.swept = now
	for ref, ws := range a.stores {
		kept := ws[:0]
		for _, w := range ws {
			if now.Before(w.until) {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 {
			delete(a.stores, ref)
		} else {
			a.stores[ref] = kept
		}
	}
	for ref, until := range a.settled {
		if !now.Before(until) {
			delete(a.settled, ref)
		}
	}
}

// LoadAttribution notes the events of every brand that ended within the
// longest attribution window, so a restarted node goes on counting
// their visits. Live events come in through the expiry loop.
func (e *Engine) LoadAttribution(ctx context.Context) error {
	brands, err := e.db.BrandIDs(ctx)
	if err != nil {
		return err
	}
	now := e.now()
	for _, brandID := range brands {
		before := ""
		for {
			evs, more, err := e.db.Events(ctx, brandID, hotzone.EventQuery{Before: before, Limit: 100})
			if err != nil {
				return err
			}
			old := false
			for i := range evs {
				ev := &evs[i].Event
				if ev.EndsAt.Add(ev.Attribution()).After(now) {
					e.attr.note(ev)
				}
				// Events are listed newest first, and none runs longer
				// than the longest window: past that, none is open.
				old = old || ev.StartsAt.Add(maxEventSpan).Before(now)
			}
			if !more || old || len(evs) == 0 {
				break
			}
			before = evs[len(evs)-1].Event.ID
		}
	}
	return nil
}

// maxEventSpan bounds how long ago an event that is still within its
// window can have started: the longest attribution window after the
// longest event.
const maxEventSpan = hotzone.MaxAttributionS*time.Second + hotzone.MaxEventDuration

// attributeDecided marks the devices just decided for ev (notified or
// held back) that were inside the store's visit area at that moment as
// already there.
func (e *Engine) attributeDecided(ctx context.Context, ev *hotzone.Event, deviceIDs []string, now time.Time) {
	if len(deviceIDs) == 0 {
		return
	}
	marks := make([]hotzone.VisitMark, len(deviceIDs))
	for i, id := range deviceIDs {
		marks[i] = e.thereMark(ev, id, now)
	}
	if _, err := e.db.Attribute(ctx, ev.BrandID, marks); err != nil {
		e.log.Warn("attribution: already there", "event_id", ev.ID, "err", err)
	}
}

// thereMark is the mark of a device decided for ev while inside the
// store's visit area. Being there settles its entry: no later ping can
// make it a visit, so none asks.
func (e *Engine) thereMark(ev *hotzone.Event, deviceID string, now time.Time) hotzone.VisitMark {
	e.attr.settle(ev.ID, deviceID, now.Add(ev.Attribution()))
	return hotzone.VisitMark{EventID: ev.ID, DeviceID: deviceID, At: now, AlreadyThere: true, Within: ev.Attribution()}
}

// decidedNow tells whether an outcome made the device notified or held
// back just now (its decision's moment).
func decidedNow(o *hotzone.Outcome) bool {
	return o.Changed && (o.Status == hotzone.StatusQueued || o.Reason == hotzone.ReasonHoldout)
}

// visitPing attributes a qualifying ping at p: devices this ping
// decided for events whose store's visit area holds p were already
// there; for the other events of those stores within their window, the
// ping is a visit if the device was notified or held back before.
func (e *Engine) visitPing(ctx context.Context, brandID, deviceID string, p geo.Point, decided []hotzone.Event, now time.Time, hits []geo.Hit) []geo.Hit {
	if len(decided) == 0 && !e.attr.open(brandID, now) {
		return hits
	}
	hits, err := e.db.VisitsAt(ctx, brandID, p, hits[:0])
	if err != nil || len(hits) == 0 {
		return hits
	}
	var marks []hotzone.VisitMark
	for _, h := range hits {
		for i := range decided {
			if decided[i].StoreID == h.ID {
				marks = append(marks, e.thereMark(&decided[i], deviceID, now))
			}
		}
		marks = e.attr.marks(brandID, h.ID, deviceID, now, marks)
	}
	if len(marks) == 0 {
		return hits
	}
	marked, err := e.db.Attribute(ctx, brandID, marks)
	if err != nil {
		e.log.Warn("attribution: visit", "device_id", deviceID, "err", err)
		return hits
	}
	done := make(map[string]bool, len(marked))
	var visits []hotzone.Happening
	for _, n := range marked {
		done[n.EventID] = true
		if n.Visit == hotzone.VisitVisited {
			e.metrics.visit()
			if e.db.Listens(brandID, hotzone.HookVisit) {
				visits = append(visits, hotzone.VisitHappening(n, now))
			}
		}
	}
	for _, m := range marks {
		if !m.AlreadyThere {
			until := now.Add(unsettledFor)
			if done[m.EventID] {
				until = now.Add(m.Within) // one visit per entry, ever
			}
			e.attr.settle(m.EventID, deviceID, until)
		}
	}
	if len(visits) > 0 {
		if err := e.db.Emit(ctx, brandID, visits); err != nil {
			e.log.Warn("webhooks: queue visit", "device_id", deviceID, "err", err)
		} else {
			e.wakeHooks()
		}
	}
	return hits
}

// fanOutThere is the set of devices inside the event's store's visit
// area at the fan-out, whose decisions are "already there".
func (e *Engine) fanOutThere(ctx context.Context, st *hotzone.Store, since time.Time) map[string]bool {
	area, err := st.VisitArea()
	if err != nil || area == nil {
		return nil
	}
	ids, err := e.db.DevicesIn(ctx, st.BrandID, area, since)
	if err != nil {
		e.log.Warn("attribution: devices in the visit area", "store_id", st.ID, "err", err)
		return nil
	}
	there := make(map[string]bool, len(ids))
	for _, id := range ids {
		there[id] = true
	}
	return there
}
