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
type deviceLimits struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[deviceRef]*rate.Limiter
}

type deviceRef struct{ brand, device string }

func newDeviceLimits(l rate.Limit, burst int) *deviceLimits {
	if l <= 0 {
		return nil // no limit
	}
	return &deviceLimits{limit: l, burst: max(burst, 1), m: map[deviceRef]*rate.Limiter{}}
}

// allow takes one token for the device, or says how long to wait.
func (d *deviceLimits) allow(ref deviceRef, now time.Time) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	lim := d.m[ref]
	if lim == nil {
		lim = rate.NewLimiter(d.limit, d.burst)
		d.m[ref] = lim
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

func (d *deviceLimits) forget(ref deviceRef) {
	if d == nil {
		return
	}
	d.mu.Lock()
	delete(d.m, ref)
	d.mu.Unlock()
}
