package push

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Fan-out groups its writes, since each bbolt commit syncs the disk
// twice: the first transaction is small so the first notifications leave
// at once, and each next one doubles up to the largest, which bounds how
// long a ping waiting to queue its own notification can be held up.
const (
	fanOutFirstChunk = 1024
	fanOutMaxChunk   = 8192
)

// fanOutInFlight is how many chunks a fan-out decides at once over
// storage that many nodes share (FanOutLeases): across the network a
// chunk's time is partly spent waiting on round trips, and a second
// chunk decides meanwhile (Consider allows concurrent calls; pings make
// them anyway). Measured with the perf harness's fan-out on a Redis
// Cluster: 2 took a fifth less time to all queued than 1, and 4 no less
// than 2. An embedded store, which writes one transaction at a time,
// decides one chunk at a time.
const fanOutInFlight = 2

// Engine is the service layer of hotzone's use cases: a ping (rate
// limit, policy, position, fence match, trigger), an event's start with
// its fan-out and its end, and push credentials changing hands. The api
// package decodes requests and calls it; storage is the contract's.
type Engine struct {
	db   hotzone.Storage
	log  *slog.Logger
	now  func() time.Time
	wake func()
	// wakeHooks: webhook deliveries were queued.
	wakeHooks func()
	metrics   *Metrics
	limits    *deviceLimits
	zones     sync.Map // name -> *time.Location

	// bg is the process's context: fan-out outlives the request that
	// started the event.
	bg context.Context
	wg sync.WaitGroup

	// owner names this engine to the fan-out leases; fanning lists the
	// events it is fanning out now.
	owner   string
	fanMu   sync.Mutex
	fanning map[string]bool
	// tried is when this engine last asked for the lease of each live
	// event's fan-out, or first saw the event, so it asks every half
	// lease, not every second, and not before half a lease has passed.
	tried map[string]time.Time
	// attr is which events may still count visits.
	attr *attribution
}

// FanOutLeases is what a backend shared by several nodes offers so that
// an event's fan-out outlives the node that started it: the node fanning
// out holds a lease on the event and renews it as it goes; when it dies,
// the lease lapses and another node's expiry loop takes the fan-out over
// and runs it again (a device already decided for is skipped by
// Consider, so running it twice notifies nobody twice). A backend of one
// process needs none: its fan-out dies with everything else.
type FanOutLeases interface {
	// LeaseFanOut takes, or renews, the fan-out of an event for owner
	// until now+lease; false when another owner's lease is live or the
	// fan-out is done.
	LeaseFanOut(ctx context.Context, brandID, eventID, owner string, now time.Time, lease time.Duration) (bool, error)
	// FanOutDone records that the event's fan-out finished.
	FanOutDone(ctx context.Context, brandID, eventID string) error
}

// FanOutLease is how long a fan-out lease lasts unrenewed: a node that
// died mid fan-out is taken over that long after it stopped.
const FanOutLease = 10 * time.Second

// EngineOptions are the engine's collaborators; nil ones get defaults.
type EngineOptions struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Wake is called after notifications were queued or released, so the
	// dispatcher need not poll to notice them.
	Wake    func()
	Metrics *Metrics
	// PingRate and PingBurst limit each device's pings; a zero PingRate
	// disables the limit.
	PingRate  rate.Limit
	PingBurst int
	// WakeHooks is called after webhook deliveries were queued.
	WakeHooks func()
}

// NewEngine builds an engine whose background work runs on bg.
func NewEngine(bg context.Context, db hotzone.Storage, opts EngineOptions) *Engine {
	e := &Engine{db: db, log: opts.Logger, now: opts.Now, wake: opts.Wake, metrics: opts.Metrics, bg: bg,
		limits: newDeviceLimits(opts.PingRate, opts.PingBurst), owner: hotzone.NewKey(""), fanning: map[string]bool{}, attr: newAttribution()}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.wake == nil {
		e.wake = func() {}
	}
	if e.wakeHooks = opts.WakeHooks; e.wakeHooks == nil {
		e.wakeHooks = func() {}
	}
	return e
}

// Wait blocks until running fan-outs have finished.
func (e *Engine) Wait() { e.wg.Wait() }

