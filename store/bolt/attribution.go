package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/bolt/ledger"
)

// Open implements hotzone.Attribution: the entry and its event's count
// in one transaction, shared with concurrent requests' (db.group).
func (db *DB) Open(_ context.Context, brandID, notificationID, deviceID string, at time.Time) (bool, error) {
	if db.brandLock(brandID) == nil {
		return false, notFound("brand")
	}
	var (
		first   bool
		changes []countsChange
	)
	err := db.group(func(tx *bbolt.Tx) error {
		changes = nil
		n, ok, err := ledger.Open(tx, brandID, notificationID, deviceID, at)
		if err != nil || !ok {
			first = false
			return err
		}
		first = true
		changes, err = db.addCounts(tx, brandID, map[string]hotzone.Counts{n.EventID: {Opened: 1}})
		return err
	})
	if errors.Is(err, ledger.ErrNotTheDevices) {
		return false, notFound("notification")
	}
	if err != nil {
		return false, fmt.Errorf("store: open: %w", err)
	}
	db.publishCounts(changes)
	return first, nil
}

// Attribute implements hotzone.Attribution.
func (db *DB) Attribute(_ context.Context, brandID string, marks []hotzone.VisitMark) ([]hotzone.Notification, error) {
	if db.brandLock(brandID) == nil {
		return nil, notFound("brand")
	}
	var out []hotzone.Notification
	err := db.group(func(tx *bbolt.Tx) error {
		out = out[:0]
		for _, m := range marks {
			n, ok, err := ledger.Attribute(tx, brandID, m)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: attribute: %w", err)
	}
	return out, nil
}

// EventLog implements hotzone.Attribution, in one read transaction.
func (db *DB) EventLog(_ context.Context, brandID, eventID string, fn func(*hotzone.Notification) error) error {
	if db.brandLock(brandID) == nil {
		return notFound("brand")
	}
	return db.bolt.View(func(tx *bbolt.Tx) error {
		return ledger.EventEntries(tx, brandID, eventID, fn)
	})
}
