package hotzone

import (
	"context"
	"time"

	"github.com/hotzone/hotzone/geo"
)

// The storage contract: what the service needs of persistence, shaped as
// its operations. Two backends implement it (bbolt in store/bolt, the
// embedded default; a Redis Cluster for several nodes), and one
// conformance suite (store/storetest) checks every rule below against
// each of them.
//
// Rules that hold for every method, so each comment need not repeat
// them:
//   - ctx comes first and an error last; a missing brand, store, device,
//     event, key or notification is ErrNotFound (wrapped; match it with
//     errors.Is), never a bare bool. The exceptions say so: FencesAt and
//     Changed answer for any brand id, and Record, DeleteCredentials and
//     MarkCredentials treat what is gone as nothing to do.
//   - Every method is safe for concurrent use, also by several processes
//     sharing one backend where the backend allows that.
//   - "Durable" means on disk (bbolt) or acknowledged by the cluster
//     (Redis) when the method returns; a write that is not durable says
//     so and how much a crash may lose.
//   - Reads answered from the node's memory ("views") may lag a write
//     made through another node by at most ViewLag. Through the same
//     node, a read sees every write that returned before it.
//   - Atomicity is promised per device (its record, token, history and
//     decision), per event (its start and end) and per brand for the
//     brand's own settings (policy, stores, keys) — never across
//     devices or across brands, so a backend may shard by device.

// ViewLag is how far a node's in-memory views may lag a change made
// through another node: stores and fences, policy, keys and their
// revocation, live events and their counts.
const ViewLag = time.Second

// Keys authenticates requests and keeps the keys a brand hands out.
type Keys interface {
	// Authenticate returns the key whose secret this is, looked up by the
	// secret's SHA-256 only; ErrUnauthorized when no key has it. The
	// returned key is shared: callers must not modify it.
	Authenticate(ctx context.Context, secret string) (*Key, error)
	// KeyActive tells whether a key Authenticate returned is still valid:
	// not revoked, its store not deleted.
	KeyActive(ctx context.Context, k *Key) (bool, error)
	// TouchKey notes that a manager key was used now. last_used_at is
	// informational: it is written behind, and a crash may lose the last
	// flush interval of it.
	TouchKey(ctx context.Context, k *Key) error
	// EnsureOperatorKey makes the operator key usable. A key from the
	// environment is trusted as given and replaces any stored one; with
	// none the stored hash is used, and on the very first start a key is
	// generated and returned once (only its hash is kept). Durable.
	EnsureOperatorKey(ctx context.Context, fromEnv string) (generated string, err error)
	// CreateManagerKey issues a key for one store's tablet and returns
	// its secret, which exists nowhere else afterwards. Durable;
	// ErrNotFound for an unknown store.
	CreateManagerKey(ctx context.Context, brandID, storeID string, label *string) (Key, string, error)
	// ManagerKeys lists a store's manager keys, oldest first.
	ManagerKeys(ctx context.Context, brandID, storeID string) ([]Key, error)
	// DeleteManagerKey revokes a manager key by id. Durable; the key
	// stops working on this node at once (elsewhere within ViewLag) and
	// its open live streams are woken so they can end.
	DeleteManagerKey(ctx context.Context, brandID, keyID string) error
}

// Brands keeps tenants and their notification policy.
type Brands interface {
	// CreateBrand creates a brand with the default policy and returns
	// its admin and app keys, which exist nowhere else once it returns.
	// Durable, brand and keys together.
	CreateBrand(ctx context.Context, name string) (b Brand, adminKey, appKey string, err error)
	// Brand returns a brand by id.
	Brand(ctx context.Context, brandID string) (Brand, error)
	// Policy returns a brand's policy (a view).
	Policy(ctx context.Context, brandID string) (Policy, error)
	// UpdatePolicy applies fn to the current policy and stores the result
	// when fn returns nil; concurrent updates of one brand never
	// interleave their read-modify-write. Durable.
	UpdatePolicy(ctx context.Context, brandID string, fn func(*Policy) error) (Policy, error)
	// BrandIDs lists every brand's id, in no set order (a view).
	BrandIDs(ctx context.Context) ([]string, error)
}

// StoreQuery selects a page of a brand's stores, ordered by id.
type StoreQuery struct {
	Tag   string // only stores with this tag; "" for all
	After string // only ids after this one
	Limit int    // at most this many; 0 for all
}

