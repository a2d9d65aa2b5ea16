package bolt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/storetest"
)

// TestOpenReadsNoHistory: start-up does not grow with history. A
// database holding 1,000,000 log entries of an old event opens, and it
// reads none of them: each is written damaged, so reading one would
// fail the open. Pruning then deletes them all, in many transactions.
// (It logs how long each open took, beside an empty database's; it
// asserts no timing.)
func TestOpenReadsNoHistory(t *testing.T) {
	const entries = 1_000_000
	clock := storetest.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	timedOpen := func(dir string) (*DB, time.Duration) {
		t.Helper()
		start := time.Now()
		db, err := Open(dir, Options{Now: clock.Now})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db, time.Since(start)
	}
	seed := func(dir string) (string, hotzone.Event) {
		db, _ := timedOpen(dir)
		brandID := brandWithStore(t, db)
		if _, err := db.UpdatePolicy(bg, brandID, func(p *hotzone.Policy) error { p.RetentionDays = 1; return nil }); err != nil {
			t.Fatal(err)
		}
		now := clock.Now()
		ev, _, _, err := db.StartEvent(bg, hotzone.Event{ID: hotzone.NewID(now), BrandID: brandID, StoreID: "s", Title: "Hot", Body: "Now",
			StartsAt: now, EndsAt: now.Add(time.Hour)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if ev, _, err = db.EndEvent(bg, brandID, ev.ID, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return brandID, ev
	}
	empty, full := t.TempDir(), t.TempDir()
	seed(empty)
	brandID, ev := seed(full)

	raw, err := bbolt.Open(filepath.Join(full, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw.NoSync = true // a seed, not a test of durability
	for from := 0; from < entries; from += 250_000 {
		if err := raw.Update(func(tx *bbolt.Tx) error {
			notifs, index := tx.Bucket([]byte("notifs")), tx.Bucket([]byte("notif_by_event"))
			notifs.FillPercent, index.FillPercent = 1, 1
			for i := from; i < from+250_000; i++ {
				id := fmt.Sprintf("%026d", i)
				if err := notifs.Put([]byte(brandID+"\x00"+id), []byte("\x00damaged")); err != nil {
					return err
				}
				if err := index.Put([]byte(brandID+"\x00"+ev.ID+"\x00dev-"+id), []byte(id)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 3 {
		e, tookEmpty := timedOpen(empty)
		f, tookFull := timedOpen(full)
		t.Logf("open %d: empty %v, %d old entries %v (%.2f×)", round, tookEmpty, entries, tookFull, float64(tookFull)/float64(tookEmpty))
		if round < 2 {
			_ = e.Close()
			_ = f.Close()
			continue
		}
		_ = e.Close()
		if _, _, err := f.Event(bg, brandID, ev.ID); err != nil {
			t.Fatalf("the old event after open: %v", err)
		}
		// Two days on, a 1-day retention prunes the event and its million
		// entries, a batch per transaction.
		defer func(n int) { pruneBatch = n }(pruneBatch)
		pruneBatch = 50_000
		clock.Advance(48 * time.Hour)
		start := time.Now()
		if err := f.Prune(bg); err != nil {
			t.Fatal(err)
		}
		t.Logf("pruned %d entries in %v, %d transactions", entries, time.Since(start), entries/pruneBatch+1)
		if _, _, err := f.Event(bg, brandID, ev.ID); err == nil {
			t.Error("the old event is still there after pruning")
		}
		left := 0
		if err := f.bolt.View(func(tx *bbolt.Tx) error {
			left = tx.Bucket([]byte("notifs")).Stats().KeyN + tx.Bucket([]byte("notif_by_event")).Stats().KeyN
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Errorf("%d log and index entries left after pruning", left)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
