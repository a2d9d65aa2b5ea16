package ledger

import (
	"bytes"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// ErrNotTheDevices: the notification does not exist, or is not the
// device's.
var ErrNotTheDevices = errors.New("no such notification of the device")

// Open marks the notification opened at at unless it was, answering it
// and whether this was the first report.
func Open(tx *bbolt.Tx, brandID, notificationID, deviceID string, at time.Time) (hotzone.Notification, bool, error) {
	w := NewWriter(tx)
	var n hotzone.Notification
	v := w.notifs.Get(key(w.kbuf, brandID, notificationID))
	if v == nil {
		return n, false, ErrNotTheDevices
	}
	if err := decodeNotification(v, &n); err != nil {
		return n, false, err
	}
	if n.DeviceID != deviceID {
		return hotzone.Notification{}, false, ErrNotTheDevices
	}
	if n.OpenedAt != nil {
		return n, false, nil
	}
	at = at.UTC()
	n.OpenedAt = &at
	return n, true, w.put(&n)
}

// Attribute applies one visit mark to the device's entry for the event,
// answering the entry as marked and true, or false when the mark does
// not apply (no entry, or it does not attribute).
func Attribute(tx *bbolt.Tx, brandID string, m hotzone.VisitMark) (hotzone.Notification, bool, error) {
	w := NewWriter(tx)
	var n hotzone.Notification
	id := get(w.cKeys, key(w.kbuf, brandID, m.EventID, m.DeviceID))
	if id == nil {
		return n, false, nil
	}
	v := w.notifs.Get(key(w.kbuf2, brandID, string(id)))
	if v == nil {
		return n, false, nil
	}
	if err := decodeNotification(v, &n); err != nil {
		return n, false, err
	}
	if !m.Attributes(&n) {
		return n, false, nil
	}
	m.Apply(&n)
	return n, true, w.put(&n)
}

// EventEntries calls fn with each log entry of an event, through the
// event's index (the brand's log need not be read).
func EventEntries(tx *bbolt.Tx, brandID, eventID string, fn func(*hotzone.Notification) error) error {
	prefix := key(nil, brandID, eventID, "")
	notifs := tx.Bucket(bucketNotifs)
	c := tx.Bucket(bucketNotifKeys).Cursor()
	var (
		n    hotzone.Notification
		kbuf []byte
	)
	for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
		v := notifs.Get(key(kbuf, brandID, string(id)))
		if v == nil {
			continue
		}
		if err := decodeNotification(v, &n); err != nil {
			return err
		}
		if err := fn(&n); err != nil {
			return err
		}
	}
	return nil
}
