package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
	"github.com/hotzone/hotzone/store/poslog"
)

// bg is the context of the tests' calls.
var bg = context.Background()

// openTest opens a database in a temp dir; when the test ends it closes
// it and checks the file's consistency, as bbolt's own tests do.
func openTest(tb testing.TB, now func() time.Time) (*DB, string) {
	tb.Helper()
	dir := tb.TempDir()
	db, err := Open(dir, Options{Now: now})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { closeChecked(tb, db) })
	return db, dir
}

// brandWithStore creates a brand with one store, "s", a 100 m circle at
// 1°N 2°E, and returns the brand's id.
func brandWithStore(t *testing.T, db *DB) string {
	t.Helper()
	ctx := context.Background()
	br, _, _, err := db.CreateBrand(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	st := hotzone.Store{ID: "s", BrandID: br.ID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 1, Lon: 2, RadiusM: 100}}}
	st.Fence, _ = st.Spec.Build()
	if _, _, err := db.PutStore(ctx, st); err != nil {
		t.Fatal(err)
	}
	return br.ID
}

// closed remembers the databases a test already closed.
var closed sync.Map

func closeChecked(tb testing.TB, db *DB) {
	tb.Helper()
	if _, done := closed.LoadOrStore(db, true); done {
		return
	}
	if err := db.FlushPositions(); err != nil {
		tb.Errorf("flush: %v", err)
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		tb.Errorf("consistency check: %v", err)
	}
	if err := db.Close(); err != nil {
		tb.Errorf("Close: %v", err)
	}
}