// Stores keeps a brand's shops and their fences.
type Stores interface {
	// PutStore creates or replaces a store; st.Fence must be built from
	// st.Spec. It answers the store as stored and whether it was
	// created. Durable.
	PutStore(ctx context.Context, st Store) (Store, bool, error)
	// ImportStores creates or replaces many stores of one brand: all of
	// them or none. Durable.
	ImportStores(ctx context.Context, brandID string, sts []Store) (created, updated int, err error)
	// Store returns one store of a brand (a view).
	Store(ctx context.Context, brandID, storeID string) (Store, error)
	// Stores lists a page of a brand's stores (a view), and whether more
	// follow.
	Stores(ctx context.Context, brandID string, q StoreQuery) ([]Store, bool, error)
	// DeleteStore ends the store's live event (it stays in the history),
	// revokes its manager keys and removes it. Durable.
	DeleteStore(ctx context.Context, brandID, storeID string) error
	// FencesAt appends to dst the brand's stores whose fence contains p,
	// each with the store's name as its Label (a view; no I/O), and
	// returns it. An unknown brand has no fences.
	FencesAt(ctx context.Context, brandID string, p geo.Point, dst []geo.Hit) ([]geo.Hit, error)
	// FencesNear returns up to limit of the brand's stores nearest p as
	// circles a phone can monitor, nearest first, and how far from p
	// the nearest store left out is (+Inf when none is) (a view; no I/O).
	// ErrNotFound for an unknown brand.
	FencesNear(ctx context.Context, brandID string, p geo.Point, limit int) ([]NearStore, float64, error)
	// FencesAround appends to dst the brand's stores whose fence contains
	// p or whose edge lies within m metres of it, with p's distance
	// outside each (geo.Fence.OutsideM), and returns it (a view; no I/O).
	// An unknown brand has none.
	FencesAround(ctx context.Context, brandID string, p geo.Point, m float64, dst []FenceDistance) ([]FenceDistance, error)
	// VisitsAt appends to dst the brand's stores whose visit area
	// (Store.VisitArea) contains p, and returns it (a view; no I/O). An
	// unknown brand has none.
	VisitsAt(ctx context.Context, brandID string, p geo.Point, dst []geo.Hit) ([]geo.Hit, error)
}

// Devices keeps app installs and where they are.
type Devices interface {
	// PutDevice creates or updates a device and reports whether it was
	// created. A push token held by another device of the brand moves to
	// this one: from the moment PutDevice returns, the other device is
	// never pushed with it again. The device's own record is atomic and
	// durable; a backend may clear the other device's copy of the token
	// afterwards, because ownership is decided by the token.
	PutDevice(ctx context.Context, d Device) (Device, bool, error)
	// Device returns a device and what is known of its position (nil
	// when it never pinged).
	Device(ctx context.Context, brandID, deviceID string) (Device, *DevicePosition, error)
	// DeleteDevice erases a device: its record, token, positions, queue
	// history and every notification-log entry (leaving its events'
	// counts with them). Durable and atomic for the device.
	DeleteDevice(ctx context.Context, brandID, deviceID string) error
	// RecordPosition keeps a device's new position; qualifying says it
	// also becomes the position event fan-out uses. An older report
	// never overwrites a newer one. Not durable at once: positions are
	// written behind, so a crash loses at most the backend's flush
	// interval (about a second) of them, or what its doc says it holds
	// longer; they are visible to Device and DevicesIn at once.
	RecordPosition(ctx context.Context, brandID, deviceID string, p Position, qualifying bool) error
	// DevicesIn returns the devices whose last qualifying position lies
	// inside the fence and was reported at or after since, without a
	// scan of every device. It may include a device erased a moment ago
	// (Consider skips it).
	DevicesIn(ctx context.Context, brandID string, f *geo.Fence, since time.Time) ([]string, error)
	// DeviceIDs lists every device of a brand, in id order (for an
	// export: it holds them all in memory).
	DeviceIDs(ctx context.Context, brandID string) ([]string, error)
}

// EventQuery selects a page of a brand's events, newest first.
type EventQuery struct {
	Status  EventStatus // "" for any
	StoreID string      // "" for any
	Before  string      // only ids before this one; "" from the newest
	Limit   int         // at most this many; 0 for all
}

