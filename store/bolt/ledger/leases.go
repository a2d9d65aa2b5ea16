package ledger

import (
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// Leases are the outbox's claims. They live in memory: bbolt is one
// process's, so a restart drops every lease at once, which is what their
// expiry would have done (everything unrecorded is due again). The zero
// Leases is ready to use; it is safe for concurrent use.
type Leases struct {
	mu    sync.Mutex
	m     map[string]lease // notification id -> its lease
	seq   uint64
	sweep int // sweep lapsed leases once the table has grown past this
}

type lease struct {
	token string
	until time.Time
}

// Claim hands out up to limit of the lane's due notifications that no
// live lease holds, oldest first, under a new lease until now+leaseFor
// (each carries it in Notification.Claim). It walks the lane from its
// start: what is claimed and not yet recorded (at most what the
// consumers have in flight) is skipped by a look at the table before
// anything is decoded.
func (l *Leases) Claim(tx *bbolt.Tx, lane hotzone.Lane, now time.Time, limit int, leaseFor time.Duration) ([]hotzone.Notification, error) {
	out := make([]hotzone.Notification, 0, min(limit, 4096))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m, l.sweep = map[string]lease{}, 1024
	}
	l.seq++
	token := strconv.FormatUint(l.seq, 36)
	until := now.Add(leaseFor)
	err := Scan(tx, lane, func(id []byte) bool {
		held, ok := l.m[string(id)]
		return !ok || !now.Before(held.until)
	}, func(n hotzone.Notification) bool {
		if n.Status == hotzone.StatusQueued && !n.NextAttempt.After(now) {
			n.Claim = token
			l.m[n.ID] = lease{token, until}
			out = append(out, n)
		}
		return len(out) < limit
	})
	if len(l.m) > l.sweep {
		for id, held := range l.m {
			if !now.Before(held.until) {
				delete(l.m, id)
			}
		}
		l.sweep = max(1024, 2*len(l.m))
	}
	return out, err
}

// Mine keeps the results whose claim was not taken over by a later one
// (one replaces another only after the first's lease passed): only
// those may be recorded.
func (l *Leases) Mine(ds []hotzone.Delivery) []hotzone.Delivery {
	out := make([]hotzone.Delivery, 0, len(ds))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range ds {
		if held, ok := l.m[d.NotificationID]; !ok || held.token == d.Claim {
			out = append(out, d)
		}
	}
	return out
}

// Done ends the leases of results to be tried again, which come due at
// their next attempt. A final result keeps its lease until it lapses: a
// Claim reads a snapshot, and one taken before the result's commit still
// shows the notification queued; the lease is what keeps that Claim from
// sending it again (two dispatchers of one lane did, under load).
func (l *Leases) Done(ds []hotzone.Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range ds {
		if held, ok := l.m[d.NotificationID]; ok && held.token == d.Claim && d.Status == hotzone.StatusQueued {
			delete(l.m, d.NotificationID)
		}
	}
}
