package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
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
)

// Consider implements hotzone.Decisions. The devices given in one call
// are decided in one transaction (a fan-out's chunk, or concurrent
// pings sharing a commit through bbolt's Batch); the event's liveness is
// checked in the same transaction, so a decision commits either before
// the event's end (and is expired by it) or sees it ended.
func (db *DB) Consider(_ context.Context, ev hotzone.Event, deviceIDs []string, decide hotzone.DecideFunc) ([]hotzone.Outcome, error) {
	bs := db.brand(ev.BrandID)
	if bs == nil {
		return nil, notFound("brand")
	}
	entries := make([]*deviceEntry, len(deviceIDs))
	bs.mu.RLock()
	for i, id := range deviceIDs {
		entries[i] = bs.devices[id]
	}
	bs.mu.RUnlock()
	now := db.now().UTC()
	out := make([]hotzone.Outcome, len(deviceIDs))
	var changes []countsChange
	fn := func(tx *bbolt.Tx) error {
		changes = nil
		if string(tx.Bucket(bucketLive).Get(joinKey(ev.BrandID, ev.StoreID))) != ev.ID {
			for i := range out {
				out[i] = hotzone.Outcome{DeviceID: deviceIDs[i]}
			}
			return nil
		}
		w := newNotifWriter(tx)
		if len(deviceIDs) > 1 {
			w.preloadIndex(ev, deviceIDs)
		}
		var delta hotzone.Counts
		for i, e := range entries {
			// DeleteDevice marks an entry before its own transaction, and
			// bbolt runs one writer at a time: a device erased before this
			// transaction is seen here as deleted, one erased after has
			// what this writes erased with it.
			var d hotzone.Device
			if e != nil {
				e.mu.Lock()
				if !e.deleted {
					d = e.dev
				}
				e.mu.Unlock()
			}
			o, err := w.consider(ev, deviceIDs[i], d, decide, now)
			if err != nil {
				return err
			}
			if o.Changed {
				if o.Prev != "" {
					delta.Add(o.Prev, -1)
				}
				delta.Add(o.Status, 1)
			}
			out[i] = o
		}
		var err error
		changes, err = db.addCounts(tx, ev.BrandID, map[string]hotzone.Counts{ev.ID: delta})
		return err
	}
	var err error
	if len(deviceIDs) == 1 {
		// One device is a ping: concurrent pings share a commit.
		err = db.bolt.Batch(fn)
	} else {
		err = db.bolt.Update(fn)
	}
	if err != nil {
		return nil, fmt.Errorf("store: consider: %w", err)
	}
	db.publishCounts(changes)
	return out, nil
}

// notifWriter holds a transaction's buckets and scratch space: bbolt
// copies keys on Put, so one buffer serves every key of a fan-out.
type notifWriter struct {
	notifs, keys, outbox, history *bbolt.Bucket
	kbuf, kbuf2                   []byte
	arena                         []byte
	// Reused cursors for lookups: Bucket.Get makes a new cursor (and
	// its stack) per call, which is most of a fan-out's garbage.
	cKeys, cHistory *bbolt.Cursor
	// known, when set, holds every index entry of the event for the
	// devices being considered (see preloadIndex), in place of a lookup
	// per device.
	known map[string][]byte
}

