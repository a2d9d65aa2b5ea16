package push

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hotzone/hotzone"
)

// RetryPolicy says when a failed send is tried again.
type RetryPolicy struct {
	// MaxAttempts is how many sends a notification gets before it is
	// failed for good.
	MaxAttempts int
	// Base and Max bound the exponential backoff before jitter.
	Base, Max time.Duration
}

// DefaultRetry backs off 1 s, 2 s, 4 s … up to 5 min, 12 attempts in all
// (about 25 minutes): most events end before it gives up.
var DefaultRetry = RetryPolicy{MaxAttempts: 12, Base: time.Second, Max: 5 * time.Minute}

// next answers the delivery for a transient failure of the given attempt
// (1-based): queued again after a jittered exponential delay, never
// sooner than the provider's Retry-After, or failed when attempts ran out.
func (r RetryPolicy) next(attempt int, retryAfter time.Duration, errText string, now time.Time) hotzone.Delivery {
	if attempt >= r.MaxAttempts {
		return hotzone.Delivery{Status: hotzone.StatusFailed, Error: errText + " (gave up after " + strconv.Itoa(attempt) + " attempts)", At: now}
	}
	d := r.Base << min(attempt-1, 30)
	if d <= 0 || d > r.Max {
		d = r.Max
	}
	// Full jitter: spreads a burst of retries so they do not return
	// together and trip the same limit again.
	d = time.Duration(rand.Int64N(int64(d)) + 1)
	if retryAfter > d {
		d = retryAfter
	}
	return hotzone.Delivery{Status: hotzone.StatusQueued, Error: errText, NextAttempt: now.Add(d), At: now}
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}
