package push

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hotzone/hotzone"
)

// SendQuota is a send rate shared by every node of a backend, so that a
// brand's --apns-rate and --fcm-rate hold for the whole service, not per
// node. A backend of one process needs none.
type SendQuota interface {
	// TakeSends takes up to n sends from the lane's shared budget, which
	// refills at perSecond (and holds at most one second of it), and
	// answers how many it got: 0 when the budget is spent.
	TakeSends(ctx context.Context, lane hotzone.Lane, perSecond float64, n int) (int, error)
}

// waiter paces sends; *rate.Limiter is one.
type waiter interface {
	Wait(ctx context.Context) error
}

// sharedLimiter paces a lane's sends on this node by a SendQuota: it
// takes sends from the shared budget a twentieth of a second's worth at
// a time and spends them locally, so a send costs a round trip only
// once per batch. When the backend does not answer, it falls back to
// the node's own limiter (the old per-node rate), since sending is
// better than stopping and results cannot be recorded then anyway.
type sharedLimiter struct {
	quota     SendQuota
	lane      hotzone.Lane
	perSecond float64
	batch     int
	local     *rate.Limiter

	mu   sync.Mutex
	have int
}

func newSharedLimiter(q SendQuota, lane hotzone.Lane, perSecond rate.Limit) *sharedLimiter {
	return &sharedLimiter{quota: q, lane: lane, perSecond: float64(perSecond), batch: max(1, int(perSecond/20)),
		local: rate.NewLimiter(perSecond, int(perSecond))}
}

// Wait blocks until this node may send once more, or ctx ends.
func (l *sharedLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.have == 0 {
		got, err := l.quota.TakeSends(ctx, l.lane, l.perSecond, l.batch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return l.local.Wait(ctx)
		}
		if got > 0 {
			l.have = got
			break
		}
		// Spent: wait about one batch's refill before asking again.
		t := time.NewTimer(max(5*time.Millisecond, time.Duration(float64(l.batch)/l.perSecond*float64(time.Second))))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	l.have--
	return nil
}