// preloadIndex reads the event's index entries between the lowest and
// the highest of ids in one walk: for a fan-out that is one seek where
// a lookup per device would be thousands, and a fresh event has none.
func (w *notifWriter) preloadIndex(ev hotzone.Event, ids []string) {
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
func (w *notifWriter) indexed(deviceID string, k []byte) []byte {
	if w.known != nil {
		return w.known[deviceID]
	}
	return get(w.cKeys, k)
}

// appendFill is how full bbolt packs pages of the buckets written in
// key order.
const appendFill = 0.95

func newNotifWriter(tx *bbolt.Tx) *notifWriter {
	w := &notifWriter{
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

func (w *notifWriter) consider(ev hotzone.Event, deviceID string, d hotzone.Device, decide hotzone.DecideFunc, now time.Time) (hotzone.Outcome, error) {
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
		if n.Status != hotzone.StatusSuppressed {
			o.Reason = hotzone.ReasonAlreadyNotified
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
	} else {
		o.Status = hotzone.StatusQueued
		n.Status, n.Reason = hotzone.StatusQueued, ""
		if err := w.outbox.Put(outboxKey(w.kbuf2, &n), nil); err != nil {
			return o, err
		}
		if err := w.history.Put(w.kbuf, encodeHistory(append(hist, now), now)); err != nil {
			return o, err
		}
	}
	o.Changed = true
	return o, w.putNotification(&n)
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

// putNotification stores a log entry in its binary form, cut from the
// transaction's slab.
func (w *notifWriter) putNotification(n *hotzone.Notification) error {
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

// expireQueued turns the event's queued notifications into expired and
// takes them out of the outbox, answering how many. Every queued
// notification is in the outbox, so the outbox (only what is pending) is
// what it scans.
func expireQueued(tx *bbolt.Tx, ev hotzone.Event) (int, error) {
	var out []hotzone.Notification
	err := scanOutbox(tx, ev.BrandID, append([]byte(ev.BrandID), 0), nil, func(n hotzone.Notification) bool {
		if n.EventID == ev.ID && n.Status == hotzone.StatusQueued {
			n.Status, n.NextAttempt = hotzone.StatusExpired, time.Time{}
			out = append(out, n)
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	w := newNotifWriter(tx)
	// Deleting behind a bbolt cursor can skip keys; change after the scan.
	for _, n := range out {
		if err := w.outbox.Delete(outboxKey(w.kbuf, &n)); err != nil {
			return 0, err
		}
		if err := w.putNotification(&n); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

// Notifications implements hotzone.Log by a backward walk of the brand's
// log (ids sort by creation).
func (db *DB) Notifications(_ context.Context, brandID string, q hotzone.NotificationQuery) ([]hotzone.Notification, bool, error) {
	if db.brand(brandID) == nil {
		return nil, false, notFound("brand")
	}
	var out []hotzone.Notification
	more := false
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		prefix := append([]byte(brandID), 0)
		c := tx.Bucket(bucketNotifs).Cursor()
		// Seek to the first key at or after the bound, then step back.
		bound := append([]byte(brandID), 1) // just past the brand
		if q.Before != "" {
			bound = joinKey(brandID, q.Before)
		}
		var k, v []byte
		if first, _ := c.Seek(bound); first == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			var n hotzone.Notification
			if err := decodeNotification(v, &n); err != nil {
				return err
			}
			if (q.EventID != "" && n.EventID != q.EventID) || (q.DeviceID != "" && n.DeviceID != q.DeviceID) || (q.Status != "" && n.Status != q.Status) {
				continue
			}
			if q.Limit > 0 && len(out) == q.Limit {
				more = true
				return nil
			}
			out = append(out, n)
		}
		return nil
	})
	return out, more, err
}

// eraseNotifications deletes every log entry of a device inside tx,
// looking up its index entry in each of the brand's events, and answers
// the change it makes to each event's counts.
func eraseNotifications(tx *bbolt.Tx, brandID, deviceID string) (map[string]hotzone.Counts, error) {
	w := newNotifWriter(tx)
	prefix := append([]byte(brandID), 0)
	var (
		out  []hotzone.Notification
		keys [][]byte
	)
	c := tx.Bucket(bucketEvents).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ik := key(nil, brandID, string(k[len(prefix):]), deviceID)
		id := get(w.cKeys, ik)
		if id == nil {
			continue
		}
		keys = append(keys, ik)
		if v := w.notifs.Get(joinKey(brandID, string(id))); v != nil {
			var n hotzone.Notification
			if err := decodeNotification(v, &n); err != nil {
				return nil, err
			}
			out = append(out, n)
		}
	}
	for _, k := range keys {
		if err := w.keys.Delete(k); err != nil {
			return nil, err
		}
	}
	deltas := map[string]hotzone.Counts{}
	for _, n := range out {
		if err := w.notifs.Delete(joinKey(brandID, n.ID)); err != nil {
			return nil, err
		}
		if err := w.outbox.Delete(outboxKey(w.kbuf, &n)); err != nil {
			return nil, err
		}
		d := deltas[n.EventID]
		d.Add(n.Status, -1)
		deltas[n.EventID] = d
	}
	return deltas, nil
}

// bucketNotifKeysV1 is the index as earlier versions kept it, keyed
// brand\0device\0event; migrateNotifKeys moves it to bucketNotifKeys.
var bucketNotifKeysV1 = []byte("notif_keys")

// migrateNotifKeys rewrites an index of an earlier version, if any, in
// the current order, in the opening transaction.
func migrateNotifKeys(tx *bbolt.Tx) error {
	old := tx.Bucket(bucketNotifKeysV1)
	if old == nil {
		return nil
	}
	idx, err := tx.CreateBucketIfNotExists(bucketNotifKeys)
	if err != nil {
		return err
	}
	if err := old.ForEach(func(k, v []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			return fmt.Errorf("store: index key %q", k)
		}
		return idx.Put(key(nil, string(parts[0]), string(parts[2]), string(parts[1])), bytes.Clone(v))
	}); err != nil {
		return err
	}
	return tx.DeleteBucket(bucketNotifKeysV1)
}

// syncPoints moves the pending qualifying positions into the brand's
// point index with one publish.
func (bs *brandState) syncPoints() {
	bs.pendingMu.Lock()
	defer bs.pendingMu.Unlock()
	if len(bs.pending) == 0 {
		return
	}
	ids := make([]string, 0, len(bs.pending))
	pts := make([]geo.Point, 0, len(bs.pending))
	ats := make([]int64, 0, len(bs.pending))
	for _, e := range bs.pending {
		e.pendingPoint = false
		e.mu.Lock()
		if !e.deleted && e.pos != nil && e.pos.Qualifying != nil {
			ids = append(ids, e.dev.ID)
			pts = append(pts, e.pos.Qualifying.Point())
			ats = append(ats, e.pos.Qualifying.TS.UnixNano())
		}
		e.mu.Unlock()
	}
	bs.pending = bs.pending[:0]
	// Applied under pendingMu so a concurrent sync cannot publish an
	// older batch over a newer one.
	bs.points.SetManyAt(ids, pts, ats)
}

// DevicesIn implements hotzone.Devices through the brand's point index.
func (db *DB) DevicesIn(_ context.Context, brandID string, f *geo.Fence, since time.Time) ([]string, error) {
	bs := db.brand(brandID)
	if bs == nil {
		return nil, notFound("brand")
	}
	if f == nil {
		return nil, nil
	}
	bs.syncPoints()
	var ids []string
	// The index holds each device's last qualifying position with its
	// time, so the walk reads only the tree: an erased device left in
	// it for a moment is skipped by Consider.
	bs.points.WithinSince(f, since.UnixNano(), func(id string) bool {
		ids = append(ids, id)
		return true
	})
	return ids, nil
}
