package hotzone

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestHeldBackShare: over 10,000 devices the held-back share is within
// 1.5 points of the percentage asked for, and the answer is the same
// every time it is asked.
func TestHeldBackShare(t *testing.T) {
	for _, pct := range []int{0, 1, 10, 25, 50} {
		held := 0
		for i := range 10000 {
			id := fmt.Sprintf("device-%d", i)
			h := HeldBack("06h4qyq5ec00c99nag8k4xqfag", id, pct)
			if h != HeldBack("06h4qyq5ec00c99nag8k4xqfag", id, pct) {
				t.Fatalf("HeldBack(%s, %d) changed between two calls", id, pct)
			}
			if h {
				held++
			}
		}
		if got := float64(held) / 100; math.Abs(got-float64(pct)) > 1.5 {
			t.Errorf("holdout %d%%: %.2f%% of 10,000 held back", pct, got)
		}
	}
	// Another event draws another group.
	same := 0
	for i := range 1000 {
		id := fmt.Sprintf("device-%d", i)
		if HeldBack("event-a", id, 50) == HeldBack("event-b", id, 50) {
			same++
		}
	}
	if same < 400 || same > 600 {
		t.Errorf("two events at 50%% agree on %d of 1000 devices; want about half", same)
	}
}

// TestDifferenceCI95 holds the interval to Newcombe's published
// examples (Statistics in Medicine 17, 1998, table II, method 10).
func TestDifferenceCI95(t *testing.T) {
	for _, c := range []struct {
		x1, n1, x2, n2 int
		lo, hi         float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
		{5, 56, 0, 29, -0.0381, 0.1926},
		{0, 10, 0, 20, -0.1611, 0.2775},
		{10, 10, 0, 20, 0.6791, 1.0000},
	} {
		lo, hi := DifferenceCI95(c.x1, c.n1, c.x2, c.n2)
		if math.Abs(lo-c.lo) > 0.00006 || math.Abs(hi-c.hi) > 0.00006 {
			t.Errorf("%d/%d - %d/%d: [%.4f, %.4f], want [%.4f, %.4f]", c.x1, c.n1, c.x2, c.n2, lo, hi, c.lo, c.hi)
		}
	}
}

// TestReport tallies a scripted event: known visits in each group give
// a known lift and interval; those already there are counted apart and
// left out of the rates.
func TestReport(t *testing.T) {
	var r Report
	add := func(n int, status NotificationStatus, reason, visit string, opened bool) {
		for range n {
			e := Notification{Status: status, Reason: reason, Visit: visit}
			if opened {
				now := time.Now()
				e.OpenedAt = &now
			}
			r.Tally(&e)
		}
	}
	// Notified: 70 compared (56 visited), 5 already there, 3 opened.
	add(56, StatusSent, "", VisitVisited, false)
	add(11, StatusSent, "", VisitNone, false)
	add(3, StatusDryRun, "", VisitNone, true)
	add(5, StatusQueued, "", VisitAlreadyThere, false)
	// Held back: 80 compared (48 visited), 2 already there.
	add(48, StatusSuppressed, ReasonHoldout, VisitVisited, false)
	add(32, StatusSuppressed, ReasonHoldout, VisitNone, false)
	add(2, StatusSuppressed, ReasonHoldout, VisitAlreadyThere, false)
	// Neither group.
	add(7, StatusSuppressed, "quiet_hours", VisitNone, false)
	add(4, StatusFailed, "", VisitNone, false)
	add(2, StatusExpired, "", VisitNone, false)
	r.Finish()
	if r.Notified != 75 || r.HeldBack != 82 || r.Opened != 3 {
		t.Fatalf("notified %d, held back %d, opened %d; want 75, 82, 3", r.Notified, r.HeldBack, r.Opened)
	}
	if r.Visits != (Pair{56, 48}) || r.AlreadyThere != (Pair{5, 2}) {
		t.Fatalf("visits %+v, already there %+v", r.Visits, r.AlreadyThere)
	}
	if *r.VisitRate.Notified != 0.8 || *r.VisitRate.HeldBack != 0.6 {
		t.Fatalf("rates %v %v, want 0.8 and 0.6", *r.VisitRate.Notified, *r.VisitRate.HeldBack)
	}
	if r.TooSmall || r.Lift == nil {
		t.Fatalf("too small %v, lift %v", r.TooSmall, r.Lift)
	}
	if math.Abs(r.Lift.Difference-0.2) > 1e-9 || math.Abs(*r.Lift.Ratio-4.0/3) > 1e-9 {
		t.Errorf("lift %+v, want difference 0.2 and ratio 4/3", *r.Lift)
	}
	if math.Abs(r.Lift.CI95[0]-0.0524) > 0.00006 || math.Abs(r.Lift.CI95[1]-0.3339) > 0.00006 {
		t.Errorf("ci95 %v, want [0.0524, 0.3339]", r.Lift.CI95)
	}

	// Too few held back to tell.
	var small Report
	for range 40 {
		small.Tally(&Notification{Status: StatusSent, Visit: VisitVisited})
	}
	for range 29 {
		small.Tally(&Notification{Status: StatusSuppressed, Reason: ReasonHoldout})
	}
	small.Finish()
	if !small.TooSmall || small.Lift != nil || small.VisitRate.HeldBack == nil || *small.VisitRate.HeldBack != 0 {
		t.Errorf("40 notified, 29 held back: too small %v, lift %v, held-back rate %v", small.TooSmall, small.Lift, small.VisitRate.HeldBack)
	}
	// Nobody held back visited: no ratio, a difference all the same.
	var none Report
	for range 30 {
		none.Tally(&Notification{Status: StatusSent, Visit: VisitVisited})
		none.Tally(&Notification{Status: StatusSuppressed, Reason: ReasonHoldout})
	}
	none.Finish()
	if none.Lift == nil || none.Lift.Ratio != nil || none.Lift.Difference != 1 {
		t.Errorf("all notified visited, none held back: lift %+v", none.Lift)
	}
	// An empty event.
	var empty Report
	empty.Finish()
	if empty.VisitRate.Notified != nil || empty.Lift != nil || !empty.TooSmall {
		t.Errorf("empty report: %+v", empty)
	}
}

