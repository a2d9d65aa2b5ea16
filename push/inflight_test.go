package push

import (
	"testing"
	"time"
)

// TestInflightLimit: a lane with a rate limit keeps rate × hold × 1.2
// sends out, coming down at once and going up at most twofold a window;
// one without grows while slots are what limits it and stops once holds
// have grown fourfold.
func TestInflightLimit(t *testing.T) {
	t0 := time.Unix(0, 0)
	run := func(f *inflight, now *time.Time, n int, hold time.Duration) {
		for range n {
			f.observe(hold)
		}
		*now = now.Add(adaptEvery)
		f.adapt(*now)
	}
	now := t0
	f := newInflight(512, 5000, now)
	if f.limit != 30 { // 5000/s × 5 ms × 1.2
		t.Fatalf("first limit %d, want 30", f.limit)
	}
	run(f, &now, 500, 20*time.Millisecond) // connecting: long holds
	if f.limit != 60 {
		t.Fatalf("after a slow first window: %d, want 60 (at most twofold)", f.limit)
	}
	run(f, &now, 500, 10*time.Millisecond)
	if f.limit != 60 { // 5000 × 10 ms × 1.2
		t.Fatalf("at 10 ms holds: %d, want 60", f.limit)
	}
	run(f, &now, 500, 2*time.Millisecond)
	if f.limit != 12 {
		t.Fatalf("at 2 ms holds: %d, want 12 (down at once)", f.limit)
	}
	f = newInflight(40, 1e6, now)
	if f.limit != 40 {
		t.Fatalf("an unlimited rate starts at the ceiling: %d", f.limit)
	}

	// Without a rate limit: throughput follows the limit while holds
	// stay at 1 ms, so the limit doubles; once holds are four times the
	// shortest it stays.
	now = t0
	f = newInflight(512, 0, now)
	if f.limit != firstInflight {
		t.Fatalf("first limit %d, want %d", f.limit, firstInflight)
	}
	for range 3 {
		l := f.limit
		run(f, &now, l*100, time.Millisecond) // l slots, 1 ms each, for 100 ms
		if f.limit != 2*l {
			t.Fatalf("slot-limited at %d: new limit %d, want %d", l, f.limit, 2*l)
		}
	}
	l := f.limit
	run(f, &now, l*25, 4*time.Millisecond) // holds fourfold: throughput stopped growing
	if f.limit != l {
		t.Fatalf("holds at four times the shortest: %d, want %d kept", f.limit, l)
	}
	if f.adapt(now.Add(time.Millisecond)) {
		t.Fatal("adapted before a window was over")
	}
}
