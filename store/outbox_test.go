package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// queueTest queues one notification for each of n devices of a new
// brand's live event and returns the brand's lane.
func queueTest(t *testing.T, db *DB, n int) hotzone.Lane {
	t.Helper()
	ctx := context.Background()
	brandID := brandWithStore(t, db)
	ids := make([]string, n)
	ds := make([]hotzone.Device, n)
	for i := range ds {
		ids[i] = fmt.Sprintf("d%03d", i)
		ds[i] = hotzone.Device{ID: ids[i], Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: fmt.Sprintf("%064x", i)}
	}
	if err := db.PutDevices(ctx, brandID, ds); err != nil {
		t.Fatal(err)
	}
	now := db.now()
	ev := hotzone.Event{ID: hotzone.NewID(now), BrandID: brandID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: now, EndsAt: now.Add(time.Hour), Status: hotzone.EventLive}
	if _, _, _, err := db.StartEvent(ctx, ev, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Consider(ctx, ev, ids, func(hotzone.Device, []time.Time) string { return "" }); err != nil {
		t.Fatal(err)
	}
	return hotzone.Lane{BrandID: brandID, Provider: hotzone.ProviderAPNs}
}

// TestDueReadsOnAfter: a dispatcher reads the lane in id order, batch
// after batch, without the ones it already holds, and skips what is not
// due yet.
func TestDueReadsOnAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	db, _ := openTest(t, func() time.Time { return now })
	lane := queueTest(t, db, 5)

	all, err := db.Due(lane, now, "", 10)
	if err != nil || len(all) != 5 {
		t.Fatalf("Due = %d, %v; want 5", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID {
			t.Fatalf("not in id order: %s then %s", all[i-1].ID, all[i].ID)
		}
	}
	first, _ := db.Due(lane, now, "", 2)
	if len(first) != 2 || first[1].ID != all[1].ID {
		t.Fatalf("first batch %v", first)
	}
	rest, _ := db.Due(lane, now, first[1].ID, 10)
	if len(rest) != 3 || rest[0].ID != all[2].ID {
		t.Fatalf("after %s: got %d starting %v", first[1].ID, len(rest), rest)
	}
	// The third is retried later: not due now, due then.
	if err := db.Complete([]hotzone.Delivery{{NotificationID: all[2].ID, BrandID: lane.BrandID, Provider: lane.Provider, Status: hotzone.StatusQueued, NextAttempt: now.Add(time.Minute), At: now}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Due(lane, now, first[1].ID, 10); len(got) != 2 || got[0].ID != all[3].ID {
		t.Fatalf("a retry not yet due was read: %v", got)
	}
	if got, _ := db.Due(lane, now.Add(time.Minute), first[1].ID, 10); len(got) != 3 {
		t.Fatalf("the retry once due: %d, want 3", len(got))
	}
	if got, _ := db.Due(lane, now, all[4].ID, 10); len(got) != 0 {
		t.Fatalf("after the last: %v", got)
	}
	// An id that is not in the outbox any more still marks the place.
	if err := db.Complete([]hotzone.Delivery{{NotificationID: all[1].ID, BrandID: lane.BrandID, Provider: lane.Provider, Status: hotzone.StatusSent, At: now}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Due(lane, now, all[1].ID, 10); len(got) != 2 || got[0].ID != all[3].ID {
		t.Fatalf("after a sent one: %v", got)
	}
}
