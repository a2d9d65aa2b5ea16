package push

import (
	"context"
	"errors"
	"time"

	"github.com/hotzone/hotzone"
)

// Sighting is one qualifying ping (accurate and fresh by the policy) as
// presence sees it: when, and the fences it is inside or near.
type Sighting struct {
	At time.Time
	// AccuracyM sets the hysteresis band (hotzone.PresenceBandM).
	AccuracyM float64
	// TooFast: the ping reported a speed above the policy's
	// max_speed_mps, so it enters nothing.
	TooFast bool
	// Around is every fence the ping is inside (OutsideM 0) or within
	// the band of; a fence not in it is far.
	Around []hotzone.FenceDistance
}

// StepPresence applies a sighting to a device's presence and tells
// whether it changed, appending what happened to changes. The rules:
//
//   - A ping inside a fence enters it (unless it is too fast: a drive-by
//     is not a walk-in); inside again, it keeps the visit, and once the
//     visit has lasted dwell it has dwelled (once per visit).
//   - Hysteresis against GPS jitter at the edge: a ping outside a fence
//     by more than its band (its accuracy, at least 10 m) ends the visit
//     at once; a ping outside by less may still have come from inside,
//     so only the second such ping in a row ends it.
//   - A ping older than the newest one applied changes nothing: pings
//     arriving out of order do not reopen or end visits.
//
// A change to the count of pings just outside is a change (it must be
// kept), a ping that merely confirms a visit is not, so a device
// standing in a store writes nothing until it dwells.
func StepPresence(p *hotzone.Presence, s Sighting, dwell time.Duration, deviceID string, changes []hotzone.PresenceChange) (bool, []hotzone.PresenceChange) {
	if !s.At.After(p.AsOf) && !p.AsOf.IsZero() {
		return false, changes
	}
	band := hotzone.PresenceBandM(s.AccuracyM)
	changed := false
	at := func(storeID string) (float64, bool) {
		for _, f := range s.Around {
			if f.StoreID == storeID {
				return f.OutsideM, true
			}
		}
		return 0, false
	}
	kept := p.Visits[:0]
	for _, v := range p.Visits {
		d, near := at(v.StoreID)
		switch {
		case near && d == 0:
			if v.Outside != 0 {
				v.Outside = 0
				changed = true
			}
			if !v.Dwelled && s.At.Sub(v.EnteredAt) >= dwell {
				v.Dwelled = true
				changed = true
				changes = append(changes, hotzone.PresenceChange{Type: hotzone.Dwelled, DeviceID: deviceID, StoreID: v.StoreID, At: s.At, EnteredAt: v.EnteredAt})
			}
			v.SeenAt = s.At
		case near && d <= band && v.Outside == 0:
			v.Outside = 1
			v.SeenAt = s.At
			changed = true
		default:
			changed = true
			changes = append(changes, hotzone.PresenceChange{Type: hotzone.Exited, DeviceID: deviceID, StoreID: v.StoreID, At: s.At, EnteredAt: v.EnteredAt})
			continue
		}
		kept = append(kept, v)
	}
	p.Visits = kept
	if !s.TooFast {
		for _, f := range s.Around {
			if f.OutsideM != 0 {
				continue
			}
			if _, in := p.Visit(f.StoreID); in {
				continue
			}
			v := hotzone.Visit{StoreID: f.StoreID, EnteredAt: s.At, SeenAt: s.At}
			changes = append(changes, hotzone.PresenceChange{Type: hotzone.Entered, DeviceID: deviceID, StoreID: f.StoreID, At: s.At, EnteredAt: s.At})
			if dwell <= 0 {
				v.Dwelled = true
				changes = append(changes, hotzone.PresenceChange{Type: hotzone.Dwelled, DeviceID: deviceID, StoreID: f.StoreID, At: s.At, EnteredAt: s.At})
			}
			p.Visits = append(p.Visits, v)
			changed = true
		}
	}
	if changed {
		p.AsOf = s.At
	}
	return changed, changes
}

// TimeOut ends every visit of a device that went silent: each exits at
// the device's last qualifying ping (last; zero when unknown) or the
// last one the visit kept, whichever is later, so its duration is the
// time it was seen. A ping that only confirms a visit is not written,
// and one far away would have ended it, so last is the better of the
// two.
func TimeOut(p *hotzone.Presence, deviceID string, last time.Time, changes []hotzone.PresenceChange) (bool, []hotzone.PresenceChange) {
	if len(p.Visits) == 0 {
		return false, changes
	}
	for _, v := range p.Visits {
		at := v.SeenAt
		if last.After(at) {
			at = last
		}
		changes = append(changes, hotzone.PresenceChange{Type: hotzone.Exited, DeviceID: deviceID, StoreID: v.StoreID, At: at, EnteredAt: v.EnteredAt})
	}
	p.Visits = nil
	return true, changes
}

// Tracked tells whether a brand's presence is kept (hotzone.PresenceUsed):
// a write behind on bbolt, two round trips on a Redis Cluster, for each
// ping near a fence.
func (e *Engine) Tracked(brandID string, policy *hotzone.Policy) bool {
	return hotzone.PresenceUsed(policy, func(t hotzone.HookType) bool { return e.db.Listens(brandID, t) })
}

