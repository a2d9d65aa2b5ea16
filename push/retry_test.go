package push

import (
	"net/http"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// TestRetryBackoff: attempt n waits a jittered time up to Base·2ⁿ⁻¹
// (capped at Max), never less than the provider's Retry-After, and the
// last attempt fails for good.
func TestRetryBackoff(t *testing.T) {
	r := RetryPolicy{MaxAttempts: 5, Base: time.Second, Max: 5 * time.Second}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for attempt, ceiling := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second} {
		for range 200 {
			d := r.next(attempt, 0, "503", now)
			if d.Status != hotzone.StatusQueued {
				t.Fatalf("attempt %d: %s, want queued", attempt, d.Status)
			}
			if wait := d.NextAttempt.Sub(now); wait <= 0 || wait > ceiling {
				t.Fatalf("attempt %d waits %v, want in (0, %v]", attempt, wait, ceiling)
			}
		}
	}
	if d := r.next(2, time.Minute, "429", now); d.NextAttempt.Sub(now) != time.Minute {
		t.Errorf("Retry-After 1m: waits %v, want 1m", d.NextAttempt.Sub(now))
	}
	if d := r.next(5, 0, "503", now); d.Status != hotzone.StatusFailed {
		t.Errorf("attempt 5 of 5: %s, want failed", d.Status)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"-3", 0},
		{"99999", time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		h := http.Header{}
		if c.header != "" {
			h.Set("Retry-After", c.header)
		}
		if got := parseRetryAfter(h, now); got != c.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", c.header, got, c.want)
		}
	}
}
