package push

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimitedError says a device pings too often, and when it may again.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return "this device pings too often; retry after " + strconv.FormatFloat(e.RetryAfter.Seconds(), 'f', 3, 64) + " s"
}

// deviceLimits is the per-device token bucket for pings. It lives on the
// node: with several nodes each holds its own buckets, which is within
// what a per-device limit is for (a misbehaving app, not an attacker
// who has the public app key anyway).
//
// Buckets of devices that stop pinging expire: they are kept in two
// generations, the current one and the one before, and each rotation
// drops the older. A bucket used in either generation moves to the
// current one, so only buckets unused for a whole generation go, and a
// generation is at least the time a bucket takes to refill from empty:
// a dropped bucket was full, the same as the new one its device would
// get. Rotation is O(1), so expiry never holds up a ping.
type deviceLimits struct {
	limit   rate.Limit
	burst   int
	every   time.Duration // a generation
	mu      sync.Mutex
	cur     map[deviceRef]*rate.Limiter
	old     map[deviceRef]*rate.Limiter
	rotated time.Time
}

type deviceRef struct{ brand, device string }

// minGeneration is the shortest generation: rotating more often would
// only churn the maps.
const minGeneration = time.Minute

func newDeviceLimits(l rate.Limit, burst int) *deviceLimits {
	if l <= 0 {
		return nil // no limit
	}
	burst = max(burst, 1)
	refill := time.Duration(float64(burst) / float64(l) * float64(time.Second))
	return &deviceLimits{limit: l, burst: burst, every: max(minGeneration, refill),
		cur: map[deviceRef]*rate.Limiter{}, old: map[deviceRef]*rate.Limiter{}}
}

// allow takes one token for the device, or says how long to wait.
func (d *deviceLimits) allow(ref deviceRef, now time.Time) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.rotated.IsZero() {
		d.rotated = now
	}
	if now.Sub(d.rotated) >= d.every {
		// The generation before is dropped; if a whole generation more
		// has passed, the current one is too old to keep either.
		d.old, d.cur = d.cur, make(map[deviceRef]*rate.Limiter, len(d.cur)/2)
		if now.Sub(d.rotated) >= 2*d.every {
			clear(d.old)
		}
		d.rotated = now
	}
	lim := d.cur[ref]
	if lim == nil {
		if lim = d.old[ref]; lim != nil {
			delete(d.old, ref)
		} else {
			lim = rate.NewLimiter(d.limit, d.burst)
		}
		d.cur[ref] = lim
	}
	d.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return &RateLimitedError{RetryAfter: time.Second}
	}
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return &RateLimitedError{RetryAfter: delay}
	}
	return nil
}

// forget drops a device's bucket (an unknown or erased device).
func (d *deviceLimits) forget(ref deviceRef) {
	if d == nil {
		return
	}
	d.mu.Lock()
	delete(d.cur, ref)
	delete(d.old, ref)
	d.mu.Unlock()
}

// size is how many buckets are held.
func (d *deviceLimits) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.cur) + len(d.old)
}
