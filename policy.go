package hotzone

import (
	"encoding/json"
	"strconv"
	"time"
)

// QuietHours is a daily window, in the device's own time zone, in which
// nothing is queued. End before Start means the window wraps midnight.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Policy is a brand's notification policy; the JSON names and ranges are
// the contract's.
type Policy struct {
	MinIntervalS int         `json:"min_interval_s"`
	DailyCap     int         `json:"daily_cap"`
	QuietHours   *QuietHours `json:"quiet_hours"`
	MaxAccuracyM float64     `json:"max_accuracy_m"`
	PresenceTTLS int         `json:"presence_ttl_s"`
	MaxPingAgeS  int         `json:"max_ping_age_s"`
	// Trigger is when a device in a live event's fence is notified: on
	// entering, or once it has stayed DwellS seconds.
	Trigger Trigger `json:"trigger"`
	DwellS  int     `json:"dwell_s"`
	// MaxSpeedMPS, when set, keeps a ping reporting a higher speed from
	// triggering or entering a fence: a drive-by is not a walk-in.
	MaxSpeedMPS *float64 `json:"max_speed_mps"`
	// HoldoutPct is the share of devices an event holds back for
	// comparison, unless the event says otherwise.
	HoldoutPct int `json:"holdout_pct"`
	// AttributionS is how long after a device was notified or held back
	// its visit counts for the event.
	AttributionS int `json:"attribution_s"`
	// RetentionDays is how long the delivery log, ended events and
	// positions are kept; older ones are pruned in the background.
	RetentionDays int `json:"retention_days"`
}

// DefaultRetentionDays is a new policy's retention_days.
const DefaultRetentionDays = 30

// Retention is how long the policy keeps history.
func (p *Policy) Retention() time.Duration {
	days := p.RetentionDays
	if days <= 0 {
		days = DefaultRetentionDays
	}
	return time.Duration(days) * 24 * time.Hour
}

// Trigger is the policy's moment of notification.
type Trigger string

// The triggers the contract accepts.
const (
	TriggerEnter Trigger = "enter" // the first qualifying ping inside
	TriggerDwell Trigger = "dwell" // once the device has stayed dwell_s
)

// DefaultDwellS is a new policy's dwell_s.
const DefaultDwellS = 120

// UnmarshalJSON reads a policy, giving the members a stored policy of an
// earlier version lacks their defaults, so nothing needs migrating.
func (p *Policy) UnmarshalJSON(b []byte) error {
	type plain Policy
	v := plain{Trigger: TriggerEnter, DwellS: DefaultDwellS, AttributionS: DefaultAttributionS, RetentionDays: DefaultRetentionDays}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Policy(v)
	return nil
}

// Dwells tells whether the policy notifies on dwelling.
func (p *Policy) Dwells() bool { return p.Trigger == TriggerDwell }

// TooFast tells whether a reported speed (nil: none reported) is above
// the policy's max_speed_mps.
func (p *Policy) TooFast(speed *float64) bool {
	return p.MaxSpeedMPS != nil && speed != nil && *speed > *p.MaxSpeedMPS
}

// DefaultPolicy is the policy of a new brand.
func DefaultPolicy() Policy {
	return Policy{
		MinIntervalS:  14400,
		DailyCap:      3,
		QuietHours:    &QuietHours{Start: "21:00", End: "08:00"},
		MaxAccuracyM:  500,
		PresenceTTLS:  1800,
		MaxPingAgeS:   300,
		Trigger:       TriggerEnter,
		DwellS:        DefaultDwellS,
		AttributionS:  DefaultAttributionS,
		RetentionDays: DefaultRetentionDays,
	}
}

// Validate checks every member against the contract's ranges.
func (p Policy) Validate() []FieldError {
	var errs []FieldError
	rng := func(field string, v, lo, hi float64) {
		if !(v >= lo && v <= hi) {
			errs = append(errs, FieldError{Field: field, Message: "must be between " + ftoa(lo) + " and " + ftoa(hi)})
		}
	}
	rng("min_interval_s", float64(p.MinIntervalS), 0, 604800)
	rng("daily_cap", float64(p.DailyCap), 0, 100)
	rng("max_accuracy_m", p.MaxAccuracyM, 1, 10000)
	rng("presence_ttl_s", float64(p.PresenceTTLS), 60, 86400)
	rng("max_ping_age_s", float64(p.MaxPingAgeS), 10, 86400)
	rng("dwell_s", float64(p.DwellS), 30, 3600)
	rng("holdout_pct", float64(p.HoldoutPct), 0, MaxHoldoutPct)
	rng("attribution_s", float64(p.AttributionS), MinAttributionS, MaxAttributionS)
	rng("retention_days", float64(p.RetentionDays), 1, 365)
	if p.MaxSpeedMPS != nil {
		rng("max_speed_mps", *p.MaxSpeedMPS, 1, 100)
	}
	if p.Trigger != TriggerEnter && p.Trigger != TriggerDwell {
		errs = append(errs, FieldError{Field: "trigger", Message: `must be "enter" or "dwell"`})
	}
	if q := p.QuietHours; q != nil {
		if _, ok := ParseClock(q.Start); !ok {
			errs = append(errs, FieldError{Field: "quiet_hours.start", Message: "must be HH:MM between 00:00 and 23:59"})
		}
		if _, ok := ParseClock(q.End); !ok {
			errs = append(errs, FieldError{Field: "quiet_hours.end", Message: "must be HH:MM between 00:00 and 23:59"})
		}
	}
	return errs
}

// ParseClock reads "HH:MM" into minutes after midnight.
func ParseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	d := func(c byte) (int, bool) { return int(c - '0'), c >= '0' && c <= '9' }
	h1, ok1 := d(s[0])
	h2, ok2 := d(s[1])
	m1, ok3 := d(s[3])
	m2, ok4 := d(s[4])
	h, m := h1*10+h2, m1*10+m2
	if !(ok1 && ok2 && ok3 && ok4) || h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