func TestOperatorKey(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := db.EnsureOperatorKey(bg, "")
	if err != nil || !strings.HasPrefix(gen, hotzone.KindOperator.Prefix()) {
		t.Fatalf("EnsureOperatorKey(\"\") = %q, %v; want a fresh hzo_ key", gen, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again, err := db.EnsureOperatorKey(bg, "")
	if err != nil || again != "" {
		t.Fatalf("second start printed a key again: %q, %v", again, err)
	}
	if k, err := db.Authenticate(bg, gen); err != nil || k.Kind != hotzone.KindOperator {
		t.Errorf("Authenticate(generated) = %v, %v after restart", k, err)
	}
	// A key from the environment replaces the stored one.
	if _, err := db.EnsureOperatorKey(bg, "hzo_from-env"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(bg, gen); err == nil {
		t.Error("the old operator key still works after HOTZONE_OPERATOR_KEY replaced it")
	}
	if _, err := db.Authenticate(bg, "hzo_from-env"); err != nil {
		t.Error("the environment's operator key does not work")
	}
}

func TestWriteBehindLosesNothingOnClose(t *testing.T) {
	db, dir := openTest(t, nil)
	br, _, _, err := db.CreateBrand(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PutDevice(context.Background(), hotzone.Device{ID: "d", BrandID: br.ID, Platform: "ios", OptIn: true, Timezone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := db.RecordPosition(bg, br.ID, "d", hotzone.Position{Lat: 1, Lon: 2, AccuracyM: 5, TS: ts}, true); err != nil {
		t.Fatal(err)
	}
	// An older report never overwrites a newer one.
	if err := db.RecordPosition(bg, br.ID, "d", hotzone.Position{Lat: 9, Lon: 9, AccuracyM: 5, TS: ts.Add(-time.Minute)}, true); err != nil {
		t.Fatal(err)
	}
	closeChecked(t, db)
	db2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db2)
	_, pos, err := db2.Device(bg, br.ID, "d")
	if err != nil || pos == nil || pos.Last.Lat != 1 || pos.Qualifying == nil || !pos.Qualifying.TS.Equal(ts) {
		t.Fatalf("position after reopen = %+v, %v", pos, err)
	}
	// The point index is rebuilt from the stored qualifying positions.
	f := &geo.Fence{Circle: &geo.Circle{Center: geo.Point{Lat: 1, Lon: 2}, RadiusM: 100}}
	if ids, err := db2.DevicesIn(bg, br.ID, f, ts.Add(-time.Second)); err != nil || len(ids) != 1 || ids[0] != "d" {
		t.Errorf("DevicesIn after reopen = %v, want [d]", ids)
	}
}

func TestEraseDeviceLeavesNothing(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	clock := now
	db, dir := openTest(t, func() time.Time { return clock })
	ctx := context.Background()
	brandID := brandWithStore(t, db)
	d := hotzone.Device{ID: "d", BrandID: brandID, Platform: "android", OptIn: true, Timezone: "UTC", Provider: "fcm", Token: "tok"}
	if _, _, err := db.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	// A position written behind, whose bytes must leave the disk too.
	const lat = 1.000123456789
	if err := db.RecordPosition(ctx, brandID, "d", hotzone.Position{Lat: lat, Lon: 2, AccuracyM: 5, TS: now}, true); err != nil {
		t.Fatal(err)
	}
	if err := db.FlushPositions(); err != nil {
		t.Fatal(err)
	}
	ev := hotzone.Event{ID: hotzone.NewID(now), BrandID: brandID, StoreID: "s", Title: "t", Body: "b", StartsAt: now, EndsAt: now.Add(time.Hour), Status: hotzone.EventLive}
	if _, _, _, err := db.StartEvent(ctx, ev, ""); err != nil {
		t.Fatal(err)
	}
	out, err := db.Consider(ctx, ev, []string{"d"}, func(hotzone.Device, []time.Time) string { return "" })
	if err != nil || out[0].Status != hotzone.StatusQueued {
		t.Fatalf("Consider = %+v, %v", out, err)
	}
	if err := db.DeleteDevice(ctx, brandID, "d"); err != nil {
		t.Fatal(err)
	}
	err = db.bolt.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketDevices, bucketTokens, []byte("notifs"), []byte("notif_by_event"), []byte("outbox"), []byte("history")} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				return fmt.Errorf("bucket %s still has %d keys after erasure", b, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if _, c, _ := db.LiveEvent(bg, brandID, "s"); c != (hotzone.Counts{}) {
		t.Errorf("counts after erasure = %+v, want zero", c)
	}
	// The positions written behind keep the erased device's bytes until
	// the compaction an erasure brings within eraseCompaction.
	needle := binary.LittleEndian.AppendUint64(nil, math.Float64bits(lat))
	onDisk := func() bool {
		t.Helper()
		for _, name := range []string{poslog.LogFile, poslog.SnapshotFile} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if bytes.Contains(b, needle) {
				return true
			}
		}
		return false
	}
	if !onDisk() {
		t.Fatal("the test proves nothing: the position was never on disk")
	}
	clock = now.Add(eraseCompaction)
	if err := db.FlushPositions(); err != nil {
		t.Fatal(err)
	}
	if onDisk() {
		t.Errorf("an erased device's position is still on disk %s after its erasure", eraseCompaction)
	}
}

// TestFlushInBlocks: a flush larger than one block goes as several, and
// a reopen finds every position of it.
func TestFlushInBlocks(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	db, dir := openTest(t, func() time.Time { return now })
	ctx := context.Background()
	brandID := brandWithStore(t, db)
	db.bolt.NoSync = true // setup only
	const n = 15000
	id := func(i int) string { return fmt.Sprintf("%0120d", i) } // long ids: fewer devices fill a block
	for i := range n {
		d := hotzone.Device{ID: id(i), BrandID: brandID, Platform: "android", OptIn: true, Timezone: "UTC", Provider: "fcm", Token: "tok-" + id(i)}
		if _, _, err := db.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordPosition(ctx, brandID, id(i), hotzone.Position{Lat: float64(i) / n, Lon: 2, AccuracyM: 5, TS: now}, true); err != nil {
			t.Fatal(err)
		}
	}
	db.bolt.NoSync = false
	if err := db.FlushPositions(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, poslog.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	if blocks := bytes.Count(raw, []byte("HZP1")); blocks < 2 || len(raw) < flushBlockBytes {
		t.Fatalf("%d bytes in %d blocks: the test needs a flush of more than one", len(raw), blocks)
	}
	closeChecked(t, db)
	db2, err := Open(dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer closeChecked(t, db2)
	for i := range n {
		pos, ok := db2.devs.Position(brandID, id(i))
		if !ok || pos == nil || pos.Qualifying == nil || pos.Qualifying.Lat != float64(i)/n {
			t.Fatalf("device %d after a reopen: %+v, %v", i, pos, ok)
		}
	}
}

// TestWebhookSecretSealed: a webhook's secret is encrypted at rest, like
// push credentials: the file never holds it in the clear, and it opens
// again with the key.
func TestWebhookSecretSealed(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	db, err := Open(dir, Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	br, _, _, err := db.CreateBrand(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "whsec_find-me-if-you-can-0123456789"
	if err := db.CreateWebhook(t.Context(), hotzone.Webhook{ID: "w", BrandID: br.ID, URL: "https://example.com/h",
		Events: []hotzone.HookType{hotzone.HookEntered}, Secret: secret, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("example.com/h")) {
		t.Error("the data file holds the webhook's secret or URL in the clear")
	}
	db, err = Open(dir, Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if w, err := db.Webhook(t.Context(), br.ID, "w"); err != nil || w.Secret != secret {
		t.Errorf("after a reopen: %+v, %v; want the secret back", w, err)
	}
}
