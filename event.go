package hotzone

import "time"

// EventStatus is whether an event is running.
type EventStatus string

// The event statuses.
const (
	EventLive  EventStatus = "live"
	EventEnded EventStatus = "ended"
)

// Event is a store's live moment ("hot now"): while it is live, devices
// in the store's fence are notified once.
type Event struct {
	ID             string      `json:"id"`
	BrandID        string      `json:"brand_id"`
	StoreID        string      `json:"store_id"`
	Title          string      `json:"title"`
	Body           string      `json:"body"`
	URL            *string     `json:"url"`
	StartsAt       time.Time   `json:"starts_at"`
	EndsAt         time.Time   `json:"ends_at"`
	Status         EventStatus `json:"status"`
	IdempotencyKey string      `json:"idempotency_key,omitempty"`
	// Localized are the title and body in other languages, by BCP 47
	// tag; a device gets the one its locale picks (ChooseVariant).
	Localized map[string]Message `json:"localized,omitempty"`
	// Audience, when set, limits who is notified by their tags; the
	// others are suppressed with reason audience.
	Audience *Audience `json:"audience,omitempty"`
	// HoldoutPct is the share of devices held back for comparison; nil
	// takes the policy's at each decision.
	HoldoutPct *int `json:"holdout_pct,omitempty"`
	// AttributionS is how long after a decision a visit counts, the
	// policy's when the event started.
	AttributionS int `json:"attribution_s,omitempty"`
}

// Holdout is the share of devices the event holds back under policy p.
func (ev *Event) Holdout(p *Policy) int {
	if ev.HoldoutPct != nil {
		return *ev.HoldoutPct
	}
	return p.HoldoutPct
}

// Attribution is how long after a decision a visit counts for ev.
func (ev *Event) Attribution() time.Duration {
	if ev.AttributionS > 0 {
		return time.Duration(ev.AttributionS) * time.Second
	}
	return DefaultAttributionS * time.Second
}

// Counts are an event's notification-log entries by current status, as
// the contract defines them.
type Counts struct {
	DevicesInFence int `json:"devices_in_fence"`
	Queued         int `json:"queued"`
	Sent           int `json:"sent"`
	Suppressed     int `json:"suppressed"`
	Failed         int `json:"failed"`
	Expired        int `json:"expired"`
	// Opened counts the notifications whose tap the app reported; it is
	// not a status, so not part of DevicesInFence.
	Opened int `json:"opened"`
}

// Add moves one entry into (delta 1) or out of (delta -1) the bucket of
// status s, keeping DevicesInFence the sum.
func (c *Counts) Add(s NotificationStatus, delta int) {
	switch s {
	case StatusQueued:
		c.Queued += delta
	case StatusSent, StatusDryRun:
		c.Sent += delta
	case StatusSuppressed:
		c.Suppressed += delta
	case StatusFailed, StatusInvalidToken:
		c.Failed += delta
	case StatusExpired:
		c.Expired += delta
	default:
		return
	}
	c.DevicesInFence += delta
}

// Merge adds d, a difference built with Add, to c.
func (c *Counts) Merge(d Counts) {
	c.DevicesInFence += d.DevicesInFence
	c.Queued += d.Queued
	c.Sent += d.Sent
	c.Suppressed += d.Suppressed
	c.Failed += d.Failed
	c.Expired += d.Expired
	c.Opened += d.Opened
}

// NotificationStatus is where a notification stands.
type NotificationStatus string

// The statuses of the contract.
const (
	StatusQueued       NotificationStatus = "queued"
	StatusSent         NotificationStatus = "sent"
	StatusDryRun       NotificationStatus = "dry_run"
	StatusSuppressed   NotificationStatus = "suppressed"
	StatusFailed       NotificationStatus = "failed"
	StatusExpired      NotificationStatus = "expired"
	StatusInvalidToken NotificationStatus = "invalid_token"
)

// Final tells whether no further change can happen to a notification in
// this status. Suppressed is not final: a later qualifying ping during
// the event may turn it into queued.
func (s NotificationStatus) Final() bool {
	switch s {
	case StatusSent, StatusDryRun, StatusFailed, StatusExpired, StatusInvalidToken:
		return true
	}
	return false
}

