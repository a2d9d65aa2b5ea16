// Package push is hotzone's service layer: it decides who is notified
// and delivers what was decided. The Engine runs the use cases (a ping,
// an event's start, fan-out, end and expiry, credentials changing
// hands); the policy decides per device; the Dispatcher claims queued
// notifications from the outbox and sends them through the APNs, FCM and
// dry-run senders with rate limits and retries. It imports the root
// package and geo, and works on the storage contract (hotzone.Storage),
// never on a backend.
package push

import (
	"time"

	"github.com/hotzone/hotzone"
)

// Reason says why a device was not notified; the values are the
// contract's.
type Reason string

// The reasons of the contract's "Notifications" section.
const (
	ReasonNone            Reason = ""
	ReasonLowAccuracy     Reason = "low_accuracy"
	ReasonStale           Reason = "stale"
	ReasonOptedOut        Reason = "opted_out"
	ReasonNoToken         Reason = "no_token"
	ReasonQuietHours      Reason = "quiet_hours"
	ReasonDailyCap        Reason = "daily_cap"
	ReasonMinInterval     Reason = "min_interval"
	ReasonAlreadyNotified Reason = "already_notified"
	// ReasonTooFast: the ping reported a speed above the policy's
	// max_speed_mps (a drive-by); nothing is written to the log.
	ReasonTooFast Reason = "too_fast"
	// ReasonNotDwelled: the policy triggers on dwelling and the device
	// has not stayed dwell_s yet; a later ping notifies it once it has.
	ReasonNotDwelled Reason = "not_dwelled"
	// ReasonAudience: the event's audience leaves the device out by its
	// tags.
	ReasonAudience Reason = "audience"
	// ReasonHoldout: the device would have been notified but falls in
	// the event's held-back share, kept for comparison.
	ReasonHoldout Reason = hotzone.ReasonHoldout
)

// History is what the policy needs to know of a device's past
// notifications: when each recent one was queued, oldest first.
type History []time.Time

// HistoryWindow is how far back History must reach: the longest
// min_interval_s the contract allows (604800 s, seven days), which is
// what storage keeps (hotzone.HistoryWindow). The daily cap needs much
// less (a local calendar day is at most 26 hours), but a History trimmed
// to anything shorter than the interval would forget the notification
// that blocks the next one.
const HistoryWindow = hotzone.HistoryWindow

// Trim drops entries older than the window, keeping History bounded.
func (h History) Trim(now time.Time) History {
	i := 0
	for i < len(h) && now.Sub(h[i]) > HistoryWindow {
		i++
	}
	return h[i:]
}

// Decide applies the brand's device-level rules to one device at now and
// answers ReasonNone when it may be queued. loc is the device's time
// zone (nil means UTC, the contract's default). The order is the
// contract's: consent and reachability first, then the time rules.
func Decide(p hotzone.Policy, d hotzone.Device, loc *time.Location, h History, now time.Time) Reason {
	if loc == nil {
		loc = time.UTC
	}
	switch {
	case !d.OptIn:
		return ReasonOptedOut
	case d.Token == "":
		return ReasonNoToken
	case InQuietHours(p.QuietHours, now.In(loc)):
		return ReasonQuietHours
	}
	if p.DailyCap > 0 && queuedToday(h, now, loc) >= p.DailyCap {
		return ReasonDailyCap
	}
	if n := len(h); n > 0 && p.MinIntervalS > 0 && now.Sub(h[n-1]) < time.Duration(p.MinIntervalS)*time.Second {
		return ReasonMinInterval
	}
	return ReasonNone
}

// InQuietHours tells whether a local wall-clock time falls in the window
// [start, end). A window whose end is before its start wraps midnight;
// one whose start equals its end is empty.
func InQuietHours(q *hotzone.QuietHours, local time.Time) bool {
	if q == nil {
		return false
	}
	start, ok1 := hotzone.ParseClock(q.Start)
	end, ok2 := hotzone.ParseClock(q.End)
	if !ok1 || !ok2 || start == end {
		return false
	}
	m := local.Hour()*60 + local.Minute()
	if start < end {
		return m >= start && m < end
	}
	return m >= start || m < end
}

// queuedToday counts the notifications queued on now's local calendar
// day in loc, which may be 23 or 25 hours long on a daylight-saving change
// day. It compares local dates rather than instants against "local
// midnight": where a zone springs forward at 00:00 (America/Santiago,
// America/Havana) midnight does not exist, and time.Date answers 23:00 of
// the day before, which would count that hour's notifications twice.
// Entries after now are counted too: they were queued today all the same,
// and leaving them out could only let the cap be exceeded.
func queuedToday(h History, now time.Time, loc *time.Location) int {
	y, m, d := now.In(loc).Date()
	n := 0
	for i := len(h) - 1; i >= 0; i-- {
		if ty, tm, td := h[i].In(loc).Date(); ty == y && tm == m && td == d {
			n++
		}
	}
	return n
}
