package bolt

import (
	"bytes"
	"context"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// indexTest is a brand with one store and devices a and b, each queued
// a notification in an event that has ended and in a live one.
func indexTest(t *testing.T, db *DB, now time.Time) (brandID string, ended, live hotzone.Event) {
	t.Helper()
	ctx := context.Background()
	brandID = brandWithStore(t, db)
	for _, id := range []string{"a", "b"} {
		d := hotzone.Device{ID: id, BrandID: brandID, Platform: "android", OptIn: true, Timezone: "UTC", Provider: "fcm", Token: "tok-" + id}
		if _, _, err := db.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	queue := func(hotzone.Device, []time.Time) string { return "" }
	for i, ev := range []*hotzone.Event{&ended, &live} {
		*ev = hotzone.Event{ID: hotzone.NewID(now.Add(time.Duration(i) * time.Minute)), BrandID: brandID, StoreID: "s", Title: "t", Body: "b", StartsAt: now, EndsAt: now.Add(time.Hour), Status: hotzone.EventLive}
		if _, _, _, err := db.StartEvent(ctx, *ev, ""); err != nil {
			t.Fatal(err)
		}
		if out, err := db.Consider(ctx, *ev, []string{"a", "b"}, queue); err != nil || out[0].Status != hotzone.StatusQueued || out[1].Status != hotzone.StatusQueued {
			t.Fatalf("Consider = %+v, %v", out, err)
		}
		if i == 0 {
			if _, _, err := db.EndEvent(ctx, brandID, ev.ID, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	return brandID, ended, live
}

// TestEraseFindsEveryEvent: erasing a device removes its entries of
// every event, live or ended, and nothing of the other device.
func TestEraseFindsEveryEvent(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	db, _ := openTest(t, func() time.Time { return now })
	brandID, _, live := indexTest(t, db, now)
	if err := db.DeleteDevice(context.Background(), brandID, "a"); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"a", "b"} {
		ns, _, err := db.Notifications(bg, brandID, hotzone.NotificationQuery{DeviceID: dev, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"a": 0, "b": 2}[dev]; len(ns) != want {
			t.Errorf("device %s: %d log entries after erasing a, want %d", dev, len(ns), want)
		}
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("notif_by_event")).ForEach(func(k, _ []byte) error {
			if bytes.HasSuffix(k, []byte("\x00a")) {
				t.Errorf("index entry %q left after erasure", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	// b still counts as notified in the live event.
	out, err := db.Consider(context.Background(), live, []string{"b"}, func(hotzone.Device, []time.Time) string { return "" })
	if err != nil || out[0].Reason != hotzone.ReasonAlreadyNotified {
		t.Errorf("b again = %+v, %v; want already notified", out, err)
	}
}

// TestIndexOfEarlierVersionMigrates: a data dir whose index is keyed
// device first (earlier versions) opens with the index moved to the
// event-first order, and "once per event" still holds.
func TestIndexOfEarlierVersionMigrates(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dir := t.TempDir()
	db, err := Open(dir, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	brandID, ended, live := indexTest(t, db, now)
	// Put the index back the way earlier versions kept it.
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		old, err := tx.CreateBucket([]byte("notif_keys"))
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte("notif_by_event")).ForEach(func(k, v []byte) error {
			p := bytes.SplitN(k, []byte{0}, 3)
			return old.Put(joinKey(string(p[0]), string(p[2]), string(p[1])), bytes.Clone(v))
		}); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte("notif_by_event"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db2, err := Open(dir, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeChecked(t, db2) })
	err = db2.bolt.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("notif_keys")) != nil {
			t.Error("the old index is still there")
		}
		n := 0
		err := tx.Bucket([]byte("notif_by_event")).ForEach(func(k, _ []byte) error {
			n++
			if !bytes.HasPrefix(k, []byte(brandID+"\x00"+ended.ID)) && !bytes.HasPrefix(k, []byte(brandID+"\x00"+live.ID)) {
				t.Errorf("index key %q is not event first", k)
			}
			return nil
		})
		if n != 4 {
			t.Errorf("%d index entries after migration, want 4", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := db2.Consider(context.Background(), live, []string{"a", "b"}, func(hotzone.Device, []time.Time) string { return "" })
	if err != nil || out[0].Reason != hotzone.ReasonAlreadyNotified || out[1].Reason != hotzone.ReasonAlreadyNotified {
		t.Errorf("after migration = %+v, %v; want both already notified", out, err)
	}
	if err := db2.DeleteDevice(context.Background(), brandID, "a"); err != nil {
		t.Fatal(err)
	}
	if ns, _, _ := db2.Notifications(bg, brandID, hotzone.NotificationQuery{DeviceID: "a", Limit: 10}); len(ns) != 0 {
		t.Errorf("%d entries of an erased device after migration", len(ns))
	}
}

// TestConsiderManyKnowsTheIndex: a fan-out's chunk sees what a ping
// queued before it and what it queued itself, repeated ids included.
func TestConsiderManyKnowsTheIndex(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	db, _ := openTest(t, func() time.Time { return now })
	lane := queueTest(t, db, 0)
	ctx := context.Background()
	var ds []hotzone.Device
	for _, id := range []string{"a", "b", "c"} {
		ds = append(ds, hotzone.Device{ID: id, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: "aa" + id})
	}
	if err := db.PutDevices(ctx, lane.BrandID, ds); err != nil {
		t.Fatal(err)
	}
	ev, _, err := db.LiveEvent(ctx, lane.BrandID, "s")
	if err != nil {
		t.Fatal(err)
	}
	queue := func(hotzone.Device, []time.Time) string { return "" }
	if out, err := db.Consider(ctx, ev, []string{"b"}, queue); err != nil || out[0].Status != hotzone.StatusQueued {
		t.Fatalf("ping = %+v, %v", out, err)
	}
	out, err := db.Consider(ctx, ev, []string{"c", "a", "b", "a"}, queue)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"queued", "queued", hotzone.ReasonAlreadyNotified, hotzone.ReasonAlreadyNotified}
	for i, o := range out {
		if got := string(o.Status) + o.Reason; got != want[i] {
			t.Errorf("device %s: %q, want %q", o.DeviceID, got, want[i])
		}
	}
	if _, c, _ := db.LiveEvent(ctx, lane.BrandID, "s"); c.Queued != 3 {
		t.Errorf("queued %d, want 3", c.Queued)
	}
}
