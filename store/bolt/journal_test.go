package bolt

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// crash closes db's files as a killed process would leave them: no
// flush, no checkpoint.
func crash(t *testing.T, db *DB) {
	t.Helper()
	closed.Store(db, true) // the test's cleanup must not close it again
	_ = db.plog.Close()
	_ = db.journal.close()
	if err := db.bolt.Close(); err != nil {
		t.Fatal(err)
	}
}

func putAndroid(t *testing.T, db *DB, brandID, id, token string) hotzone.Device {
	t.Helper()
	d, _, err := db.PutDevice(context.Background(), hotzone.Device{ID: id, BrandID: brandID, Platform: "android", OptIn: true, Timezone: "UTC", Provider: "fcm", Token: token})
	if err != nil {
		t.Fatalf("PutDevice %s: %v", id, err)
	}
	return d
}

func wantToken(t *testing.T, db *DB, brandID, id, token string) {
	t.Helper()
	d, _, err := db.Device(context.Background(), brandID, id)
	if err != nil || d.Token != token {
		t.Fatalf("device %s = %+v, %v; want token %q", id, d, err, token)
	}
}

// TestJournalReplay: registrations answered but never checkpointed are
// there after a crash, with their tokens where the last one put them;
// a checkpoint empties the journal's overlay.
func TestJournalReplay(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	db, dir := openTest(t, func() time.Time { return now })
	brandID := brandWithStore(t, db)
	for i := range 50 {
		putAndroid(t, db, brandID, fmt.Sprintf("d%d", i), fmt.Sprintf("tok%d", i))
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := db.journal.n.Load(); n != 0 {
		t.Fatalf("%d entries in the overlay after a checkpoint", n)
	}
	// After the checkpoint: new devices, a token moved from a device in
	// bbolt to a new one, a device re-registered without a token.
	for i := 50; i < 80; i++ {
		putAndroid(t, db, brandID, fmt.Sprintf("d%d", i), fmt.Sprintf("tok%d", i))
	}
	putAndroid(t, db, brandID, "thief", "tok3")
	putAndroid(t, db, brandID, "d7", "")
	if db.journal.n.Load() == 0 {
		t.Fatal("the test proves nothing: the overlay is empty before the crash")
	}
	wantToken(t, db, brandID, "d3", "")
	wantToken(t, db, brandID, "thief", "tok3")
	crash(t, db)

	db2, err := Open(dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db2)
	for i := range 80 {
		want := fmt.Sprintf("tok%d", i)
		if i == 3 || i == 7 {
			want = ""
		}
		wantToken(t, db2, brandID, fmt.Sprintf("d%d", i), want)
	}
	wantToken(t, db2, brandID, "thief", "tok3")
	if _, ok := db2.devs.Has(brandID, "d79"); !ok {
		t.Error("a replayed device is not in the device table")
	}
	// tok3 is thief's: registering it elsewhere takes it from thief.
	putAndroid(t, db2, brandID, "d3", "tok3")
	wantToken(t, db2, brandID, "thief", "")
}

// TestJournalEraseNotUndone: a device registered (journal only) and then
// erased stays erased after a crash; replay never brings it back.
func TestJournalEraseNotUndone(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	db, dir := openTest(t, func() time.Time { return now })
	ctx := context.Background()
	brandID := brandWithStore(t, db)
	putAndroid(t, db, brandID, "gone", "tok-gone")
	putAndroid(t, db, brandID, "kept", "tok-kept")
	if err := db.DeleteDevice(ctx, brandID, "gone"); err != nil {
		t.Fatal(err)
	}
	putAndroid(t, db, brandID, "late", "tok-late") // journal only again
	crash(t, db)

	db2, err := Open(dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db2)
	if _, _, err := db2.Device(ctx, brandID, "gone"); err == nil {
		t.Error("an erased device came back after a crash")
	}
	wantToken(t, db2, brandID, "kept", "tok-kept")
	wantToken(t, db2, brandID, "late", "tok-late")
	// Its token is free: a new device takes it without taking it from anyone.
	putAndroid(t, db2, brandID, "new", "tok-gone")
	wantToken(t, db2, brandID, "kept", "tok-kept")
}

// FuzzDecodeChanges: a journal record's decoder refuses what it cannot
// read, never panics, and what it reads, encoded again, reads the same.
func FuzzDecodeChanges(f *testing.F) {
	f.Add(encodeChanges(nil, []change{{"d" + "b\x00dev", []byte("rec")}, {"t" + "b\x00fcm\x00tok", nil}}))
	f.Add([]byte{})
	f.Add([]byte{'d', 1, 0x80})
	decode := func(p []byte) ([]change, error) {
		var got []change
		err := decodeChanges(p, func(class, op byte, key, val []byte) error {
			c := change{key: string(class) + string(key)}
			if op == changePut {
				c.val = append([]byte{}, val...)
			}
			got = append(got, c)
			return nil
		})
		return got, err
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := decode(p)
		if err != nil {
			return
		}
		again, err := decode(encodeChanges(nil, got))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("decoded %q as %q, and its encoding as %q (%v)", p, got, again, err)
		}
	})
}

