package hotzone

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"time"

	"github.com/hotzone/hotzone/geo"
)

// What an event brought in: a share of the devices that would have been
// notified is held back (not notified), and a device's walking into the
// store afterwards (a visit) is counted in each group, so the
// difference between the groups' visit rates is what the push did.

// ReasonHoldout is the suppression reason of a device held back from an
// event for comparison.
const ReasonHoldout = "holdout"

// MaxHoldoutPct is the largest share of devices an event may hold back.
const MaxHoldoutPct = 50

// DefaultAttributionS is how long after a device was notified or held
// back a visit counts for the event, unless the policy says otherwise.
const DefaultAttributionS = 7200

// DefaultVisitRadiusM is the radius of a circle fence's default visit
// area, around the fence's centre.
const DefaultVisitRadiusM = 50

// HeldBack tells whether a device falls in an event's held-back share
// of pct percent. It is a hash of the two ids, not a draw, so a retried
// decision, another node or a restart always answers the same; SHA-256
// spreads ids that differ in one character as evenly as random ones.
func HeldBack(eventID, deviceID string, pct int) bool {
	if pct <= 0 {
		return false
	}
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))%10000 < uint64(pct)*100
}

// Group is which side of the comparison a log entry is on.
type Group string

// The groups; an entry in neither (suppressed for another reason,
// failed or expired) is not compared.
const (
	GroupNone     Group = ""
	GroupNotified Group = "notified"
	GroupHeldBack Group = "held_back"
)

// Group tells which group the entry is in: notified while its push is
// queued or went out, held back when suppressed for holdout.
func (n *Notification) Group() Group {
	switch {
	case n.Status == StatusQueued || n.Status == StatusSent || n.Status == StatusDryRun:
		return GroupNotified
	case n.Status == StatusSuppressed && n.Reason == ReasonHoldout:
		return GroupHeldBack
	}
	return GroupNone
}

// Decided tells whether the entry is the device's decision for good:
// notified, or held back (a hold that a later ping must not turn into a
// push, or the comparison would leak). Other suppressions may still be
// upgraded to queued.
func (n *Notification) Decided() bool {
	return n.Status != StatusSuppressed || n.Reason == ReasonHoldout
}

// Standing is the outcome of considering a device again whose entry n
// is Decided: held back again, or already notified. Nothing changes.
func Standing(n *Notification) Outcome {
	if n.Status == StatusSuppressed {
		return Outcome{DeviceID: n.DeviceID, Status: StatusSuppressed, Reason: ReasonHoldout}
	}
	return Outcome{DeviceID: n.DeviceID, Reason: ReasonAlreadyNotified}
}

// The visit marks of a log entry.
const (
	VisitNone         = ""
	VisitVisited      = "visited"       // walked into the visit area within the window
	VisitAlreadyThere = "already_there" // was in the visit area when notified or held back
)

// VisitMark asks to attribute what a device did to its entry for an
// event.
type VisitMark struct {
	EventID, DeviceID string
	// At is when the device was seen in the store's visit area.
	At time.Time
	// AlreadyThere: it was there at the moment of its decision, rather
	// than walking in afterwards.
	AlreadyThere bool
	// Within is the event's attribution window: a visit counts when At
	// is no later than this after the entry's DecidedAt.
	Within time.Duration
}

// Attributes tells whether m applies to entry n: n is in a group and
// carries no visit mark yet, and a visit falls within the window after
// the decision.
func (m VisitMark) Attributes(n *Notification) bool {
	if n.Group() == GroupNone || n.Visit != VisitNone || n.DecidedAt.IsZero() {
		return false
	}
	if m.AlreadyThere {
		return true
	}
	since := m.At.Sub(n.DecidedAt)
	return since >= 0 && since <= m.Within
}

// Apply marks n with m (which must attribute to it).
func (m VisitMark) Apply(n *Notification) {
	n.Visit, n.VisitAt = VisitVisited, m.At.UTC()
	if m.AlreadyThere {
		n.Visit = VisitAlreadyThere
	}
}

// VisitArea is a store's visit area: its own visit geometry, else a
// circle fence's default circle around its centre, else a polygon
// fence itself.
func (st *Store) VisitArea() (*geo.Fence, error) {
	if st.Visit != nil {
		return st.Visit.Build()
	}
	if c := st.Spec.Circle; c != nil {
		return FenceSpec{Circle: &Circle{Lat: c.Lat, Lon: c.Lon, RadiusM: DefaultVisitRadiusM}}.Build()
	}
	return st.Fence, nil
}

// Pair is one number per group.
type Pair struct {
	Notified int `json:"notified"`
	HeldBack int `json:"held_back"`
}

// Rates is one rate per group; nil when a group has nobody to count.
type Rates struct {
	Notified *float64 `json:"notified"`
	HeldBack *float64 `json:"held_back"`
}