// StartEvent starts the event and, if it is new, fans it out in the
// background: the caller answers at once and the counts show progress.
func (e *Engine) StartEvent(ctx context.Context, ev hotzone.Event, idemKey string) (hotzone.Event, hotzone.Counts, bool, error) {
	if ev.AttributionS == 0 {
		// The window is the policy's when the event starts: a later
		// change of policy does not move the goalposts of a report.
		p, err := e.db.Policy(ctx, ev.BrandID)
		if err != nil {
			return hotzone.Event{}, hotzone.Counts{}, false, err
		}
		ev.AttributionS = p.AttributionS
	}
	ev, counts, created, err := e.db.StartEvent(ctx, ev, idemKey)
	if err != nil || !created {
		return ev, counts, created, err
	}
	e.attr.note(&ev)
	e.emitEvent(ctx, hotzone.HookEventStarted, ev, nil)
	e.startFanOut(ev)
	return ev, counts, true, nil
}

// startFanOut fans ev out in the background, under its lease when the
// backend keeps them, unless this engine is at it already or another
// node holds the lease.
func (e *Engine) startFanOut(ev hotzone.Event) {
	e.fanMu.Lock()
	if e.fanning[ev.ID] {
		e.fanMu.Unlock()
		return
	}
	e.fanning[ev.ID] = true
	e.fanMu.Unlock()
	done := func() {
		e.fanMu.Lock()
		delete(e.fanning, ev.ID)
		e.fanMu.Unlock()
	}
	leases, shared := e.db.(FanOutLeases)
	if shared {
		ok, err := leases.LeaseFanOut(e.bg, ev.BrandID, ev.ID, e.owner, e.now(), FanOutLease)
		if err != nil || !ok {
			if err != nil {
				e.log.Error("fan-out lease", "event_id", ev.ID, "err", err)
			}
			done()
			return
		}
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer done()
		if err := e.FanOut(e.bg, ev); err != nil {
			e.log.Error("fan-out", "event_id", ev.ID, "err", err)
			return // the lease lapses and a node tries again
		}
		if shared {
			if err := leases.FanOutDone(e.bg, ev.BrandID, ev.ID); err != nil {
				e.log.Error("fan-out done", "event_id", ev.ID, "err", err)
			}
		}
	}()
}

// errLeaseLost: another node took the fan-out over (this one stalled
// past its lease); it carries on from there.
var errLeaseLost = errors.New("fan-out lease taken over by another node")

// EndLiveEvent ends the store's live event now; ErrNotFound when none is
// live.
func (e *Engine) EndLiveEvent(ctx context.Context, brandID, storeID string) (hotzone.Event, hotzone.Counts, error) {
	ev, _, err := e.db.LiveEvent(ctx, brandID, storeID)
	if err != nil {
		return hotzone.Event{}, hotzone.Counts{}, err
	}
	ended, counts, err := e.db.EndEvent(ctx, brandID, ev.ID, e.now())
	if err == nil {
		e.attr.note(&ended)
		e.emitEvent(ctx, hotzone.HookEventEnded, ended, &counts)
	}
	return ended, counts, err
}

// DeleteStore deletes a store, ending its live event (and telling
// webhooks so).
func (e *Engine) DeleteStore(ctx context.Context, brandID, storeID string) error {
	live, _, lerr := e.db.LiveEvent(ctx, brandID, storeID)
	if err := e.db.DeleteStore(ctx, brandID, storeID); err != nil {
		return err
	}
	if lerr == nil {
		if ev, counts, err := e.db.Event(ctx, brandID, live.ID); err == nil {
			e.emitEvent(ctx, hotzone.HookEventEnded, ev, &counts)
		}
	}
	return nil
}

// emitEvent tells the brand's webhooks that an event started or ended;
// a failure to queue it is logged, the event stands.
func (e *Engine) emitEvent(ctx context.Context, t hotzone.HookType, ev hotzone.Event, counts *hotzone.Counts) {
	if !e.db.Listens(ev.BrandID, t) {
		return
	}
	if err := e.db.Emit(ctx, ev.BrandID, []hotzone.Happening{hotzone.EventHappening(t, ev, counts, e.now())}); err != nil {
		e.log.Warn("webhooks: queue "+string(t), "event_id", ev.ID, "err", err)
		return
	}
	e.wakeHooks()
}