// TestJournalFailedCheckpoint: a checkpoint that cannot commit keeps
// what it froze; registrations go on; a crash then replays both files;
// the next checkpoint applies it all.
func TestJournalFailedCheckpoint(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	db, dir := openTest(t, func() time.Time { return now })
	brandID := brandWithStore(t, db)
	for i := range 20 {
		putAndroid(t, db, brandID, fmt.Sprintf("a%d", i), fmt.Sprintf("ta%d", i))
	}
	failApply = func() error { return errors.New("disk says no") }
	err := db.Checkpoint()
	failApply = nil
	if err == nil {
		t.Fatal("the checkpoint did not fail")
	}
	// Registrations go on, in the other file; one moves a token frozen
	// in the first.
	for i := range 20 {
		putAndroid(t, db, brandID, fmt.Sprintf("b%d", i), fmt.Sprintf("tb%d", i))
	}
	putAndroid(t, db, brandID, "thief", "ta5")
	wantToken(t, db, brandID, "a5", "")
	wantToken(t, db, brandID, "a6", "ta6")
	crash(t, db)

	db2, err := Open(dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		want := fmt.Sprintf("ta%d", i)
		if i == 5 {
			want = ""
		}
		wantToken(t, db2, brandID, fmt.Sprintf("a%d", i), want)
		wantToken(t, db2, brandID, fmt.Sprintf("b%d", i), fmt.Sprintf("tb%d", i))
	}
	wantToken(t, db2, brandID, "thief", "ta5")

	// Again without the crash: the failed checkpoint's entries stay
	// readable, and the next checkpoint applies everything.
	for i := range 10 {
		putAndroid(t, db2, brandID, fmt.Sprintf("c%d", i), fmt.Sprintf("tc%d", i))
	}
	failApply = func() error { return errors.New("disk says no") }
	err = db2.Checkpoint()
	failApply = nil
	if err == nil {
		t.Fatal("the checkpoint did not fail")
	}
	wantToken(t, db2, brandID, "c3", "tc3")
	if err := db2.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := db2.journal.n.Load(); n != 0 {
		t.Fatalf("%d entries left in the overlay", n)
	}
	closeChecked(t, db2)
	db3, err := Open(dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db3)
	wantToken(t, db3, brandID, "c3", "tc3")
	wantToken(t, db3, brandID, "thief", "ta5")
}

// TestJournalConcurrent: registrations that move tokens among devices
// run against checkpoints in a loop; every answered registration is
// readable at once, and at the end each token is held by exactly the
// device the tokens index names, in memory and after a reopen.
func TestJournalConcurrent(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	db, dir := openTest(t, func() time.Time { return now })
	ctx := context.Background()
	brandID := brandWithStore(t, db)
	stop := make(chan struct{})
	checkpoints := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				checkpoints <- n
				return
			default:
			}
			if err := db.Checkpoint(); err != nil {
				t.Error(err)
			}
			n++
		}
	}()
	const writers, each = 8, 300
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i%40)
				tok := fmt.Sprintf("tok%d", (w*7+i*13)%60)
				d, _, err := db.PutDevice(ctx, hotzone.Device{ID: id, BrandID: brandID, Platform: "android", OptIn: true, Timezone: "UTC", Provider: "fcm", Token: tok})
				if err != nil {
					errs <- err
					return
				}
				if got, _, err := db.Device(ctx, brandID, id); err != nil || got.UpdatedAt != d.UpdatedAt {
					errs <- fmt.Errorf("%s right after its registration: %+v, %v", id, got, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if n := <-checkpoints; n < 2 {
		t.Logf("only %d checkpoints ran during the registrations", n)
	}
	check := func(db *DB) {
		t.Helper()
		holders := map[string]string{}
		for w := range writers {
			for i := range 40 {
				id := fmt.Sprintf("w%d-%d", w, i)
				d, _, err := db.Device(ctx, brandID, id)
				if err != nil {
					t.Fatal(err)
				}
				if d.Token == "" {
					continue
				}
				if other, ok := holders[d.Token]; ok {
					t.Fatalf("%s is held by %s and %s", d.Token, other, id)
				}
				holders[d.Token] = id
			}
		}
		err := db.bolt.View(func(tx *bbolt.Tx) error {
			for tok, id := range holders {
				k := joinKey(brandID, "fcm", tok)
				v, ok := db.journal.lookup(classToken, k)
				if !ok {
					v = tx.Bucket(bucketTokens).Get(k)
				}
				if string(v) != id {
					return fmt.Errorf("the index gives %s to %q, the devices to %s", tok, v, id)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(db)
	closeChecked(t, db)
	db2, err := Open(dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db2)
	check(db2)
}
