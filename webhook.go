package hotzone

import (
	"context"
	"encoding/json"
	"time"
)

// HookType is a kind of happening a webhook may subscribe to.
type HookType string

// The happenings webhooks deliver (the contract's list).
const (
	HookEntered            HookType = "entered"
	HookDwelled            HookType = "dwelled"
	HookExited             HookType = "exited"
	HookEventStarted       HookType = "event.started"
	HookEventEnded         HookType = "event.ended"
	HookNotificationSent   HookType = "notification.sent"
	HookNotificationFailed HookType = "notification.failed"
	HookVisit              HookType = "visit"
	// HookTest is what POST /v1/webhooks/{id}/test sends; no webhook
	// subscribes to it.
	HookTest HookType = "webhook.test"
)

// Bit is t's bit in a set of types (0 for a type no webhook takes), so
// that a backend can answer Listens from one word per brand.
func (t HookType) Bit() uint16 {
	for i, h := range HookTypes {
		if h == t {
			return 1 << i
		}
	}
	return 0
}

// Bits is the set of types the webhook takes.
func (w *Webhook) Bits() uint16 {
	var b uint16
	for _, t := range w.Events {
		b |= t.Bit()
	}
	return b
}

// HookTypes are the types a webhook may subscribe to, in the contract's
// order.
var HookTypes = []HookType{HookEntered, HookDwelled, HookExited, HookEventStarted, HookEventEnded,
	HookNotificationSent, HookNotificationFailed, HookVisit}

// WebhookStatus is whether a webhook is delivered to.
type WebhookStatus string

// The statuses of a webhook.
const (
	WebhookActive WebhookStatus = "active"
	// WebhookDisabled: it failed for DisableAfter without a success; it
	// gets no new deliveries and its queued ones wait.
	WebhookDisabled WebhookStatus = "disabled"
)

// DisableAfter is how long a webhook may fail without one success
// before it is disabled: longer than a delivery's retries (24 h), so
// an endpoint down for a day loses nothing before it is turned off.
const DisableAfter = 48 * time.Hour

// Webhook is a brand's receiver of happenings. Secret signs deliveries:
// it is sealed at rest and answered only when the webhook is created.
type Webhook struct {
	ID        string
	BrandID   string
	URL       string
	Events    []HookType
	Secret    string
	CreatedAt time.Time
	Status    WebhookStatus
	// FailingSince is the first failed attempt since the last success
	// (zero while it succeeds).
	FailingSince time.Time
}

// Subscribed tells whether the webhook takes happenings of type t.
func (w *Webhook) Subscribed(t HookType) bool {
	for _, e := range w.Events {
		if e == t {
			return true
		}
	}
	return false
}

