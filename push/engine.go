package push

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Storage is what the engine needs of persistence; store.DB satisfies it.
type Storage interface {
	Policy(brandID string) (hotzone.Policy, error)
	Store(brandID, storeID string) (hotzone.Store, error)
	StartEvent(ctx context.Context, ev hotzone.Event, idemKey string) (hotzone.Event, hotzone.Counts, bool, error)
	LiveEvent(brandID, storeID string) (hotzone.Event, hotzone.Counts, bool)
	EndDue() error
	DevicesIn(brandID string, f *geo.Fence, since time.Time) []string
	Consider(ctx context.Context, ev hotzone.Event, deviceIDs []string, decide hotzone.DecideFunc) ([]hotzone.Outcome, error)
}

// Fan-out groups its writes, since each bbolt commit syncs the disk
// twice: the first transaction is small so the first notifications leave
// at once, and each next one doubles up to the largest, which bounds how
// long a ping waiting to queue its own notification can be held up.
const (
	fanOutFirstChunk = 1024
	fanOutMaxChunk   = 8192
)

// Engine turns live events and pings into queued notifications under the
// brand's policy.
type Engine struct {
	db      Storage
	log     *slog.Logger
	now     func() time.Time
	wake    func()
	metrics *Metrics
	zones   sync.Map // name -> *time.Location

	// bg is the process's context: fan-out outlives the request that
	// started the event.
	bg context.Context
	wg sync.WaitGroup
}

// EngineOptions are the engine's collaborators; nil ones get defaults.
type EngineOptions struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Wake is called after notifications were queued, so the dispatcher
	// need not poll to notice them.
	Wake    func()
	Metrics *Metrics
}

// NewEngine builds an engine whose background work runs on bg.
func NewEngine(bg context.Context, db Storage, opts EngineOptions) *Engine {
	e := &Engine{db: db, log: opts.Logger, now: opts.Now, wake: opts.Wake, metrics: opts.Metrics, bg: bg}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.wake == nil {
		e.wake = func() {}
	}
	return e
}

// Wait blocks until running fan-outs have finished.
func (e *Engine) Wait() { e.wg.Wait() }

// StartEvent starts the event and, if it is new, fans it out in the
// background: the caller answers at once and the counts show progress.
func (e *Engine) StartEvent(ctx context.Context, ev hotzone.Event, idemKey string) (hotzone.Event, hotzone.Counts, bool, error) {
	ev, counts, created, err := e.db.StartEvent(ctx, ev, idemKey)
	if err != nil || !created {
		return ev, counts, created, err
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := e.FanOut(e.bg, ev); err != nil {
			e.log.Error("fan-out", "event_id", ev.ID, "err", err)
		}
	}()
	return ev, counts, true, nil
}

// FanOut considers every device of the brand whose last qualifying
// position, reported within presence_ttl_s, lies inside the store's
// fence.
func (e *Engine) FanOut(ctx context.Context, ev hotzone.Event) error {
	st, err := e.db.Store(ev.BrandID, ev.StoreID)
	if err != nil {
		return err
	}
	policy, err := e.db.Policy(ev.BrandID)
	if err != nil {
		return err
	}
	now := e.now()
	ids := e.db.DevicesIn(ev.BrandID, st.Fence, now.Add(-time.Duration(policy.PresenceTTLS)*time.Second))
	// Sorted ids write neighbouring keys: bbolt touches fewer pages.
	sort.Strings(ids)
	chunk := fanOutFirstChunk
	for len(ids) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(ids), chunk)
		chunk = min(2*chunk, fanOutMaxChunk)
		out, err := e.db.Consider(ctx, ev, ids[:n], e.decider(policy, now))
		if err != nil {
			return err
		}
		woke := false
		for _, o := range out {
			switch {
			case !o.Changed:
			case o.Status == hotzone.StatusQueued && !woke:
				e.wake()
				woke = true
			case o.Status == hotzone.StatusSuppressed:
				e.metrics.suppressed(Reason(o.Reason))
			}
		}
		ids = ids[n:]
	}
	return nil
}

// decider binds the policy and the clock for one transaction.
func (e *Engine) decider(p hotzone.Policy, now time.Time) hotzone.DecideFunc {
	return func(d hotzone.Device, h []time.Time) string {
		return string(Decide(p, d, e.location(d.Timezone), h, now))
	}
}

func (e *Engine) location(name string) *time.Location {
	if v, ok := e.zones.Load(name); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC // validated at registration; UTC is the contract's default
	}
	e.zones.Store(name, loc)
	return loc
}

// PingResult is one live event a ping landed in, and what it meant for
// the device.
type PingResult struct {
	Event  hotzone.Event
	Status hotzone.NotificationStatus // queued or suppressed
	Reason Reason
}

// OnPing handles a ping that landed inside the given stores' fences:
// for each store with a live event, the device is queued or told why not.
// accurate and fresh are the ping's own qualities; a ping that lacks one
// never triggers and writes nothing to the log.
func (e *Engine) OnPing(ctx context.Context, brandID, deviceID string, storeIDs []string, accurate, fresh bool) ([]PingResult, error) {
	var out []PingResult
	var policy *hotzone.Policy
	for _, sid := range storeIDs {
		ev, _, live := e.db.LiveEvent(brandID, sid)
		if !live || !ev.EndsAt.After(e.now()) {
			continue // over, even if the expiry loop has not run yet
		}
		r := PingResult{Event: ev, Status: hotzone.StatusSuppressed}
		switch {
		case !accurate:
			r.Reason = ReasonLowAccuracy
		case !fresh:
			r.Reason = ReasonStale
		default:
			if policy == nil {
				p, err := e.db.Policy(brandID)
				if err != nil {
					return nil, err
				}
				policy = &p
			}
			res, err := e.db.Consider(ctx, ev, []string{deviceID}, e.decider(*policy, e.now()))
			if err != nil {
				return nil, err
			}
			o := res[0]
			switch {
			case o.Status == hotzone.StatusQueued:
				r.Status = hotzone.StatusQueued
				if o.Changed {
					e.wake()
				}
			case o.Status == hotzone.StatusSuppressed:
				r.Reason = Reason(o.Reason)
			case o.Reason == hotzone.ReasonAlreadyNotified:
				r.Reason = ReasonAlreadyNotified
			default:
				continue // the event ended or the device was erased meanwhile
			}
		}
		e.metrics.suppressed(r.Reason)
		out = append(out, r)
	}
	return out, nil
}

// RunExpiry ends events at their ends_at until ctx ends.
func (e *Engine) RunExpiry(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := e.db.EndDue(); err != nil {
			e.log.Error("end due events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