// EventCounts is an event with its counts, as listed.
type EventCounts struct {
	Event  Event
	Counts Counts
}

// Events keeps live events, their history and their counts. Counts are
// kept as they change (never rebuilt by reading the log) and equal the
// event's log entries by status once writes have settled.
type Events interface {
	// StartEvent makes ev the live event of its store (status live,
	// whatever ev.Status says); ev.StartsAt is the time of the request,
	// from which the idempotency window counts. With an idempotency key
	// seen at this store within IdempotencyWindow it returns that event
	// as it is now (created false) and starts nothing. A store with another live
	// event answers ErrConflict together with that event. Atomic per
	// store and durable.
	StartEvent(ctx context.Context, ev Event, idemKey string) (Event, Counts, bool, error)
	// Event returns one event of a brand with its counts.
	Event(ctx context.Context, brandID, eventID string) (Event, Counts, error)
	// LiveEvent returns the store's live event and its counts (a view);
	// ErrNotFound when none is live.
	LiveEvent(ctx context.Context, brandID, storeID string) (Event, Counts, error)
	// LiveEvents returns every live event of every brand (a view), for
	// the expiry loop.
	LiveEvents(ctx context.Context) ([]Event, error)
	// Events lists a page of a brand's events, newest first, and whether
	// more follow.
	Events(ctx context.Context, brandID string, q EventQuery) ([]EventCounts, bool, error)
	// EndEvent ends a live event: status ended, ends_at at (if earlier
	// than planned), and every notification of it still queued becomes
	// expired before it returns. ErrNotFound when the event is not live
	// (already ended: ending is done once). Atomic per event and durable.
	// A device considered concurrently may still be queued for it; the
	// outbox consumer expires such a notification instead of sending it.
	EndEvent(ctx context.Context, brandID, eventID string, at time.Time) (Event, Counts, error)
	// Changed returns a channel closed at the next change of the store's
	// events (one starting or ending, its counts moving) or of the keys
	// that may watch it (a revocation). Changes made through another node
	// close it within ViewLag.
	Changed(ctx context.Context, brandID, storeID string) (<-chan struct{}, error)
}

// IdempotencyWindow is how long an Idempotency-Key of an event start is
// remembered.
const IdempotencyWindow = 24 * time.Hour

// Decisions records who is notified for an event.
type Decisions interface {
	// Consider applies decide to each device for the live event ev and
	// records the outcome durably before it returns: a queued
	// notification is in the outbox and the log, a suppressed one in the
	// log. For each device the check ("has it had its notification for
	// this event?"), decide and the write are one atomic step, so a
	// device gets at most one notification per event however many
	// callers race, across restarts and retries; a suppressed entry is
	// upgraded to queued when the device later qualifies. decide sees
	// the device and its queue times, oldest first, at least those of
	// the last HistoryWindow; it must be pure, since a backend may call it again when it
	// retries a step. Devices are considered one by one: a batch is not
	// atomic as a whole. An unknown or erased device gets an empty
	// Outcome, and so does every device once ev is no longer live.
	Consider(ctx context.Context, ev Event, deviceIDs []string, decide DecideFunc) ([]Outcome, error)
}

// HistoryWindow is how far back a device's queue times are kept at
// least for decide: the longest min_interval_s the contract allows (7
// days).
const HistoryWindow = 7 * 24 * time.Hour

// Outbox hands queued notifications to senders and records what became
// of them. Several consumers (goroutines, or processes sharing a
// backend) may work one lane at once: work is claimed with a lease.
type Outbox interface {
	// Lanes lists the lanes that have queued notifications.
	Lanes(ctx context.Context) ([]Lane, error)
	// Claim hands out up to limit of the lane's queued notifications
	// that are due at now and not claimed by anyone else, oldest due
	// first (those due in the same millisecond in any order), leased to
	// the caller until now+lease; each carries its claim in
	// Notification.Claim. A claim nobody records is handed out again
	// once its lease has passed (the consumer died, say). Leases need
	// not survive a restart of a single-process backend: after a restart
	// everything unrecorded is due at once, as if every lease had passed.
	Claim(ctx context.Context, lane Lane, now time.Time, limit int, lease time.Duration) ([]Notification, error)
	// Record stores the results of send attempts (each Delivery carries
	// the claim it answers). A result applies only while its
	// notification is still queued and no later claim took it over
	// (which can happen only once this claim's lease passed), so no
	// notification is recorded twice and no clock but Claim's judges a
	// lease. A result for a notification that is gone (its device
	// erased) is dropped. Final results leave the outbox; an
	// invalid_token result clears the device's token when it was
	// registered before TokenInvalidSince. Durable; results of one call
	// may be applied one notification at a time.
	Record(ctx context.Context, ds []Delivery) error
	// Release makes every queued notification of the lane due now (new
	// credentials should not wait out the backoff the old ones earned).
	Release(ctx context.Context, lane Lane) error
}