// Notification is the one log entry of a device for an event.
type Notification struct {
	ID          string             `json:"id"`
	BrandID     string             `json:"brand_id"`
	EventID     string             `json:"event_id"`
	StoreID     string             `json:"store_id"`
	DeviceID    string             `json:"device_id"`
	Provider    Provider           `json:"provider"`
	Status      NotificationStatus `json:"status"`
	Reason      string             `json:"reason,omitempty"`
	Attempts    int                `json:"attempts"`
	CreatedAt   time.Time          `json:"created_at"`
	SentAt      *time.Time         `json:"sent_at"`
	LastError   *string            `json:"last_error"`
	NextAttempt time.Time          `json:"next_attempt,omitzero"`
	ProviderID  string             `json:"provider_id,omitempty"`
	// Variant is which of the event's texts the device gets (a key of
	// Event.Localized; "" for the event's own), chosen when it is
	// queued.
	Variant string `json:"variant,omitempty"`
	// DecidedAt is when the entry became queued or held back: a visit
	// counts from then.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// OpenedAt is when the app first reported the notification tapped.
	OpenedAt *time.Time `json:"opened_at,omitempty"`
	// Visit is VisitVisited or VisitAlreadyThere once the device was
	// seen in the store's visit area (at VisitAt), VisitNone before.
	Visit   string    `json:"visit,omitempty"`
	VisitAt time.Time `json:"visit_at,omitzero"`
	// Claim is the lease Outbox.Claim handed it out under; it is never
	// stored with the entry.
	Claim string `json:"-"`
}

// Delivery is the result of one attempt to send a notification.
type Delivery struct {
	NotificationID string
	// Claim is the lease the notification was claimed under
	// (Notification.Claim).
	Claim string
	// BrandID and Provider name the outbox lane the notification was
	// queued in.
	BrandID  string
	Provider Provider
	// Status is the new status: sent, dry_run, failed or invalid_token;
	// queued means "try again at NextAttempt".
	Status     NotificationStatus
	ProviderID string
	Error      string
	// Code is the provider's answer in a word, for metrics: "410
	// Unregistered", "UNAVAILABLE", "network"; "" on success.
	Code        string
	NextAttempt time.Time
	At          time.Time
	// TokenInvalidSince, with status invalid_token, clears the device's
	// token if it was registered before this time (APNs 410 carries when
	// the token stopped being valid; a newer registration is kept).
	TokenInvalidSince time.Time
}

// Apply makes n what the result d of one send attempt makes of it: one
// attempt more, the provider's error and message id when d has them,
// d's status, and when it is tried again (a retry) or when it was sent.
// Backends apply results through it, so they agree on an entry's fields.
func (n *Notification) Apply(d *Delivery) {
	n.Attempts++
	if d.Error != "" {
		e := d.Error
		n.LastError = &e
	}
	if d.ProviderID != "" {
		n.ProviderID = d.ProviderID
	}
	n.Status = d.Status
	n.NextAttempt = time.Time{}
	if d.Status == StatusQueued {
		n.NextAttempt = d.NextAttempt.UTC()
	}
	if d.Status == StatusSent || d.Status == StatusDryRun {
		at := d.At.UTC()
		n.SentAt = &at
	}
}

// DecideFunc is the policy applied inside the queueing transaction: it
// sees the device and its recent queue times (oldest first) and answers
// "" to queue or a suppression reason.
type DecideFunc func(d Device, history []time.Time) string

// Outcome is what happened to one device considered for an event.
type Outcome struct {
	DeviceID string
	// Status is queued or suppressed; empty when the device already had
	// its notification for the event (Reason already_notified) or is gone.
	Status NotificationStatus
	Reason string
	// Changed says the log entry was created or changed; Prev is the
	// status it had before ("" when new).
	Changed bool
	Prev    NotificationStatus
}

// ReasonAlreadyNotified is the outcome reason for a device that has had
// its one notification for the event.
const ReasonAlreadyNotified = "already_notified"

// Lane is one brand's outbox for one provider. Lanes are sent from
// independently, so one brand's big event cannot hold up another brand.
type Lane struct {
	BrandID  string
	Provider Provider
}
