package push_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/store/bolt"
)

// countingStore is a bolt database that counts the Consider calls in
// flight at once.
type countingStore struct {
	*bolt.DB
	mu       sync.Mutex
	in, most int
	second   chan struct{} // closed when two calls are in flight
}

// sharedStore says it is shared by many nodes (push.FanOutLeases, every
// lease granted).
type sharedStore struct{ *countingStore }

func (sharedStore) LeaseFanOut(context.Context, string, string, string, time.Time, time.Duration) (bool, error) {
	return true, nil
}

func (sharedStore) FanOutDone(context.Context, string, string) error { return nil }

// Consider holds the first call until a second one is in flight, or a
// minute of the bubble's clock passed (a fan-out that decides one chunk
// at a time never starts one).
func (s *countingStore) Consider(ctx context.Context, ev hotzone.Event, ids []string, fn hotzone.DecideFunc) ([]hotzone.Outcome, error) {
	s.mu.Lock()
	s.in++
	s.most = max(s.most, s.in)
	if s.in == 2 {
		close(s.second)
	}
	s.mu.Unlock()
	select {
	case <-s.second:
	case <-time.After(time.Minute):
	}
	defer func() { s.mu.Lock(); s.in--; s.mu.Unlock() }()
	return s.DB.Consider(ctx, ev, ids, fn)
}

// TestFanOutChunksInFlight: over storage many nodes share, a fan-out
// decides two chunks at once (one's round trips overlap the other's
// deciding), and every device in the fence is queued exactly once; over
// storage of its own it decides one chunk at a time.
func TestFanOutChunksInFlight(t *testing.T) {
	const devices = 3500 // chunks of 1024, 2048 and the rest
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				db, brandID := bubbleBrand(t, devices)
				for i := range devices {
					if err := db.RecordPosition(ctx, brandID, fmt.Sprintf("d%d", i), hotzone.Position{Lat: 1, Lon: 1, AccuracyM: 5, TS: time.Now()}, true); err != nil {
						t.Fatal(err)
					}
				}
				s := &countingStore{DB: db, second: make(chan struct{})}
				var st hotzone.Storage = s
				if shared {
					st = sharedStore{s}
				}
				e := push.NewEngine(ctx, st, push.EngineOptions{})
				ev := hotzone.Event{ID: hotzone.NewID(time.Now()), BrandID: brandID, StoreID: "s", Title: "Hot", Body: "Now", StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), Status: hotzone.EventLive}
				if _, _, _, err := e.StartEvent(ctx, ev, ""); err != nil {
					t.Fatal(err)
				}
				e.Wait()
				want := 1
				if shared {
					want = 2
				}
				if s.most != want {
					t.Errorf("at most %d chunks decided at once, want %d", s.most, want)
				}
				_, c, err := db.Event(ctx, brandID, ev.ID)
				if err != nil || c.Queued != devices || c.DevicesInFence != devices {
					t.Errorf("counts = %+v, %v; want all %d queued", c, err, devices)
				}
			})
		})
	}
}