// TestVisitMark: a mark applies once, to an entry in a group, within
// the window after its decision.
func TestVisitMark(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	within := 2 * time.Hour
	visit := func(d time.Duration) VisitMark { return VisitMark{At: at.Add(d), Within: within} }
	sent := Notification{Status: StatusSent, DecidedAt: at}
	held := Notification{Status: StatusSuppressed, Reason: ReasonHoldout, DecidedAt: at}
	for _, c := range []struct {
		name string
		n    Notification
		m    VisitMark
		want bool
	}{
		{"notified, an hour later", sent, visit(time.Hour), true},
		{"held back, an hour later", held, visit(time.Hour), true},
		{"at the window's end", sent, visit(within), true},
		{"after the window", sent, visit(within + time.Second), false},
		{"before the decision", sent, visit(-time.Second), false},
		{"suppressed for quiet hours", Notification{Status: StatusSuppressed, Reason: "quiet_hours", DecidedAt: at}, visit(time.Minute), false},
		{"failed", Notification{Status: StatusFailed, DecidedAt: at}, visit(time.Minute), false},
		{"visited already", Notification{Status: StatusSent, DecidedAt: at, Visit: VisitVisited}, visit(time.Minute), false},
		{"already there", Notification{Status: StatusSent, DecidedAt: at, Visit: VisitAlreadyThere}, visit(time.Minute), false},
		{"already there at the decision", sent, VisitMark{At: at, AlreadyThere: true, Within: within}, true},
		{"no decision time", Notification{Status: StatusSent}, visit(time.Minute), false},
	} {
		if got := c.m.Attributes(&c.n); got != c.want {
			t.Errorf("%s: Attributes = %v, want %v", c.name, got, c.want)
		}
	}
	n := sent
	visit(time.Hour).Apply(&n)
	if n.Visit != VisitVisited || !n.VisitAt.Equal(at.Add(time.Hour)) {
		t.Errorf("applied visit: %q at %v", n.Visit, n.VisitAt)
	}
}

func TestVisitArea(t *testing.T) {
	circle := Store{Spec: FenceSpec{Circle: &Circle{Lat: 40.7128, Lon: -74.006, RadiusM: 800}}}
	f, err := circle.VisitArea()
	if err != nil || f.Circle == nil || f.Circle.RadiusM != DefaultVisitRadiusM {
		t.Fatalf("a circle fence's default visit area: %+v, %v", f, err)
	}
	poly, _ := FenceSpec{Polygon: []byte(`{"type":"Polygon","coordinates":[[[-74.02,40.7],[-74,40.7],[-74,40.72],[-74.02,40.72],[-74.02,40.7]]]}`)}.Build()
	polygon := Store{Spec: FenceSpec{Polygon: []byte(`{}`)}, Fence: poly}
	if f, err := polygon.VisitArea(); err != nil || f != poly {
		t.Errorf("a polygon fence's default visit area: %+v, %v; want the fence", f, err)
	}
	own := circle
	own.Visit = &FenceSpec{Circle: &Circle{Lat: 40.7130, Lon: -74.0062, RadiusM: 25}}
	if f, err := own.VisitArea(); err != nil || f.Circle.RadiusM != 25 {
		t.Errorf("a store's own visit area: %+v, %v", f, err)
	}
}
