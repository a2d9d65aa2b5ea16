package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// The log is keyed by time-ordered notification id, so new entries
// append at the end of the tree (cheap for bbolt) and listing newest
// first is a reverse scan. The "one entry per device per event" index is
// keyed event first: a fan-out's entries then land together at the end
// of the tree, where keyed device first every fan-out rewrote pages
// across the whole index, every event ever included. Erasure finds a
// device's entries through the brand's events.
var (
	bucketNotifs    = []byte("notifs")         // brand\0notification id -> Notification
	bucketNotifKeys = []byte("notif_by_event") // brand\0event\0device -> notification id
	bucketOutbox    = []byte("outbox")         // brand\0provider\0notification id -> nothing
	bucketHistory   = []byte("history")        // brand\0device -> queued times, 8 bytes each
	bucketCounts    = []byte("event_counts")   // brand\0event -> counts (see appendCounts)
)

// Prepare creates the ledger's buckets (the events' too) in tx and
// migrates what an earlier version wrote: an index keyed device first, and a log without
// counts (counted once, here).
func Prepare(tx *bbolt.Tx) error {
	if err := migrateNotifKeys(tx); err != nil {
		return fmt.Errorf("migrate the notification index: %w", err)
	}
	countsNew := tx.Bucket(bucketCounts) == nil
	for _, name := range [][]byte{bucketEvents, bucketLive, bucketIdem, bucketNotifs, bucketNotifKeys, bucketOutbox, bucketHistory, bucketCounts} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if countsNew {
		if err := migrateCounts(tx); err != nil {
			return fmt.Errorf("count the log of an earlier version: %w", err)
		}
	}
	return nil
}

// key builds a NUL-joined key in buf, reusing its storage; no id may
// contain NUL.
func key(buf []byte, parts ...string) []byte {
	buf = buf[:0]
	for i, p := range parts {
		if i > 0 {
			buf = append(buf, 0)
		}
		buf = append(buf, p...)
	}
	return buf
}

// get is Bucket.Get through a reused cursor; a seek always starts at the
// root, so it stays correct after Puts in the same transaction.
func get(c *bbolt.Cursor, k []byte) []byte {
	fk, v := c.Seek(k)
	if !bytes.Equal(fk, k) {
		return nil
	}
	return v
}

// Writer holds a transaction's buckets and scratch space: bbolt copies
// keys on Put, so one buffer serves every key of a fan-out.
type Writer struct {
	notifs, keys, outbox, history *bbolt.Bucket
	kbuf, kbuf2                   []byte
	arena                         []byte
	// Reused cursors for lookups: Bucket.Get makes a new cursor (and
	// its stack) per call, which is most of a fan-out's garbage.
	cKeys, cHistory *bbolt.Cursor
	// known, when set, holds every index entry of the event for the
	// devices being considered (see Preload), in place of a lookup per
	// device.
	known map[string][]byte
}

// appendFill is how full bbolt packs pages of the buckets written in
// key order.
const appendFill = 0.95

// NewWriter returns a writer for tx, which must be writable.
func NewWriter(tx *bbolt.Tx) *Writer {
	w := &Writer{
		notifs: tx.Bucket(bucketNotifs), keys: tx.Bucket(bucketNotifKeys),
		outbox: tx.Bucket(bucketOutbox), history: tx.Bucket(bucketHistory),
	}
	w.cKeys, w.cHistory = w.keys.Cursor(), w.history.Cursor()
	// The log and the outbox grow at their ends (ids are time-ordered):
	// packed pages leave fewer for a commit to write, where the default
	// half fill suits inserts anywhere.
	w.notifs.FillPercent, w.outbox.FillPercent = appendFill, appendFill
	return w
}