// FanOut considers every device of the brand whose last qualifying
// position, reported within presence_ttl_s, lies inside the store's
// fence.
func (e *Engine) FanOut(ctx context.Context, ev hotzone.Event) error {
	st, err := e.db.Store(ctx, ev.BrandID, ev.StoreID)
	if err != nil {
		return err
	}
	policy, err := e.db.Policy(ctx, ev.BrandID)
	if err != nil {
		return err
	}
	now := e.now()
	began := time.Now()
	ids, err := e.db.DevicesIn(ctx, ev.BrandID, st.Fence, now.Add(-time.Duration(policy.PresenceTTLS)*time.Second))
	if err != nil {
		return err
	}
	if policy.Dwells() && len(ids) > 0 {
		// Under the dwell trigger, only those who have dwelled now; the
		// rest are notified by the ping that completes their dwell.
		if ids, err = e.dwelledIn(ctx, ev.BrandID, ev.StoreID, ids); err != nil {
			return err
		}
	}
	// Who is in the store's visit area now is "already there" when
	// decided: their visit is not the push's doing.
	there := e.fanOutThere(ctx, &st, now.Add(-time.Duration(policy.PresenceTTLS)*time.Second))
	found := time.Since(began)
	// An operator sees what a fan-out cost, and where.
	defer func(n int) {
		e.log.Info("fan-out", "event_id", ev.ID, "devices", n, "find_ms", found.Milliseconds(),
			"took_ms", time.Since(began).Milliseconds())
	}(len(ids))
	// Sorted ids write neighbouring keys: bbolt touches fewer pages.
	sort.Strings(ids)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	chunk := fanOutFirstChunk
	leases, shared := e.db.(FanOutLeases)
	slots := make(chan struct{}, 1)
	if shared {
		slots = make(chan struct{}, fanOutInFlight)
	}
	for len(ids) > 0 && ctx.Err() == nil {
		slots <- struct{}{}
		if shared {
			ok, err := leases.LeaseFanOut(ctx, ev.BrandID, ev.ID, e.owner, e.now(), FanOutLease)
			if err == nil && !ok {
				err = errLeaseLost
			}
			if err != nil {
				fail(err)
				break
			}
		}
		n := min(len(ids), chunk)
		chunk = min(2*chunk, fanOutMaxChunk)
		wg.Add(1)
		go func(part []string) {
			defer func() { <-slots; wg.Done() }()
			if err := e.fanOutChunk(ctx, &ev, part, policy, there, now); err != nil {
				fail(err)
			}
		}(ids[:n])
		ids = ids[n:]
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// fanOutChunk decides for one chunk of a fan-out's devices.
func (e *Engine) fanOutChunk(ctx context.Context, ev *hotzone.Event, ids []string, policy hotzone.Policy, there map[string]bool, now time.Time) error {
	out, err := e.db.Consider(ctx, *ev, ids, e.decider(ev, policy, now))
	if err != nil {
		return err
	}
	woke := false
	var atStore []string
	for i := range out {
		o := &out[i]
		if there[o.DeviceID] && decidedNow(o) {
			atStore = append(atStore, o.DeviceID)
		}
		switch {
		case !o.Changed:
		case o.Status == hotzone.StatusQueued && !woke:
			e.wake()
			woke = true
		case o.Status == hotzone.StatusSuppressed:
			e.metrics.suppressed(Reason(o.Reason))
		}
	}
	e.attributeDecided(ctx, ev, atStore, now)
	return nil
}

// dwelledIn keeps the devices that have dwelled in a store's fence,
// reading their presence a chunk at a time.
func (e *Engine) dwelledIn(ctx context.Context, brandID, storeID string, ids []string) ([]string, error) {
	kept := ids[:0]
	for from := 0; from < len(ids); from += fanOutMaxChunk {
		chunk := ids[from:min(from+fanOutMaxChunk, len(ids))]
		ps, err := e.db.Presences(ctx, brandID, chunk)
		if err != nil {
			return nil, err
		}
		for i, id := range chunk {
			if dwelled(&ps[i], storeID) {
				kept = append(kept, id)
			}
		}
	}
	return kept, nil
}

// decider binds the event's audience and holdout, the policy and the
// clock for one decision: a device the audience leaves out is
// suppressed first; of those the policy would notify, the event's
// held-back share is held back, so the groups differ only in the push.
func (e *Engine) decider(ev *hotzone.Event, p hotzone.Policy, now time.Time) hotzone.DecideFunc {
	audience, eventID, holdout := ev.Audience, ev.ID, ev.Holdout(&p)
	return func(d hotzone.Device, h []time.Time) string {
		if !audience.Admits(d.Tags) {
			return string(ReasonAudience)
		}
		if r := Decide(p, d, e.location(d.Timezone), h, now); r != ReasonNone {
			return string(r)
		}
		if hotzone.HeldBack(eventID, d.ID, holdout) {
			return string(ReasonHoldout)
		}
		return ""
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

// PingAnswer is what a ping found: the stores whose fence holds it and
// what each live event there meant for the device. A caller may reuse
// one across pings: Ping starts by emptying it.
type PingAnswer struct {
	Inside  []geo.Hit
	Results []PingResult
	around  []hotzone.FenceDistance // reused across pings
	decided []hotzone.Event         // events this ping notified or held the device back for
	visits  []geo.Hit
}

// Ping handles one validated ping of a device: the device's rate limit,
// its position (kept even when the ping cannot trigger), the fences it
// is inside, and for each of their live events whether the device is
// notified. A ping less accurate than the policy's max_accuracy_m, or
// older than its max_ping_age_s, never triggers and writes nothing to
// the log. It answers ErrNotFound for an unknown device and a
// *RateLimitedError when the device pings too often. now is when the
// ping arrived, as the caller's clock read it: a request reads the
// clock once (a reading cost a ping more than its policy lookup).
func (e *Engine) Ping(ctx context.Context, brandID, deviceID string, pos hotzone.Position, now time.Time, ans *PingAnswer) error {
	ans.Inside, ans.Results, ans.decided = ans.Inside[:0], ans.Results[:0], ans.decided[:0]
	policy, err := e.db.Policy(ctx, brandID)
	if err != nil {
		return err
	}
	accurate := pos.AccuracyM <= policy.MaxAccuracyM
	fresh := now.Sub(pos.TS) <= time.Duration(policy.MaxPingAgeS)*time.Second
	ref := deviceRef{brandID, deviceID}
	if err := e.limits.allow(ref, now); err != nil {
		// The device must exist before it may use up a rate-limit slot,
		// so unknown ids cannot grow the limiter table.
		if _, _, derr := e.db.Device(ctx, brandID, deviceID); derr != nil {
			e.limits.forget(ref)
			return derr
		}
		return err
	}
	if err := e.db.RecordPosition(ctx, brandID, deviceID, pos, accurate && fresh); err != nil {
		if errors.Is(err, hotzone.ErrNotFound) {
			e.limits.forget(ref)
		}
		return err
	}
	if ans.Inside, err = e.db.FencesAt(ctx, brandID, pos.Point(), ans.Inside); err != nil {
		return err
	}
	// Work that outlives the request (the presence and queue writes)
	// must not be cut short by the client hanging up.
	wctx := context.WithoutCancel(ctx)
	var presence *hotzone.Presence
	if accurate && fresh && e.Tracked(brandID, &policy) {
		// Inaccurate and stale pings never change presence.
		if ans.around, err = e.db.FencesAround(ctx, brandID, pos.Point(), hotzone.PresenceBandM(pos.AccuracyM), ans.around[:0]); err != nil {
			return err
		}
		if presence, err = e.track(wctx, brandID, deviceID, pos, &policy, ans.around); err != nil {
			return err
		}
	}
	if len(ans.Inside) > 0 {
		ans.Results, err = e.onPing(wctx, brandID, deviceID, ans.Inside, accurate, fresh, policy.TooFast(pos.SpeedMPS), presence, &policy, now, ans)
		if err != nil {
			return err
		}
	}
	if accurate && fresh {
		// A visit counts from qualifying pings only, as a trigger does.
		ans.visits = e.visitPing(wctx, brandID, deviceID, pos.Point(), ans.decided, now, ans.visits)
	}
	return nil
}

// onPing decides, for each live event at the stores hit, whether the
// device is queued or why not, appending to out.
//
// tooFast and presence (nil when it was not looked at: no fence near and
// no visit open) come from the ping's presence step: a drive-by never
// triggers, and under the dwell trigger only a device that has dwelled
// in the store's fence is considered.
func (e *Engine) onPing(ctx context.Context, brandID, deviceID string, hits []geo.Hit, accurate, fresh, tooFast bool, presence *hotzone.Presence, policy *hotzone.Policy, now time.Time, ans *PingAnswer) ([]PingResult, error) {
	out := ans.Results
	for _, h := range hits {
		ev, _, err := e.db.LiveEvent(ctx, brandID, h.ID)
		if errors.Is(err, hotzone.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		if !ev.EndsAt.After(now) {
			continue // over, even if the expiry loop has not run yet
		}
		r := PingResult{Event: ev, Status: hotzone.StatusSuppressed}
		switch {
		case !accurate:
			r.Reason = ReasonLowAccuracy
		case !fresh:
			r.Reason = ReasonStale
		case tooFast:
			r.Reason = ReasonTooFast
		case policy.Dwells() && !dwelled(presence, h.ID):
			r.Reason = ReasonNotDwelled
		default:
			res, err := e.db.Consider(ctx, ev, []string{deviceID}, e.decider(&ev, *policy, now))
			if err != nil {
				return out, err
			}
			o := res[0]
			if decidedNow(&o) {
				ans.decided = append(ans.decided, ev)
			}
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

// dwelled tells whether a presence has dwelled in a store's fence.
func dwelled(p *hotzone.Presence, storeID string) bool {
	if p == nil {
		return false
	}
	v, ok := p.Visit(storeID)
	return ok && v.Dwelled
}

// DeleteDevice erases a device and forgets its rate limit.
func (e *Engine) DeleteDevice(ctx context.Context, brandID, deviceID string) error {
	if err := e.db.DeleteDevice(ctx, brandID, deviceID); err != nil {
		return err
	}
	e.limits.forget(deviceRef{brandID, deviceID})
	return nil
}

// PutCredentials stores a brand's credentials for their provider and
// releases what waited on the old ones.
func (e *Engine) PutCredentials(ctx context.Context, brandID string, c hotzone.PushCredentials) error {
	if err := e.db.PutCredentials(ctx, brandID, c); err != nil {
		return err
	}
	e.credentialsChanged(ctx, brandID, c.Provider)
	return nil
}

// DeleteCredentials removes a brand's credentials for a provider (dry
// run from now on) and releases what waited on the old ones.
func (e *Engine) DeleteCredentials(ctx context.Context, brandID string, p hotzone.Provider) error {
	if err := e.db.DeleteCredentials(ctx, brandID, p); err != nil {
		return err
	}
	e.credentialsChanged(ctx, brandID, p)
	return nil
}

// credentialsChanged releases what waited on the old credentials (held
// by broken ones, or backing off) so it goes out now with the new ones,
// or in dry-run without any. A failure here only delays them: they are
// tried at their own time.
func (e *Engine) credentialsChanged(ctx context.Context, brandID string, p hotzone.Provider) {
	if err := e.db.Release(ctx, hotzone.Lane{BrandID: brandID, Provider: p}); err != nil {
		e.log.Error("release held notifications", "brand_id", brandID, "provider", p, "err", err)
	}
	e.wake()
}

// EndDue ends every live event whose ends_at has passed: events end by
// themselves, not only when asked. An event another node ended first is
// not an error. With a backend shared by several nodes it also takes
// over the fan-outs of nodes that died (see FanOutLeases).
func (e *Engine) EndDue(ctx context.Context) error {
	evs, err := e.db.LiveEvents(ctx)
	if err != nil {
		return err
	}
	now := e.now()
	for i := range evs {
		e.attr.note(&evs[i])
	}
	e.attr.sweep(now)
	var errs []error
	_, shared := e.db.(FanOutLeases)
	var takeOver []hotzone.Event
	if shared {
		e.fanMu.Lock()
		tried := make(map[string]time.Time, len(evs))
		for _, ev := range evs {
			// An event seen here first is its starting node's to fan
			// out, which leases it as it starts it: asked at once, a
			// node with nothing behind it could win the lease from a
			// starting node whose round trips queue behind a flush, and
			// then fan out without the positions that node still held
			// (a fan-out of 100,000 devices found none of them).
			last, ok := e.tried[ev.ID]
			if !ok {
				last = now
			}
			if now.Sub(last) < FanOutLease/2 {
				tried[ev.ID] = last
				continue
			}
			tried[ev.ID] = now
			takeOver = append(takeOver, ev)
		}
		e.tried = tried
		e.fanMu.Unlock()
	}
	for _, ev := range takeOver {
		if ev.EndsAt.After(now) {
			// A fan-out whose node died is taken over here once its
			// lease lapsed (startFanOut asks for the lease).
			e.startFanOut(ev)
		}
	}
	for _, ev := range evs {
		if ev.EndsAt.After(now) {
			continue
		}
		ended, counts, err := e.db.EndEvent(ctx, ev.BrandID, ev.ID, ev.EndsAt)
		switch {
		case err == nil:
			e.attr.note(&ended)
			e.emitEvent(ctx, hotzone.HookEventEnded, ended, &counts)
		case !errors.Is(err, hotzone.ErrNotFound):
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RunExpiry ends events at their ends_at until ctx ends.
func (e *Engine) RunExpiry(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := e.EndDue(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("end due events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
