package hotzone

import (
	"context"
	"time"
)

// PresenceType names a change of a device's presence at a store's fence.
type PresenceType string

// The presence changes the contract names.
const (
	Entered PresenceType = "entered"
	Dwelled PresenceType = "dwelled" // inside for the policy's dwell_s, once per visit
	Exited  PresenceType = "exited"
)

// Visit is a device's stay inside one store's fence, from the ping that
// entered it.
type Visit struct {
	StoreID   string    `json:"store_id"`
	EnteredAt time.Time `json:"entered_at"`
	// SeenAt is the last qualifying ping that kept the visit: inside, or
	// outside by less than its accuracy.
	SeenAt  time.Time `json:"seen_at"`
	Dwelled bool      `json:"dwelled,omitempty"`
	// Outside counts consecutive pings just outside the fence (within
	// their accuracy of the edge); the second ends the visit.
	Outside int `json:"outside,omitempty"`
}

// Presence is where a device is, fence by fence.
type Presence struct {
	Visits []Visit `json:"visits,omitempty"`
	// AsOf is the time of the newest ping applied: an older one arriving
	// late is not applied over it.
	AsOf time.Time `json:"as_of"`
}

// Visit returns the device's visit at a store, if it is inside.
func (p *Presence) Visit(storeID string) (Visit, bool) {
	for _, v := range p.Visits {
		if v.StoreID == storeID {
			return v, true
		}
	}
	return Visit{}, false
}

// PresenceChange is one entered, dwelled or exited of a device at a
// store.
type PresenceChange struct {
	Type     PresenceType
	DeviceID string
	StoreID  string
	// At is when it happened: the ping's time, or for a visit that timed
	// out the last ping that kept it.
	At        time.Time
	EnteredAt time.Time
}

// DurationS is how long the visit lasted (exited) or has lasted
// (dwelled), in whole seconds.
func (c PresenceChange) DurationS() int64 { return int64(c.At.Sub(c.EnteredAt) / time.Second) }

// Presences keeps each device's presence at the brand's fences. The
// rules of presence (what enters, dwells and exits) are the caller's:
// the backend keeps the state, atomically per device.
type Presences interface {
	// UpdatePresence applies fn to the device's presence and keeps the
	// result when fn returns true, atomically per device: fn sees the
	// presence as it stands and no other update of the device comes
	// between (fn may be called again, so it must be pure). It returns
	// the presence as it is afterwards; ErrNotFound for an unknown
	// device. Like positions it may be written behind: visible at once,
	// durable within the backend's flush interval, so a crash loses at
	// most that much of presence changes. DeleteDevice erases it.
	UpdatePresence(ctx context.Context, brandID, deviceID string, fn func(*Presence) bool) (Presence, error)
	// Presences returns the presence of each device, in order (zero for
	// one without, or unknown).
	Presences(ctx context.Context, brandID string, deviceIDs []string) ([]Presence, error)
	// MayBePresent tells, without I/O, whether the device may have a
	// visit open; false only when it surely has none, so that a ping far
	// from every fence costs nothing. A backend shared by several nodes
	// may answer false for a visit another node opened; it then reports
	// the device through Lingering once such a ping is written.
	MayBePresent(brandID, deviceID string) bool
	// Lingering lists up to limit devices, of any brand, with a visit
	// open that need a look at now: those whose last qualifying ping is
	// older than their brand's presence_ttl_s (they went silent), and
	// those whose last ping, far from every fence, reached the backend
	// without a presence update (see MayBePresent). Qualifying pings are
	// written behind, so a device is listed up to a flush interval late.
	// A silent device is listed until an UpdatePresence ends its visits;
	// one listed for a far ping is listed once.
	Lingering(ctx context.Context, now time.Time, limit int) ([]DeviceRef, error)
}

// DeviceRef names a device of a brand.
type DeviceRef struct{ BrandID, DeviceID string }

// PresenceBandM is how far outside a fence a ping of the given accuracy
// may land and still not end a visit at once (the hysteresis band): its
// accuracy, but at least MinPresenceBandM, since phones report
// optimistic accuracies.
func PresenceBandM(accuracyM float64) float64 { return max(accuracyM, MinPresenceBandM) }

// MinPresenceBandM is the narrowest hysteresis band.
const MinPresenceBandM = 10

// FenceDistance is a store whose fence lies near a point, and how far
// outside it the point is (0 inside).
type FenceDistance struct {
	StoreID  string
	OutsideM float64
}

// PresenceUsed tells whether a brand keeps presence at all: only when
// something uses it, the dwell trigger or a webhook for entered, dwelled
// or exited (listens answers for the brand's webhooks). Keeping it
// costs a ping near a fence a presence update, which a brand that never
// asks for presence should not pay.
func PresenceUsed(p *Policy, listens func(HookType) bool) bool {
	return p.Dwells() || listens(HookEntered) || listens(HookDwelled) || listens(HookExited)
}