// Happening is something a webhook may be told of: the body of a
// delivery is its id, type, created_at and data.
type Happening struct {
	ID        string          `json:"id"`
	Type      HookType        `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
	// OrderKey orders deliveries: a webhook gets those of one key (a
	// device) in the order they were emitted, each after the one before
	// was delivered or failed. "" orders nothing.
	OrderKey string `json:"order_key,omitempty"`
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// The statuses of a delivery.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
)

// HookDelivery is one happening on its way to one webhook, with what its
// attempts gave.
type HookDelivery struct {
	ID        string
	WebhookID string
	BrandID   string
	// CreatedAt is when it was queued: its retries end RetryFor after.
	CreatedAt time.Time
	Happening Happening
	Status    DeliveryStatus
	Attempts  int
	// NextAttempt is when a pending delivery is due.
	NextAttempt   time.Time
	LastAttemptAt time.Time
	// LastCode is the receiver's HTTP status of the last attempt (0 for
	// none: a timeout or a refused connection, told in LastError).
	LastCode    int
	LastError   string
	DeliveredAt time.Time
	// Claim is the lease a claimed delivery was handed out under.
	Claim string
}

// AttemptResult is the outcome of one delivery attempt.
type AttemptResult struct {
	BrandID, WebhookID, DeliveryID, Claim string
	At                                    time.Time
	// Status is delivered, failed (no more attempts), or pending (tried
	// again at Next).
	Status DeliveryStatus
	Next   time.Time
	Code   int
	Error  string
}

// PageQuery selects a page of a list ordered by id.
type PageQuery struct {
	After string // only ids after this one
	Limit int    // at most this many; 0 for all
}

// DeliveryQuery selects a page of a webhook's deliveries, newest first.
type DeliveryQuery struct {
	Status DeliveryStatus // "" for any
	Before string         // only ids before this one
	Limit  int            // at most this many; 0 for all
}

// Webhooks keeps brands' webhooks and the durable queue of their
// deliveries.
type Webhooks interface {
	// CreateWebhook stores a new webhook (status active); w.Secret is
	// sealed at rest. Durable.
	CreateWebhook(ctx context.Context, w Webhook) error
	// Webhook returns one, with its secret.
	Webhook(ctx context.Context, brandID, id string) (Webhook, error)
	// Webhooks lists a page of a brand's webhooks by id, with their
	// secrets, and whether more follow.
	Webhooks(ctx context.Context, brandID string, q PageQuery) ([]Webhook, bool, error)
	// DeleteWebhook removes a webhook and its deliveries. Durable.
	DeleteWebhook(ctx context.Context, brandID, id string) error
	// SetWebhookStatus turns a webhook on or off; turned on, its
	// failing stretch starts over. Durable.
	SetWebhookStatus(ctx context.Context, brandID, id string, s WebhookStatus) (Webhook, error)
	// Listens tells, without I/O, whether a webhook of the brand
	// subscribes to t (a view; with several nodes within ViewLag), so
	// that nothing is built for nobody. It may answer true for a
	// disabled webhook, which Emit then skips.
	Listens(brandID string, t HookType) bool
	// Emit queues a delivery of each happening to every active webhook
	// of the brand subscribed to its type, due now: each webhook's
	// deliveries all or none (a backend sharded by webhook may write
	// several webhooks' apart). Durable. An unknown brand has no
	// webhooks.
	Emit(ctx context.Context, brandID string, hs []Happening) error
	// EmitTo queues one happening to one webhook, whatever it subscribes
	// to and whatever its status (a test, a retry by hand) and answers
	// the delivery. Durable.
	EmitTo(ctx context.Context, brandID, webhookID string, h Happening) (HookDelivery, error)
	// ClaimDeliveries hands out up to limit pending deliveries due at
	// now, of active webhooks, leased until now+lease: of one webhook at
	// most perHook at a time (counting those still leased), and of one
	// order key only the oldest pending (the next waits until it is
	// delivered or failed). A lease that passes hands the delivery out
	// again.
	ClaimDeliveries(ctx context.Context, now time.Time, limit, perHook int, lease time.Duration) ([]HookDelivery, error)
	// RecordAttempt stores an attempt's outcome if its claim still holds
	// (otherwise it is dropped: the lease passed and another attempt was
	// handed out), and the webhook's failing stretch: a success ends it,
	// a failure starts it or, past DisableAfter, disables the webhook.
	// Durable.
	RecordAttempt(ctx context.Context, r AttemptResult) error
	// Deliveries lists a page of a webhook's deliveries, newest first,
	// and whether more follow.
	Deliveries(ctx context.Context, brandID, webhookID string, q DeliveryQuery) ([]HookDelivery, bool, error)
	// Delivery returns one delivery of a webhook.
	Delivery(ctx context.Context, brandID, webhookID, deliveryID string) (HookDelivery, error)
}

// presenceData is the data of entered, dwelled and exited.
type presenceData struct {
	DeviceID  string     `json:"device_id"`
	StoreID   string     `json:"store_id"`
	At        time.Time  `json:"at"`
	EnteredAt *time.Time `json:"entered_at,omitempty"`
	DurationS *int64     `json:"duration_s,omitempty"`
}

// PresenceHappening is a presence change as webhooks get it, in order
// per device: {"device_id", "store_id", "at"}, and for dwelled and
// exited also "entered_at" and "duration_s".
func PresenceHappening(c PresenceChange, now time.Time) Happening {
	d := presenceData{DeviceID: c.DeviceID, StoreID: c.StoreID, At: c.At.UTC()}
	if c.Type != Entered {
		at, s := c.EnteredAt.UTC(), c.DurationS()
		d.EnteredAt, d.DurationS = &at, &s
	}
	raw, _ := json.Marshal(d) // plain values: never fails
	return Happening{ID: NewID(now), Type: HookType(c.Type), CreatedAt: now, Data: raw, OrderKey: c.DeviceID}
}

// EventHappening is an event starting or ending as webhooks get it, in
// order per store: the event as the API answers it, and when it ended
// its counts.
func EventHappening(t HookType, ev Event, counts *Counts, now time.Time) Happening {
	raw, _ := json.Marshal(struct {
		EventID  string      `json:"event_id"`
		StoreID  string      `json:"store_id"`
		Title    string      `json:"title"`
		Body     string      `json:"body"`
		URL      *string     `json:"url"`
		StartsAt time.Time   `json:"starts_at"`
		EndsAt   time.Time   `json:"ends_at"`
		Status   EventStatus `json:"status"`
		Counts   *Counts     `json:"counts,omitempty"`
	}{ev.ID, ev.StoreID, ev.Title, ev.Body, ev.URL, ev.StartsAt.UTC(), ev.EndsAt.UTC(), ev.Status, counts})
	// '@' is in no device id: a store's key never meets a device's.
	return Happening{ID: NewID(now), Type: t, CreatedAt: now, Data: raw, OrderKey: "@store:" + ev.StoreID}
}

// NotificationHappening is a notification's final result as webhooks
// get it (notification.sent for sent and dry_run, notification.failed
// for failed and invalid_token), in order per device.
func NotificationHappening(n Notification, d Delivery, now time.Time) (Happening, bool) {
	var t HookType
	switch d.Status {
	case StatusSent, StatusDryRun:
		t = HookNotificationSent
	case StatusFailed, StatusInvalidToken:
		t = HookNotificationFailed
	default:
		return Happening{}, false
	}
	var errText *string
	if d.Error != "" {
		errText = &d.Error
	}
	raw, _ := json.Marshal(struct {
		NotificationID string             `json:"notification_id"`
		EventID        string             `json:"event_id"`
		StoreID        string             `json:"store_id"`
		DeviceID       string             `json:"device_id"`
		Provider       Provider           `json:"provider"`
		Status         NotificationStatus `json:"status"`
		Error          *string            `json:"error"`
	}{n.ID, n.EventID, n.StoreID, n.DeviceID, n.Provider, d.Status, errText})
	return Happening{ID: NewID(now), Type: t, CreatedAt: now, Data: raw, OrderKey: n.DeviceID}, true
}
