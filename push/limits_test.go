package push

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
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
		if n := l.size(); n != 1 {
			t.Fatalf("%d buckets after forgetting a, want b's only", n)
		}
	})
	if l := newDeviceLimits(0, 20); l != nil || l.allow(deviceRef{"b", "d"}, time.Now()) != nil {
		t.Fatal("a zero rate should mean no limit")
	}
}

// TestDeviceLimitsExpire: the buckets of devices that stopped pinging
// go away (within two generations), while a device that keeps pinging
// keeps its bucket across generations: its answers are those of a
// bucket that never expires.
func TestDeviceLimitsExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newDeviceLimits(0.01, 2) // refills in 200 s: longer than a minute
		if l.every != 200*time.Second {
			t.Fatalf("a generation of %v, want the 200 s a bucket takes to refill", l.every)
		}
		for i := range 10000 {
			if err := l.allow(deviceRef{"b", fmt.Sprint(i)}, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		busy := deviceRef{"b", "busy"}
		ref := rate.NewLimiter(0.01, 2) // the bucket busy would have if nothing expired
		check := func(i int) {
			t.Helper()
			now := time.Now()
			got := l.allow(busy, now) == nil
			r := ref.ReserveN(now, 1)
			want := r.OK() && r.DelayFrom(now) == 0
			if !want {
				r.CancelAt(now)
			}
			if got != want {
				t.Fatalf("ping %d at %v: allowed %v, a bucket that never expires says %v", i, now, got, want)
			}
		}
		for i := range 30 {
			check(i)
			check(i) // twice in an instant: the second is refused once the burst is spent
			time.Sleep(70 * time.Second)
		}
		if n := l.size(); n != 1 {
			t.Fatalf("%d buckets after 10,000 devices were silent for %v, want only the busy one's", n, 30*70*time.Second)
		}
	})
}
