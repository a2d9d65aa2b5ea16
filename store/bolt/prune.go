package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone/store/bolt/ledger"
)

// pruneBatch is how many log entries one pruning transaction deletes at
// most: a few milliseconds of bbolt's one writer, so a decision waiting
// behind it is not held up noticeably. A variable so a test can take
// many steps with few entries.
var pruneBatch = 1000

// Prune implements hotzone.Storage: per brand, its ended events older
// than its retention with their entries, a batch of entries per
// transaction; its dead idempotency keys; and its old positions, which a
// compaction of the positions log then takes off the disk.
func (db *DB) Prune(ctx context.Context) error {
	now := db.now()
	for _, brandID := range db.brands.IDs() {
		p, ok := db.brands.Policy(brandID)
		if !ok {
			continue
		}
		cutoff := now.Add(-p.Retention())
		var old []string
		if err := db.bolt.View(func(tx *bbolt.Tx) error {
			var err error
			old, err = ledger.OldEvents(tx, brandID, cutoff)
			return err
		}); err != nil {
			return fmt.Errorf("store: prune: %w", err)
		}
		for _, eventID := range old {
			for gone := false; !gone; {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := db.bolt.Update(func(tx *bbolt.Tx) error {
					var err error
					_, gone, err = ledger.PruneEvent(tx, brandID, eventID, pruneBatch)
					return err
				}); err != nil {
					return fmt.Errorf("store: prune event %s: %w", eventID, err)
				}
			}
		}
		if err := db.bolt.Update(func(tx *bbolt.Tx) error { return ledger.PruneIdempotency(tx, brandID, now) }); err != nil {
			return fmt.Errorf("store: prune idempotency keys: %w", err)
		}
		if db.devs.ForgetBefore(brandID, cutoff) > 0 {
			// The positions log still holds them: rewrite it from memory
			// now, or a restart would read them back.
			db.flushMu.Lock()
			err := db.compactPositionsLocked()
			db.flushMu.Unlock()
			if err != nil {
				return err
			}
		}
	}
	return nil
}
