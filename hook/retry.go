package hook

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// RetryFor is how long a delivery is retried, counted from its first
// attempt: a receiver that is down for less than a day loses nothing.
const RetryFor = 24 * time.Hour

// Backoff bounds: the first retry comes 5–10 s after a failure, the wait
// doubles with each attempt, and never exceeds an hour, so a receiver that
// comes back is reached within the hour.
const (
	firstBackoff = 10 * time.Second
	maxBackoff   = time.Hour
)

// Retryable reports whether a delivery that ended with this status (or
// transport error) is worth sending again: a transport error or timeout,
// 408 Request Timeout, 425 Too Early, 429 Too Many Requests and any 5xx
// are the receiver's passing trouble. Any other 4xx says the request
// itself is refused and will be refused again. 2xx is success. A 3xx is a
// final failure, not followed: NewClient does not follow redirects, since a
// redirect could point anywhere, including at an internal host; the user
// should register the final URL.
func Retryable(status int, err error) bool {
	if err != nil {
		return true
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500 && status <= 599
}

// NextAttempt says when to try a delivery again after attempt failed
// attempts (counting from 1), the first of them made at first. The wait is
// an exponential backoff (10 s, 20 s, 40 s … capped at 1 h) with equal
// jitter: half the backoff, plus rnd() (in [0, 1)) times the other half, so
// retries of a burst spread out yet never come sooner than half the
// backoff. A Retry-After value (retryAfter, the header as received, "" for
// none) is a floor on the wait, itself capped at 1 h so a receiver cannot
// park a delivery for the whole retry window. ok is false, and the delivery
// should be failed, when the next attempt would fall after first+RetryFor.
// A nil rnd means math/rand/v2's Float64.
func NextAttempt(attempt int, first, now time.Time, retryAfter string, rnd func() float64) (time.Time, bool) {
	if rnd == nil {
		rnd = rand.Float64
	}
	backoff := maxBackoff
	if n := max(attempt, 1) - 1; n < 10 { // 10 s << 9 is already past the cap
		backoff = min(firstBackoff<<n, maxBackoff)
	}
	f := rnd()
	if !(f >= 0) { // also catches NaN
		f = 0
	}
	f = min(f, 1)
	wait := backoff/2 + time.Duration(f*float64(backoff/2))
	if ra, ok := ParseRetryAfter(retryAfter, now); ok {
		wait = max(wait, min(ra, maxBackoff))
	}
	next := now.Add(wait)
	if next.After(first.Add(RetryFor)) {
		return time.Time{}, false
	}
	return next, true
}

// ParseRetryAfter reads a Retry-After header value (RFC 9110 §10.2.3):
// delta-seconds or an HTTP-date, relative to now. A date in the past is a
// zero wait. ok is false for an empty or malformed value, which the caller
// should treat as no header. Waits too long for a time.Duration saturate.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		const maxSeconds = math.MaxInt64 / int64(time.Second)
		var s int64
		for i := 0; i < len(v); i++ {
			s = s*10 + int64(v[i]-'0')
			if s > maxSeconds {
				return math.MaxInt64, true
			}
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
