package push

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// walk is a ping sequence against one circle fence, with the presence
// changes each ping must give.
type walkPing struct {
	after    time.Duration // since the first ping
	outsideM float64       // 0 inside; <0 far from the fence
	accuracy float64
	speed    float64 // m/s; 0 none reported
	want     string  // changes, space-separated: "entered dwelled"
}

func runWalk(t *testing.T, name string, policy hotzone.Policy, pings []walkPing) {
	t.Helper()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var p hotzone.Presence
	for i, w := range pings {
		s := Sighting{At: t0.Add(w.after), AccuracyM: w.accuracy}
		if w.speed > 0 {
			s.TooFast = policy.TooFast(&w.speed)
		}
		if w.outsideM >= 0 {
			s.Around = []hotzone.FenceDistance{{StoreID: "s", OutsideM: w.outsideM}}
		}
		_, changes := StepPresence(&p, s, time.Duration(policy.DwellS)*time.Second, "d", nil)
		var got []string
		for _, c := range changes {
			got = append(got, string(c.Type))
		}
		if strings.Join(got, " ") != w.want {
			t.Errorf("%s: ping %d (+%v, %.0f m outside, ±%.0f m): changes %q, want %q", name, i, w.after, w.outsideM, w.accuracy, got, w.want)
		}
	}
}

func TestPresenceWalks(t *testing.T) {
	policy := hotzone.DefaultPolicy()
	policy.DwellS = 120
	fast := 5.0
	policy.MaxSpeedMPS = &fast
	s := time.Second
	runWalk(t, "jitter at the edge", policy, []walkPing{
		{0, 0, 20, 0, "entered"},
		{10 * s, 8, 20, 0, ""}, // just outside, within its accuracy: may be inside
		{20 * s, 0, 20, 0, ""},
		{30 * s, 15, 20, 0, ""},
		{40 * s, 0, 20, 0, ""},
		{50 * s, 5, 20, 0, ""},
		{60 * s, 12, 20, 0, "exited"}, // the second just outside in a row
		{70 * s, 0, 20, 0, "entered"},
	})
	runWalk(t, "leaving for good", policy, []walkPing{
		{0, 0, 10, 0, "entered"},
		{10 * s, 80, 10, 0, "exited"}, // outside by more than its accuracy
		{20 * s, -1, 10, 0, ""},       // far from everything
	})
	runWalk(t, "a narrow band even for a precise ping", policy, []walkPing{
		{0, 0, 2, 0, "entered"},
		{10 * s, 9, 2, 0, ""}, // within the 10 m floor
		{20 * s, 0, 2, 0, ""},
	})
	// A drive-by at 15 m/s: a 200 m fence crossed in about 27 s, pinged
	// every 5 s, enters nothing and so exits nothing.
	var drive []walkPing
	for i := range 8 {
		out := 0.0
		if i == 0 || i == 7 {
			out = 40
		}
		drive = append(drive, walkPing{time.Duration(i) * 5 * s, out, 10, 15, ""})
	}
	runWalk(t, "drive-by at 15 m/s", policy, drive)
	runWalk(t, "slowing down to walk in", policy, []walkPing{
		{0, 0, 10, 15, ""},
		{5 * s, 0, 10, 1.2, "entered"},
		{10 * s, 0, 10, 14, ""}, // a fast ping inside keeps the visit
	})
	runWalk(t, "dwell reached once", policy, []walkPing{
		{0, 0, 10, 0, "entered"},
		{60 * s, 0, 10, 0, ""},
		{119 * s, 0, 10, 0, ""},
		{120 * s, 0, 10, 0, "dwelled"},
		{300 * s, 0, 10, 0, ""},
		{400 * s, 50, 10, 0, "exited"},
	})
	runWalk(t, "out of order", policy, []walkPing{
		{10 * s, 0, 10, 0, "entered"},
		{5 * s, 80, 10, 0, ""}, // older than what was applied
		{20 * s, 0, 10, 0, ""},
	})
}

func TestPresenceTimesOut(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var p hotzone.Presence
	inside := []hotzone.FenceDistance{{StoreID: "a", OutsideM: 0}, {StoreID: "b", OutsideM: 0}}
	StepPresence(&p, Sighting{At: t0, AccuracyM: 10, Around: inside}, time.Minute, "d", nil)
	// Seen inside for ten more minutes by pings that changed nothing
	// written; the last of them is the device's last qualifying ping.
	last := t0.Add(10 * time.Minute)
	changed, changes := TimeOut(&p, "d", last, nil)
	if !changed || len(p.Visits) != 0 || len(changes) != 2 {
		t.Fatalf("time-out: changed %v, %d visits left, %d changes; want every visit exited", changed, len(p.Visits), len(changes))
	}
	for _, c := range changes {
		if c.Type != hotzone.Exited || !c.At.Equal(last) || c.DurationS() != 600 {
			t.Errorf("time-out change %+v (%d s), want exited at the last ping after 600 s", c, c.DurationS())
		}
	}
	if changed, _ := TimeOut(&p, "d", last, nil); changed {
		t.Error("a device with no visit timed out again")
	}
}

// TestPresenceWithFences runs the rules on real fences, as the engine
// builds sightings: distances from geo, the band from the accuracy.
func TestPresenceWithFences(t *testing.T) {
	f := &geo.Fence{Circle: &geo.Circle{Center: geo.Point{Lat: 52.37, Lon: 4.89}, RadiusM: 100}}
	perM := 1 / (geo.EarthRadiusM * 3.141592653589793 / 180)
	at := func(metresNorth, accuracy float64) []hotzone.FenceDistance {
		p := geo.Point{Lat: 52.37 + metresNorth*perM, Lon: 4.89}
		if d := f.OutsideM(p); d <= hotzone.PresenceBandM(accuracy) {
			return []hotzone.FenceDistance{{StoreID: "s", OutsideM: d}}
		}
		return nil
	}
	t0 := time.Now()
	var p hotzone.Presence
	var types []string
	for i, m := range []float64{50, 105, 95, 104, 112, 300} { // 100 m radius, ±10 m
		_, cs := StepPresence(&p, Sighting{At: t0.Add(time.Duration(i) * time.Second), AccuracyM: 10, Around: at(m, 10)}, time.Hour, "d", nil)
		for _, c := range cs {
			types = append(types, string(c.Type)+"@"+string(rune('0'+i)))
		}
	}
	if want := []string{"entered@0", "exited@4"}; !slices.Equal(types, want) {
		t.Errorf("changes %v, want %v", types, want)
	}
}