// track applies a qualifying ping to the device's presence, when it can
// change anything: a ping near no fence, of a device with no visit
// open, costs nothing. It answers the presence (nil when it was not
// looked at).
func (e *Engine) track(ctx context.Context, brandID, deviceID string, pos hotzone.Position, policy *hotzone.Policy, around []hotzone.FenceDistance) (*hotzone.Presence, error) {
	if len(around) == 0 && !e.db.MayBePresent(brandID, deviceID) {
		return nil, nil
	}
	s := Sighting{At: pos.TS, AccuracyM: pos.AccuracyM, TooFast: policy.TooFast(pos.SpeedMPS), Around: around}
	p, err := e.updatePresence(ctx, brandID, deviceID, stepWith(s, policy, deviceID))
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// presenceStep is one of the presence rules (StepPresence, TimeOut)
// bound to its input: it changes p and appends what happened.
type presenceStep func(p *hotzone.Presence, changes []hotzone.PresenceChange) (bool, []hotzone.PresenceChange)

// stepWith is StepPresence for a sighting under the policy's dwell_s.
func stepWith(s Sighting, policy *hotzone.Policy, deviceID string) presenceStep {
	dwell := time.Duration(policy.DwellS) * time.Second
	return func(p *hotzone.Presence, changes []hotzone.PresenceChange) (bool, []hotzone.PresenceChange) {
		return StepPresence(p, s, dwell, deviceID, changes)
	}
}

// updatePresence applies step to the device's stored presence and tells
// what changed (presenceChanged). step may run more than once; only the
// run that was stored counts.
func (e *Engine) updatePresence(ctx context.Context, brandID, deviceID string, step presenceStep) (hotzone.Presence, error) {
	var changes []hotzone.PresenceChange
	p, err := e.db.UpdatePresence(ctx, brandID, deviceID, func(p *hotzone.Presence) bool {
		var changed bool
		changed, changes = step(p, changes[:0])
		return changed
	})
	if err != nil {
		return hotzone.Presence{}, err
	}
	e.presenceChanged(ctx, brandID, changes)
	return p, nil
}

// presenceChanged counts what happened and tells the brand's webhooks
// (queued right after the presence was written: a crash between the two
// loses these deliveries, never the presence).
func (e *Engine) presenceChanged(ctx context.Context, brandID string, changes []hotzone.PresenceChange) {
	var hs []hotzone.Happening
	now := e.now()
	for _, c := range changes {
		e.metrics.presence(c.Type)
		if e.db.Listens(brandID, hotzone.HookType(c.Type)) {
			hs = append(hs, hotzone.PresenceHappening(c, now))
		}
	}
	if len(hs) == 0 {
		return
	}
	if err := e.db.Emit(ctx, brandID, hs); err != nil {
		e.log.Warn("webhooks: queue presence changes", "brand_id", brandID, "err", err)
		return
	}
	e.wakeHooks()
}

// SweepPresence looks at the devices the backend says linger: one that
// went silent for presence_ttl_s exits its visits; one whose last ping
// went by without a presence update (through another node) has that
// ping applied now. It answers how many it looked at.
func (e *Engine) SweepPresence(ctx context.Context, limit int) (int, error) {
	now := e.now()
	refs, err := e.db.Lingering(ctx, now, limit)
	if err != nil {
		return 0, err
	}
	for _, r := range refs {
		policy, err := e.db.Policy(ctx, r.BrandID)
		if err != nil {
			continue // the brand is gone
		}
		_, pos, err := e.db.Device(ctx, r.BrandID, r.DeviceID)
		if errors.Is(err, hotzone.ErrNotFound) {
			continue // erased: its presence went with it
		}
		if err != nil {
			return 0, err
		}
		ttl := time.Duration(policy.PresenceTTLS) * time.Second
		if pos == nil || pos.Qualifying == nil || now.Sub(pos.Qualifying.TS) > ttl {
			var last time.Time
			if pos != nil && pos.Qualifying != nil {
				last = pos.Qualifying.TS
			}
			_, err = e.updatePresence(ctx, r.BrandID, r.DeviceID, func(p *hotzone.Presence, changes []hotzone.PresenceChange) (bool, []hotzone.PresenceChange) {
				return TimeOut(p, r.DeviceID, last, changes)
			})
		} else {
			q := *pos.Qualifying
			around, aerr := e.db.FencesAround(ctx, r.BrandID, q.Point(), hotzone.PresenceBandM(q.AccuracyM), nil)
			if aerr != nil {
				return 0, aerr
			}
			_, err = e.updatePresence(ctx, r.BrandID, r.DeviceID, stepWith(Sighting{At: q.TS, AccuracyM: q.AccuracyM, Around: around}, &policy, r.DeviceID))
		}
		if err != nil && !errors.Is(err, hotzone.ErrNotFound) {
			return 0, err
		}
	}
	return len(refs), nil
}

// RunPresence sweeps lingering presence every interval until ctx ends.
func (e *Engine) RunPresence(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Bounded, so a backend that keeps listing what it cannot
		// change never holds the loop.
		for range 100 {
			n, err := e.SweepPresence(ctx, presenceSweepBatch)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("presence sweep", "err", err)
				}
				break
			}
			if n < presenceSweepBatch {
				break
			}
		}
	}
}

// presenceSweepBatch is how many lingering devices one sweep step takes.
const presenceSweepBatch = 500