// Lift compares the groups' visit rates: their difference (notified
// minus held back) with its 95% confidence interval, and their ratio
// (nil when nobody held back visited).
type Lift struct {
	Difference float64    `json:"difference"`
	Ratio      *float64   `json:"ratio"`
	CI95       [2]float64 `json:"ci95"`
}

// MinCompared is how many devices each group must have (those already
// there aside) before a lift is told: below it the interval is too wide
// to say anything, and the report says the groups are too small.
const MinCompared = 30

// Report is what an event brought in.
type Report struct {
	EventID  string `json:"event_id"`
	Notified int    `json:"notified"`
	HeldBack int    `json:"held_back"`
	Opened   int    `json:"opened"`
	Visits   Pair   `json:"visits"`
	// AlreadyThere were in the visit area at their decision; they are
	// left out of the rates in both groups alike.
	AlreadyThere Pair  `json:"already_there"`
	VisitRate    Rates `json:"visit_rate"`
	Lift         *Lift `json:"lift"`
	// TooSmall says a group has fewer than MinCompared devices to
	// compare, so Lift is nil.
	TooSmall     bool `json:"too_small"`
	AttributionS int  `json:"attribution_s"`
}

// Tally counts one log entry of the event into r.
func (r *Report) Tally(n *Notification) {
	g := n.Group()
	if g == GroupNone {
		return
	}
	if n.OpenedAt != nil {
		r.Opened++
	}
	count := func(p *Pair) {
		if g == GroupNotified {
			p.Notified++
		} else {
			p.HeldBack++
		}
	}
	switch g {
	case GroupNotified:
		r.Notified++
	case GroupHeldBack:
		r.HeldBack++
	}
	switch n.Visit {
	case VisitVisited:
		count(&r.Visits)
	case VisitAlreadyThere:
		count(&r.AlreadyThere)
	}
}

// Finish works out the rates and the lift from the tallied counts.
func (r *Report) Finish() {
	nN, nH := r.Notified-r.AlreadyThere.Notified, r.HeldBack-r.AlreadyThere.HeldBack
	rate := func(x, n int) *float64 {
		if n <= 0 {
			return nil
		}
		v := float64(x) / float64(n)
		return &v
	}
	r.VisitRate = Rates{Notified: rate(r.Visits.Notified, nN), HeldBack: rate(r.Visits.HeldBack, nH)}
	r.TooSmall = nN < MinCompared || nH < MinCompared
	r.Lift = nil
	if r.TooSmall {
		return
	}
	pN, pH := *r.VisitRate.Notified, *r.VisitRate.HeldBack
	lo, hi := DifferenceCI95(r.Visits.Notified, nN, r.Visits.HeldBack, nH)
	l := &Lift{Difference: pN - pH, CI95: [2]float64{lo, hi}}
	if pH > 0 {
		ratio := pN / pH
		l.Ratio = &ratio
	}
	r.Lift = l
}

// z95 is the normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// wilson is the Wilson score interval of x successes in n.
func wilson(x, n int) (lo, hi float64) {
	p, nf := float64(x)/float64(n), float64(n)
	z2 := z95 * z95
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z95 / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, centre-half), min(1, centre+half)
}

// DifferenceCI95 is the 95% confidence interval of the difference of two
// proportions x1/n1 − x2/n2, by Newcombe's hybrid score method (his
// method 10, 1998): the Wilson intervals of each proportion combined. It
// keeps its coverage where the textbook Wald interval fails (rates near
// 0, as visit rates are, and small groups) and never leaves [−1, 1].
func DifferenceCI95(x1, n1, x2, n2 int) (lo, hi float64) {
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	l1, u1 := wilson(x1, n1)
	l2, u2 := wilson(x2, n2)
	d := p1 - p2
	return d - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2)), d + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
}

// VisitHappening is a visit as webhooks get it, in order per device:
// {"notification_id", "event_id", "store_id", "device_id", "group",
// "at"}. Only a walk-in is told: being there already is no visit.
func VisitHappening(n Notification, now time.Time) Happening {
	raw, _ := json.Marshal(struct {
		NotificationID string    `json:"notification_id"`
		EventID        string    `json:"event_id"`
		StoreID        string    `json:"store_id"`
		DeviceID       string    `json:"device_id"`
		Group          Group     `json:"group"`
		At             time.Time `json:"at"`
	}{n.ID, n.EventID, n.StoreID, n.DeviceID, n.Group(), n.VisitAt.UTC()})
	return Happening{ID: NewID(now), Type: HookVisit, CreatedAt: now, Data: raw, OrderKey: n.DeviceID}
}

// MaxEventDuration is the longest an event may run (duration_s).
const MaxEventDuration = 12 * time.Hour

// The range of a policy's attribution_s: five minutes to seven days.
const (
	MinAttributionS = 300
	MaxAttributionS = 604800
)
