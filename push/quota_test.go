package push

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// budget is a SendQuota with a fixed number of sends and no refill.
type budget struct {
	mu    sync.Mutex
	left  int
	asked int
	err   error
}

func (b *budget) TakeSends(_ context.Context, _ hotzone.Lane, _ float64, n int) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked++
	if b.err != nil {
		return 0, b.err
	}
	got := min(n, b.left)
	b.left -= got
	return got, nil
}

// TestSharedLimiter: sends are taken from the shared budget a batch at a
// time and no more are allowed once it is spent; a backend that does
// not answer falls back to the node's own rate.
func TestSharedLimiter(t *testing.T) {
	q := &budget{left: 120}
	l := newSharedLimiter(q, hotzone.Lane{BrandID: "b", Provider: hotzone.ProviderAPNs}, 200) // batches of 10
	for i := range 120 {
		if err := l.Wait(t.Context()); err != nil {
			t.Fatalf("send %d of a budget of 120: %v", i, err)
		}
	}
	if q.asked != 12 {
		t.Errorf("120 sends asked the backend %d times, want 12 (batches of 10)", q.asked)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a send past the budget = %v, want it held until the context ends", err)
	}
	q.err = errors.New("cluster down")
	if err := l.Wait(t.Context()); err != nil {
		t.Errorf("with the backend down = %v, want the node's own rate to let it through", err)
	}
}