// NotificationQuery selects a page of a brand's delivery log, newest
// first.
type NotificationQuery struct {
	EventID, DeviceID string
	Status            NotificationStatus
	Before            string // only ids before this one; "" from the newest
	Limit             int    // at most this many; 0 for all
}

// Log reads the delivery log: one entry per device per event.
type Log interface {
	// Notifications lists a page of the brand's log and whether more
	// follow.
	Notifications(ctx context.Context, brandID string, q NotificationQuery) ([]Notification, bool, error)
}

// Credentials keeps a brand's APNs and FCM credentials, encrypted at
// rest; the secret never leaves through anything but Credentials.
type Credentials interface {
	// PutCredentials stores (replacing) a brand's credentials for their
	// provider, status ok, with a new version. Durable.
	PutCredentials(ctx context.Context, brandID string, c PushCredentials) error
	// DeleteCredentials removes them (the brand is back in dry-run);
	// removing none is not an error. Durable.
	DeleteCredentials(ctx context.Context, brandID string, p Provider) error
	// Credentials returns a brand's credentials for a provider (a view);
	// ErrNotFound when there are none.
	Credentials(ctx context.Context, brandID string, p Provider) (PushCredentials, error)
	// MarkCredentials records the provider's verdict on credentials of
	// the given version: broken with its answer, or ok again. A verdict
	// on another version is ignored, so a failure seen with old
	// credentials never marks new ones broken. Durable.
	MarkCredentials(ctx context.Context, brandID string, p Provider, version int64, broken bool, reason string) error
}

// Attribution keeps what notifications brought in: the taps the app
// reports and the visits that followed (see VisitMark).
type Attribution interface {
	// Open records that the app reported the notification tapped at at:
	// the first report sets its OpenedAt and counts in its event's
	// Opened, and answers true; later ones change nothing. ErrNotFound
	// unless the notification is the device's, of the brand. Durable
	// and atomic with the count.
	Open(ctx context.Context, brandID, notificationID, deviceID string, at time.Time) (bool, error)
	// Attribute applies visit marks, each to the device's entry for its
	// event when the mark Attributes to it (an entry takes one mark,
	// ever), and returns the entries it marked, as marked. A mark for a
	// device or entry that does not exist is skipped. Durable and atomic
	// per entry.
	Attribute(ctx context.Context, brandID string, marks []VisitMark) ([]Notification, error)
	// EventLog calls fn with each log entry of an event, in no set
	// order, stopping at fn's first error; an event without entries
	// calls it never.
	EventLog(ctx context.Context, brandID, eventID string, fn func(*Notification) error) error
}

// Stats are the numbers an operator watches.
type Stats struct {
	Brands, Stores, Devices, LiveEvents int
	// OutboxDepth is how many notifications are queued; OutboxOldest is
	// when the oldest of them was created (its CreatedAt; zero when none
	// is queued).
	OutboxDepth  int
	OutboxOldest time.Time
}

// Storage is the whole contract, as the service is wired with it.
type Storage interface {
	Keys
	Brands
	Stores
	Devices
	Events
	Decisions
	Outbox
	Log
	Credentials
	Presences
	Webhooks
	Presets
	Attribution
	// Stats counts what the backend holds.
	Stats(ctx context.Context) (Stats, error)
	// Prune deletes what each brand keeps longer than its policy's
	// retention_days: ended events that ended before then with their log
	// entries and counts, and device positions reported before then. It
	// works in small steps (never one transaction or script over all of
	// it), so requests are not held up; callers run it in the
	// background.
	Prune(ctx context.Context) error
	// Ping tells whether the backend answers (readiness).
	Ping(ctx context.Context) error
	// Close writes what is held behind and releases the backend; nothing
	// may be called after it.
	Close() error
}
