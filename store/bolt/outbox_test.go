package bolt

import (
	"context"
	"fmt"
	"slices"
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

// TestClaimReadsOn: a dispatcher claims the lane in id order, batch
// after batch, without the ones it already holds, and skips what is not
// due yet; what a lease no longer covers is handed out again.
func TestClaimReadsOn(t *testing.T) {
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	db, _ := openTest(t, func() time.Time { return now })
	lane := queueTest(t, db, 5)
	const lease = time.Minute

	first, err := db.Claim(bg, lane, now, 2, lease)
	if err != nil || len(first) != 2 {
		t.Fatalf("Claim = %d, %v; want 2", len(first), err)
	}
	rest, _ := db.Claim(bg, lane, now, 10, lease)
	if len(rest) != 3 || rest[0].ID <= first[1].ID {
		t.Fatalf("second claim: %d starting %v; want the 3 after %s", len(rest), rest, first[1].ID)
	}
	all := append(first, rest...)
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID {
			t.Fatalf("not in id order: %s then %s", all[i-1].ID, all[i].ID)
		}
	}
	if got, _ := db.Claim(bg, lane, now, 10, lease); len(got) != 0 {
		t.Fatalf("everything is claimed, yet Claim handed out %d", len(got))
	}
	// The third is retried later: not due now, due then.
	retry := hotzone.Delivery{NotificationID: all[2].ID, Claim: all[2].Claim, BrandID: lane.BrandID, Provider: lane.Provider, Status: hotzone.StatusQueued, NextAttempt: now.Add(2 * lease), At: now}
	sent := hotzone.Delivery{NotificationID: all[1].ID, Claim: all[1].Claim, BrandID: lane.BrandID, Provider: lane.Provider, Status: hotzone.StatusSent, At: now}
	if err := db.Record(bg, []hotzone.Delivery{retry, sent}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(lease)
	got, _ := db.Claim(bg, lane, later, 10, 2*lease)
	if ids := claimIDs(got); !slices.Equal(ids, []string{all[0].ID, all[3].ID, all[4].ID}) {
		t.Fatalf("after the leases passed: %v; want the 3 neither sent nor waiting for a retry", ids)
	}
	if got, _ := db.Claim(bg, lane, now.Add(2*lease), 10, lease); len(got) != 1 || got[0].ID != all[2].ID {
		t.Fatalf("the retry once due: %v", claimIDs(got))
	}
	// The first claim of all[0] passed and was taken over: its result is
	// not recorded; the new holder's is.
	stale := hotzone.Delivery{NotificationID: all[0].ID, Claim: all[0].Claim, BrandID: lane.BrandID, Provider: lane.Provider, Status: hotzone.StatusFailed, At: later}
	if err := db.Record(bg, []hotzone.Delivery{stale}); err != nil {
		t.Fatal(err)
	}
	ns, _, _ := db.Notifications(bg, lane.BrandID, hotzone.NotificationQuery{Limit: 10})
	for _, n := range ns {
		if n.ID == all[0].ID && n.Status != hotzone.StatusQueued {
			t.Fatalf("a result under a lapsed and taken-over claim was recorded: %s", n.Status)
		}
	}
}

func claimIDs(ns []hotzone.Notification) []string {
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return ids
}