// Preload reads the event's index entries between the lowest and the
// highest of ids in one walk: for a fan-out that is one seek where a
// lookup per device would be thousands, and a fresh event has none.
func (w *Writer) Preload(ev hotzone.Event, ids []string) {
	if len(ids) == 0 {
		return
	}
	lo, hi := ids[0], ids[0]
	for _, id := range ids[1:] {
		lo, hi = min(lo, id), max(hi, id)
	}
	prefix := key(nil, ev.BrandID, ev.ID, "")
	w.known = map[string][]byte{}
	c := w.keys.Cursor()
	for k, v := c.Seek(append(bytes.Clone(prefix), lo...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		dev := string(k[len(prefix):])
		if dev > hi {
			break
		}
		w.known[dev] = v
	}
}

// indexed is the id of the event's notification for the device, whose
// index key is k, or nil.
func (w *Writer) indexed(deviceID string, k []byte) []byte {
	if w.known != nil {
		return w.known[deviceID]
	}
	return get(w.cKeys, k)
}

// Consider decides one device for the live event ev and writes the
// outcome: a new or upgraded entry, queued (in the outbox, its queue
// time in the history) or suppressed; nothing when the device already
// had its notification. d is the device's registration, the zero Device
// for one unknown or erased (an empty outcome).
func (w *Writer) Consider(ev hotzone.Event, deviceID string, d hotzone.Device, decide hotzone.DecideFunc, now time.Time) (hotzone.Outcome, error) {
	o := hotzone.Outcome{DeviceID: deviceID}
	if d.ID == "" {
		return o, nil // unknown or erased
	}
	w.kbuf = key(w.kbuf, ev.BrandID, deviceID)
	hist := decodeHistory(get(w.cHistory, w.kbuf))
	w.kbuf2 = key(w.kbuf2, ev.BrandID, ev.ID, deviceID)
	var n hotzone.Notification
	if id := w.indexed(deviceID, w.kbuf2); id != nil {
		v := w.notifs.Get(key(w.kbuf2, ev.BrandID, string(id)))
		if v == nil {
			return o, fmt.Errorf("notification %s indexed but missing", id)
		}
		if err := decodeNotification(v, &n); err != nil {
			return o, err
		}
		if n.Decided() {
			o = hotzone.Standing(&n)
			return o, nil
		}
		o.Prev = n.Status
	} else {
		n = hotzone.Notification{ID: hotzone.NewID(now), BrandID: ev.BrandID, EventID: ev.ID, StoreID: ev.StoreID, DeviceID: deviceID, CreatedAt: now}
		if err := w.keys.Put(w.kbuf2, []byte(n.ID)); err != nil {
			return o, err
		}
		if w.known != nil {
			w.known[deviceID] = []byte(n.ID)
		}
	}
	reason := decide(d, hist)
	n.Provider = d.Provider
	if reason != "" {
		o.Status, o.Reason = hotzone.StatusSuppressed, reason
		if n.Status == hotzone.StatusSuppressed && n.Reason == reason {
			return o, nil // the same hold again: nothing to write
		}
		n.Status, n.Reason = hotzone.StatusSuppressed, reason
		if reason == hotzone.ReasonHoldout {
			n.DecidedAt = now
		}
	} else {
		o.Status = hotzone.StatusQueued
		n.Status, n.Reason, n.DecidedAt = hotzone.StatusQueued, "", now
		n.Variant = hotzone.ChooseVariant(ev.Localized, d.Locale)
		if err := w.outbox.Put(outboxKey(w.kbuf2, &n), nil); err != nil {
			return o, err
		}
		if err := w.history.Put(w.kbuf, encodeHistory(append(hist, now), now)); err != nil {
			return o, err
		}
	}
	o.Changed = true
	return o, w.put(&n)
}

// outboxKey is a queued notification's place in the outbox: per brand
// and provider, so each sending lane reads only its own, in id order.
func outboxKey(buf []byte, n *hotzone.Notification) []byte {
	return key(buf, n.BrandID, string(n.Provider), n.ID)
}

// Values are cut from slabs: bbolt keeps a Put's value (not a copy)
// until the transaction ends, so values cannot share one reused buffer,
// but they can share a few allocations. Slabs start small (a dispatcher
// commit records a few hundred results) and double up to the largest; a
// value that does not fit what is left of a slab starts the next one.
const (
	arenaFirst = 4 << 10
	arenaMax   = 64 << 10
)

// put stores a log entry in its binary form, cut from the transaction's
// slab.
func (w *Writer) put(n *hotzone.Notification) error {
	if size := notificationSize(n); cap(w.arena)-len(w.arena) < size {
		w.arena = make([]byte, 0, max(min(2*cap(w.arena), arenaMax), arenaFirst, size))
	}
	start := len(w.arena)
	w.arena = appendNotification(w.arena, n) // fits: never reallocates
	return w.notifs.Put(key(w.kbuf2, n.BrandID, n.ID), w.arena[start:len(w.arena):len(w.arena)])
}

func decodeHistory(v []byte) []time.Time {
	out := make([]time.Time, 0, len(v)/8+1)
	for i := 0; i+8 <= len(v); i += 8 {
		out = append(out, time.Unix(0, int64(binary.BigEndian.Uint64(v[i:]))).UTC())
	}
	return out
}

// encodeHistory keeps the queue times of the last HistoryWindow.
func encodeHistory(h []time.Time, now time.Time) []byte {
	buf := make([]byte, 0, 8*len(h))
	for _, t := range h {
		if now.Sub(t) > hotzone.HistoryWindow {
			continue
		}
		buf = binary.BigEndian.AppendUint64(buf, uint64(t.UnixNano()))
	}
	return buf
}

// ForgetHistory deletes a device's queue history (its erasure).
func ForgetHistory(tx *bbolt.Tx, brandID, deviceID string) error {
	return tx.Bucket(bucketHistory).Delete(key(nil, brandID, deviceID))
}
