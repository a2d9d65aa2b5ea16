package push

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestDeviceLimits: a device gets its burst, then one ping per interval;
// the answer says how long to wait, and waiting that long is enough.
// Devices do not share a bucket.
func TestDeviceLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newDeviceLimits(1, 3)
		a, b := deviceRef{"brand", "a"}, deviceRef{"brand", "b"}
		for i := range 3 {
			if err := l.allow(a, time.Now()); err != nil {
				t.Fatalf("ping %d of the burst: %v", i+1, err)
			}
		}
		err := l.allow(a, time.Now())
		var limited *RateLimitedError
		if !errors.As(err, &limited) || limited.RetryAfter <= 0 || limited.RetryAfter > time.Second {
			t.Fatalf("fourth ping = %v, want a RateLimitedError within a second", err)
		}
		if err := l.allow(b, time.Now()); err != nil {
			t.Fatalf("another device is limited too: %v", err)
		}
		// A refused ping takes no token: waiting what it said is enough.
		time.Sleep(limited.RetryAfter)
		if err := l.allow(a, time.Now()); err != nil {
			t.Fatalf("after waiting Retry-After: %v", err)
		}
		if err := l.allow(a, time.Now()); err == nil {
			t.Fatal("a second ping in the same instant passed")
		}
		time.Sleep(10 * time.Second)
		for i := range 3 {
			if err := l.allow(a, time.Now()); err != nil {
				t.Fatalf("after a quiet spell, ping %d of a new burst: %v", i+1, err)
			}
		}
		l.forget(a)
		if len(l.m) != 1 {
			t.Fatalf("%d buckets after forgetting a, want b's only", len(l.m))
		}
	})
	if l := newDeviceLimits(0, 20); l != nil || l.allow(deviceRef{"b", "d"}, time.Now()) != nil {
		t.Fatal("a zero rate should mean no limit")
	}
}
