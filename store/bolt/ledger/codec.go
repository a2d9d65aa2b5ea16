package ledger

import (
	"encoding/binary"
	"errors"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/hotzone/hotzone"
)

// Log entries are written in a compact binary form: every fan-out writes
// one per device and every send rewrites one, and JSON made up a third
// of that CPU and most of its garbage. Entries written as JSON by
// earlier versions still read: JSON starts with '{', the binary form
// with its version byte.
const notifCodecV1 = 1

// Bits of the flags byte.
const (
	flagSentAt = 1 << iota
	flagLastError
	flagNextAttempt
	flagCreatedAt
	// flagVariant: the entry names which of the event's texts it gets
	// (last, after the error); entries from before it have none.
	flagVariant
	// flagDecidedAt, flagOpenedAt, flagVisit: what attribution added
	// (after the variant, in this order; the visit is its mark, then
	// its time).
	flagDecidedAt
	flagOpenedAt
	flagVisit
)

const allFlags = flagSentAt | flagLastError | flagNextAttempt | flagCreatedAt | flagVariant | flagDecidedAt | flagOpenedAt | flagVisit

var errBadNotification = errors.New("store: malformed notification record")

// appendNotification appends n's binary form to buf.
func appendNotification(buf []byte, n *hotzone.Notification) []byte {
	var flags byte
	if n.SentAt != nil {
		flags |= flagSentAt
	}
	if n.LastError != nil {
		flags |= flagLastError
	}
	if !n.NextAttempt.IsZero() {
		flags |= flagNextAttempt
	}
	if !n.CreatedAt.IsZero() {
		flags |= flagCreatedAt
	}
	if n.Variant != "" {
		flags |= flagVariant
	}
	if !n.DecidedAt.IsZero() {
		flags |= flagDecidedAt
	}
	if n.OpenedAt != nil {
		flags |= flagOpenedAt
	}
	// A visit's time goes with its mark; either one alone (only a JSON
	// entry can have that) is kept as it is, too.
	if n.Visit != "" || !n.VisitAt.IsZero() {
		flags |= flagVisit
	}
	buf = append(buf, notifCodecV1, flags)
	for _, s := range [...]string{n.ID, n.BrandID, n.EventID, n.StoreID, n.DeviceID, string(n.Provider), string(n.Status), n.Reason, n.ProviderID} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendUvarint(buf, uint64(max(n.Attempts, 0)))
	if flags&flagCreatedAt != 0 {
		buf = appendTime(buf, n.CreatedAt)
	}
	if flags&flagSentAt != 0 {
		buf = appendTime(buf, *n.SentAt)
	}
	if flags&flagNextAttempt != 0 {
		buf = appendTime(buf, n.NextAttempt)
	}
	if flags&flagLastError != 0 {
		buf = binary.AppendUvarint(buf, uint64(len(*n.LastError)))
		buf = append(buf, *n.LastError...)
	}
	if flags&flagVariant != 0 {
		buf = binary.AppendUvarint(buf, uint64(len(n.Variant)))
		buf = append(buf, n.Variant...)
	}
	if flags&flagDecidedAt != 0 {
		buf = appendTime(buf, n.DecidedAt)
	}
	if flags&flagOpenedAt != 0 {
		buf = appendTime(buf, *n.OpenedAt)
	}
	if flags&flagVisit != 0 {
		buf = binary.AppendUvarint(buf, uint64(len(n.Visit)))
		buf = append(buf, n.Visit...)
		buf = appendTime(buf, n.VisitAt)
	}
	return buf
}

// notificationSize bounds the length of n's binary form: each length
// and number takes at most 10 bytes as a varint.
func notificationSize(n *hotzone.Notification) int {
	size := 2 + 10 + 6*20 // version, flags, attempts, six times
	for _, s := range [...]string{n.ID, n.BrandID, n.EventID, n.StoreID, n.DeviceID, string(n.Provider), string(n.Status), n.Reason, n.ProviderID} {
		size += 10 + len(s)
	}
	if n.LastError != nil {
		size += 10 + len(*n.LastError)
	}
	return size + 10 + len(n.Variant) + 10 + len(n.Visit)
}

// appendTime keeps seconds and nanoseconds apart, so every time.Time a
// JSON entry could hold (years 0 to 9999) survives, not only the
// ±292 years UnixNano reaches.
func appendTime(buf []byte, t time.Time) []byte {
	buf = binary.AppendVarint(buf, t.Unix())
	return binary.AppendUvarint(buf, uint64(t.Nanosecond()))
}

// decodeNotification reads a stored log entry in either form.
func decodeNotification(b []byte, n *hotzone.Notification) error {
	if len(b) > 0 && b[0] == '{' {
		// Unmarshal merges into what n holds; a reused n must not keep
		// fields of the entry before.
		*n = hotzone.Notification{}
		return jsonv2.Unmarshal(b, n)
	}
	if len(b) < 2 || b[0] != notifCodecV1 {
		return errBadNotification
	}
	flags := b[1]
	if flags&^allFlags != 0 {
		return errBadNotification
	}
	// One string holds every text field: one allocation per entry,
	// however many fields it has.
	s := string(b[2:])
	r := reader{s: s}
	*n = hotzone.Notification{
		ID: r.str(), BrandID: r.str(), EventID: r.str(), StoreID: r.str(), DeviceID: r.str(),
		Provider: hotzone.Provider(r.str()), Status: hotzone.NotificationStatus(r.str()),
		Reason: r.str(), ProviderID: r.str(),
	}
	attempts := r.uvarint()
	if attempts > 1<<31 {
		r.bad = true
	}
	n.Attempts = int(attempts)
	if flags&flagCreatedAt != 0 {
		n.CreatedAt = r.time()
	}
	if flags&flagSentAt != 0 {
		t := r.time()
		n.SentAt = &t
	}
	if flags&flagNextAttempt != 0 {
		n.NextAttempt = r.time()
	}
	if flags&flagLastError != 0 {
		e := r.str()
		n.LastError = &e
	}
	if flags&flagVariant != 0 {
		n.Variant = r.str()
	}
	if flags&flagDecidedAt != 0 {
		n.DecidedAt = r.time()
	}
	if flags&flagOpenedAt != 0 {
		t := r.time()
		n.OpenedAt = &t
	}
	if flags&flagVisit != 0 {
		n.Visit = r.str()
		n.VisitAt = r.time()
	}
	if r.bad || r.off != len(s) {
		*n = hotzone.Notification{}
		return errBadNotification
	}
	return nil
}

// reader walks a record; after the first error every read yields zero
// values and bad stays set.
type reader struct {
	s   string
	off int
	bad bool
}

func (r *reader) uvarint() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		if r.off >= len(r.s) {
			r.bad = true
			return 0
		}
		c := r.s[r.off]
		r.off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.bad = true
	return 0
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)-r.off) {
		r.bad = true
		return ""
	}
	v := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

func (r *reader) time() time.Time {
	u := r.uvarint()
	sec := int64(u>>1) ^ -int64(u&1) // zig-zag, as binary.AppendVarint
	nsec := r.uvarint()
	if r.bad || nsec >= 1e9 {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
