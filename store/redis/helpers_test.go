package redis

import (
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// brandStore creates a brand with one store, "s": a 200 m circle in
// Amsterdam, around (52.37, 4.89).
func brandStore(t testing.TB, db *DB, name string) (hotzone.Brand, hotzone.Store) {
	t.Helper()
	br, _, _, err := db.CreateBrand(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	st := hotzone.Store{ID: "s", BrandID: br.ID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 52.37, Lon: 4.89, RadiusM: 200}}}
	if st.Fence, err = st.Spec.Build(); err != nil {
		t.Fatal(err)
	}
	if st, _, err = db.PutStore(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	return br, st
}

// apnsDevice is an opted-in iOS device with an APNs token.
func apnsDevice(brandID, id string) hotzone.Device {
	return hotzone.Device{ID: id, BrandID: brandID, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: "tok-" + id}
}

// mustPutDevice registers d.
func mustPutDevice(t testing.TB, db *DB, d hotzone.Device) {
	t.Helper()
	if _, _, err := db.PutDevice(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// considerOne decides for one device and answers its outcome.
func considerOne(t testing.TB, db *DB, ev hotzone.Event, deviceID string, fn hotzone.DecideFunc) hotzone.Outcome {
	t.Helper()
	out, err := db.Consider(t.Context(), ev, []string{deviceID}, fn)
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// mustStartEvent starts an hour-long event at store "s" at now.
func mustStartEvent(t testing.TB, db *DB, brandID string, now time.Time) hotzone.Event {
	t.Helper()
	ev := hotzone.Event{ID: hotzone.NewID(now), BrandID: brandID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: now, EndsAt: now.Add(time.Hour)}
	if _, _, _, err := db.StartEvent(t.Context(), ev, ""); err != nil {
		t.Fatal(err)
	}
	return ev
}

// quietCount answers db's round trips so far once none has been made
// for 100 ms (at most 5 s on): a node reloads a brand when it hears of
// a change, its own included, so a count taken right after a write
// could take in that reload, made in the background.
func quietCount(t testing.TB, db *DB) uint64 {
	t.Helper()
	n := db.Metrics().Snapshot().Count
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := db.Metrics().Snapshot().Count
		if m == n {
			return n
		}
		n = m
	}
	t.Fatalf("db still making round trips after 5 s (%d so far)", n)
	return 0
}
