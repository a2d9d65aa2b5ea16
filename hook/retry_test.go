package hook

import (
	"errors"
	"math"
	"net/http"
	"testing"
	"time"
)

func TestRetryable(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   bool
	}{
		{0, errors.New("connection refused"), true},
		{0, http.ErrHandlerTimeout, true},
		{200, nil, false},
		{204, nil, false},
		{301, nil, false}, // redirects are not followed: final
		{302, nil, false},
		{307, nil, false},
		{400, nil, false},
		{401, nil, false},
		{404, nil, false},
		{410, nil, false},
		{408, nil, true},
		{425, nil, true},
		{429, nil, true},
		{500, nil, true},
		{502, nil, true},
		{503, nil, true},
		{599, nil, true},
		{600, nil, false},
	}
	for _, tt := range tests {
		if got := Retryable(tt.status, tt.err); got != tt.want {
			t.Errorf("Retryable(%d, %v) = %v, want %v", tt.status, tt.err, got, tt.want)
		}
	}
}

func TestNextAttempt(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fixed := func(f float64) func() float64 { return func() float64 { return f } }
	tests := []struct {
		name       string
		attempt    int
		now        time.Time
		retryAfter string
		rnd        float64
		wantWait   time.Duration
		wantOK     bool
	}{
		{"first retry, least jitter", 1, first, "", 0, 5 * time.Second, true},
		{"first retry, half jitter", 1, first, "", 0.5, 7500 * time.Millisecond, true},
		{"attempt 0 as 1", 0, first, "", 0, 5 * time.Second, true},
		{"second", 2, first, "", 0, 10 * time.Second, true},
		{"third", 3, first, "", 0, 20 * time.Second, true},
		{"ninth", 9, first, "", 0, 1280 * time.Second, true},
		{"tenth, capped", 10, first, "", 0, 30 * time.Minute, true},
		{"capped, most jitter", 10, first, "", 0.999, 30*time.Minute + time.Duration(0.999*float64(30*time.Minute)), true},
		{"huge attempt", math.MaxInt, first, "", 0, 30 * time.Minute, true},
		{"rnd out of range", 1, first, "", 7, 10 * time.Second, true},
		{"rnd negative", 1, first, "", -1, 5 * time.Second, true},
		{"rnd NaN", 1, first, "", math.NaN(), 5 * time.Second, true},
		{"Retry-After raises", 1, first, "120", 0, 2 * time.Minute, true},
		{"Retry-After below backoff", 3, first, "1", 0, 20 * time.Second, true},
		{"Retry-After capped", 1, first, "86400", 0, time.Hour, true},
		{"Retry-After date", 1, first, "Thu, 01 Jan 2026 00:05:00 GMT", 0, 5 * time.Minute, true},
		{"Retry-After garbage", 1, first, "soon", 0, 5 * time.Second, true},
		{"lands on the deadline", 1, first.Add(RetryFor - 5*time.Second), "", 0, 5 * time.Second, true},
		{"past the deadline", 1, first.Add(RetryFor - 4*time.Second), "", 0, 0, false},
		{"Retry-After past the deadline", 2, first.Add(RetryFor - time.Minute), "120", 0, 0, false},
		{"capped backoff past the deadline", 12, first.Add(23*time.Hour + 30*time.Minute), "", 0.5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NextAttempt(tt.attempt, first, tt.now, tt.retryAfter, fixed(tt.rnd))
			if ok != tt.wantOK || ok && got.Sub(tt.now) != tt.wantWait {
				t.Errorf("NextAttempt(%d, now+%v, %q, rnd %v) = now+%v, %v; want now+%v, %v",
					tt.attempt, tt.now.Sub(first), tt.retryAfter, tt.rnd, got.Sub(tt.now), ok, tt.wantWait, tt.wantOK)
			}
		})
	}
}

// TestNextAttemptSchedule follows a receiver that is always down: it is
// tried until the day is out, never twice within 5 s, never an hour apart.
func TestNextAttemptSchedule(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now, attempts := first, 1
	for {
		next, ok := NextAttempt(attempts, first, now, "", nil)
		if !ok {
			break
		}
		if d := next.Sub(now); d < 5*time.Second || d > time.Hour {
			t.Fatalf("attempt %d: wait %v, want 5 s to 1 h", attempts, d)
		}
		now, attempts = next, attempts+1
	}
	if now.Sub(first) < RetryFor-time.Hour || now.After(first.Add(RetryFor)) {
		t.Errorf("last attempt at first+%v, want within the last hour of %v", now.Sub(first), RetryFor)
	}
	if attempts < 30 || attempts > 60 {
		t.Errorf("%d attempts in %v, want 30 to 60", attempts, RetryFor)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v      string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"99999999999999999999999", math.MaxInt64, true},
		{"Thu, 01 Jan 2026 00:01:00 GMT", time.Minute, true},    // RFC 1123
		{"Thursday, 01-Jan-26 00:01:00 GMT", time.Minute, true}, // RFC 850
		{"Thu Jan  1 00:01:00 2026", time.Minute, true},         // asctime
		{"Wed, 31 Dec 2025 23:00:00 GMT", 0, true},              // past
		{"", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"tomorrow", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.v, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "99999999999999999999", "Thu, 01 Jan 2026 00:01:00 GMT", "-1", "", "Mon Jan  2 15:04:05 2006"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if d < 0 || !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", v, d, ok)
		}
		// Whatever the header says, the next attempt is within the hour.
		next, ok := NextAttempt(1, now, now, v, nil)
		if !ok || next.Before(now) || next.Sub(now) > time.Hour {
			t.Fatalf("NextAttempt(Retry-After %q) = now+%v, %v", v, next.Sub(now), ok)
		}
	})
}
