package api

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// logEntry is a delivery-log entry as the tests read it.
type logEntry struct {
	ID       string  `json:"id"`
	EventID  string  `json:"event_id"`
	DeviceID string  `json:"device_id"`
	Status   string  `json:"status"`
	Reason   *string `json:"reason"`
}

// eventLog reads every log entry of an event through the API.
func (e *env) eventLog(key, eventID string) []logEntry {
	e.t.Helper()
	var all []logEntry
	cursor := ""
	for {
		var pg struct {
			Items      []logEntry `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}
		e.must(200, "GET", "/v1/notifications?limit=1000&event_id="+eventID+"&cursor="+cursor, key, nil).decode(e.t, &pg)
		all = append(all, pg.Items...)
		if pg.NextCursor == "" {
			return all
		}
		cursor = pg.NextCursor
	}
}

// pingAll sends each device's ping at a point through batches, and
// answers each device's notification answers as "status[/reason]".
func (e *env) pingAll(key string, ids []string, lat, lon, accuracy float64) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for from := 0; from < len(ids); from += maxBatch {
		var pings []any
		for _, id := range ids[from:min(from+maxBatch, len(ids))] {
			p := ping(id, lat, lon)
			p["accuracy_m"] = accuracy
			pings = append(pings, p)
		}
		var res struct {
			Results []struct { // in the pings' order
				Notifications []struct {
					Status string  `json:"status"`
					Reason *string `json:"reason"`
				} `json:"notifications"`
			} `json:"results"`
		}
		e.must(200, "POST", "/v1/pings/batch", key, map[string]any{"pings": pings}).decode(e.t, &res)
		for i, r := range res.Results {
			id := ids[from+i]
			for _, n := range r.Notifications {
				s := n.Status
				if n.Reason != nil {
					s += "/" + *n.Reason
				}
				out[id] = append(out[id], s)
			}
		}
	}
	return out
}

type reportJSON struct {
	EventID      string       `json:"event_id"`
	Notified     int          `json:"notified"`
	HeldBack     int          `json:"held_back"`
	Opened       int          `json:"opened"`
	Visits       hotzone.Pair `json:"visits"`
	AlreadyThere hotzone.Pair `json:"already_there"`
	VisitRate    struct {
		Notified *float64 `json:"notified"`
		HeldBack *float64 `json:"held_back"`
	} `json:"visit_rate"`
	Lift *struct {
		Difference float64    `json:"difference"`
		Ratio      *float64   `json:"ratio"`
		CI95       [2]float64 `json:"ci95"`
	} `json:"lift"`
	TooSmall     bool `json:"too_small"`
	AttributionS int  `json:"attribution_s"`
}

func (e *env) report(key, eventID string) reportJSON {
	e.t.Helper()
	var r reportJSON
	e.must(200, "GET", "/v1/events/"+eventID+"/report", key, nil).decode(e.t, &r)
	return r
}

// TestOpens: a tap reported once or many times counts once; only the
// device's own notification of the brand is found.
func TestOpens(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z")
	e := newManualEnv(t, Options{Now: clock.now})
	b, other := e.brand("Krispy"), e.brand("Other")
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7128, -74.0060, 300))
	for _, id := range []string{"d1", "d2"} {
		e.device(b.AppKey, id)
		e.must(200, "POST", "/v1/pings", b.AppKey, ping(id, 40.7128, -74.0060))
	}
	e.device(other.AppKey, "d1")
	var ev struct{ ID string }
	e.must(201, "POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now"}).decode(t, &ev)
	e.engine.Wait()
	e.drain()
	ids := map[string]string{}
	for _, n := range e.eventLog(b.AdminKey, ev.ID) {
		ids[n.DeviceID] = n.ID
	}
	open := func(key, id string, body any) response {
		return e.do("POST", "/v1/notifications/"+id+"/open", key, body)
	}
	for range 3 {
		if r := open(b.AppKey, ids["d1"], map[string]any{"device_id": "d1"}); r.Code != 204 || len(r.Body) != 0 {
			t.Fatalf("open d1's notification = %d %s, want 204 and no body", r.Code, r.Body)
		}
	}
	for _, c := range []struct {
		key, id string
		body    any
		want    int
		field   string
	}{
		{b.AppKey, ids["d1"], map[string]any{"device_id": "d2"}, 404, ""},
		{b.AppKey, "nope", map[string]any{"device_id": "d1"}, 404, ""},
		{other.AppKey, ids["d1"], map[string]any{"device_id": "d1"}, 404, ""},
		{b.AppKey, ids["d1"], map[string]any{}, 400, "device_id"},
		{b.AppKey, ids["d1"], map[string]any{"device_id": 7}, 400, "device_id"},
		{b.AppKey, ids["d1"], map[string]any{"device_id": ""}, 400, "device_id"},
		{b.AppKey, ids["d1"], map[string]any{"device_id": "d1", "extra": 1}, 400, "extra"},
		{b.AppKey, ids["d1"], "{", 400, ""},
	} {
		r := open(c.key, c.id, c.body)
		if r.Code != c.want || (c.field != "" && !strings.Contains(string(r.Body), `"field":"`+c.field+`"`)) {
			t.Errorf("open %s with %v = %d %s, want %d naming %q", c.id, c.body, r.Code, r.Body, c.want, c.field)
		}
	}
	e.must(204, "POST", "/v1/notifications/"+ids["d2"]+"/open", b.AdminKey, map[string]any{"device_id": "d2"})
	var live struct{ Counts hotzone.Counts }
	e.must(200, "GET", "/v1/stores/s/events/live", b.AdminKey, nil).decode(t, &live)
	if live.Counts.Opened != 2 || live.Counts.DevicesInFence != 2 {
		t.Errorf("counts after opens: %+v, want opened 2 of 2", live.Counts)
	}
	if r := e.report(b.AdminKey, ev.ID); r.Opened != 2 || r.Notified != 2 {
		t.Errorf("report after opens: %+v", r)
	}
}

// TestHoldout: of 10,000 devices an event holds back its share within
// 1.5 points, each by a hash of event and device: a restart and pings
// again change no decision. An event without a share takes the
// policy's, and answers null.
func TestHoldout(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z")
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.uncapped(b.AdminKey, map[string]any{"holdout_pct": 30})
	e.must(201, "PUT", "/v1/stores/a", b.AdminKey, circleStore("A", 40.7128, -74.0060, 300))
	e.must(201, "PUT", "/v1/stores/b", b.AdminKey, circleStore("B", 40.7128, -74.0060, 300))
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%05d", i)
		e.device(b.AppKey, ids[i])
	}
	e.pingAll(b.AppKey, ids, 40.7128, -74.0060, 10)
	start := func(store string, body map[string]any) string {
		var ev struct {
			ID         string `json:"id"`
			HoldoutPct *int   `json:"holdout_pct"`
		}
		r := e.must(201, "POST", "/v1/stores/"+store+"/events", b.AdminKey, body)
		r.decode(t, &ev)
		if got, want := ev.HoldoutPct, body["holdout_pct"]; (got == nil) != (want == nil) || (got != nil && *got != want) {
			t.Errorf("the event answered holdout_pct %v, want %v", got, want)
		}
		e.engine.Wait()
		return ev.ID
	}
	a := start("a", map[string]any{"title": "Hot", "body": "Now", "holdout_pct": 20})
	bEvent := start("b", map[string]any{"title": "Hot", "body": "Now"})
	decisions := func(eventID string) map[string]string {
		out := map[string]string{}
		for _, n := range e.eventLog(b.AdminKey, eventID) {
			out[n.DeviceID] = n.Status
			if n.Reason != nil {
				out[n.DeviceID] += "/" + *n.Reason
			}
		}
		return out
	}
	check := func(eventID string, pct int) map[string]string {
		t.Helper()
		d := decisions(eventID)
		held := 0
		for id, s := range d {
			switch s {
			case "suppressed/holdout":
				held++
			case "queued":
			default:
				t.Fatalf("%s: %s, want queued or held back", id, s)
			}
		}
		if len(d) != len(ids) {
			t.Fatalf("%d decisions, want %d", len(d), len(ids))
		}
		if share := float64(held) / 100; math.Abs(share-float64(pct)) > 1.5 {
			t.Errorf("event with %d%%: %.2f%% held back", pct, share)
		}
		r := e.report(b.AdminKey, eventID)
		if r.HeldBack != held || r.Notified != len(ids)-held {
			t.Errorf("report: %d notified, %d held back; the log has %d held back", r.Notified, r.HeldBack, held)
		}
		return d
	}
	beforeA, beforeB := check(a, 20), check(bEvent, 30)
	e.restart()
	answers := e.pingAll(b.AppKey, ids, 40.7128, -74.0060, 10)
	for _, id := range ids {
		want := []string{"suppressed/already_notified", "suppressed/already_notified"}
		for i, before := range []string{beforeA[id], beforeB[id]} {
			if before == "suppressed/holdout" {
				want[i] = "suppressed/holdout"
			}
		}
		if got := answers[id]; len(got) != 2 || !((got[0] == want[0] && got[1] == want[1]) || (got[0] == want[1] && got[1] == want[0])) {
			t.Fatalf("%s pinged after a restart: %v, want %v", id, got, want)
		}
	}
	afterA, afterB := check(a, 20), check(bEvent, 30)
	for _, id := range ids {
		if afterA[id] != beforeA[id] || afterB[id] != beforeB[id] {
			t.Fatalf("%s: decided %s and %s, after a restart and a ping %s and %s", id, beforeA[id], beforeB[id], afterA[id], afterB[id])
		}
	}
	for _, c := range []struct {
		v    any
		want int
	}{{-1, 400}, {51, 400}, {"10", 400}, {12.5, 400}, {nil, 201}} {
		e.must(200, "DELETE", "/v1/stores/a/events/live", b.AdminKey, nil)
		r := e.do("POST", "/v1/stores/a/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now", "holdout_pct": c.v})
		if r.Code != c.want || (c.want == 400 && !strings.Contains(string(r.Body), `"field":"holdout_pct"`)) {
			t.Errorf("holdout_pct %v = %d %s, want %d", c.v, r.Code, r.Body, c.want)
		}
		if r.Code == 201 {
			continue
		}
		e.must(201, "POST", "/v1/stores/a/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now"})
	}
	for _, v := range []any{-1, 51, 2.5} {
		if r := e.do("PATCH", "/v1/policy", b.AdminKey, map[string]any{"holdout_pct": v}); r.Code != 400 || !strings.Contains(string(r.Body), `"field":"holdout_pct"`) {
			t.Errorf("PATCH holdout_pct %v = %d %s, want 400 naming it", v, r.Code, r.Body)
		}
	}
	for _, v := range []any{299, 604801, 7200.5} {
		if r := e.do("PATCH", "/v1/policy", b.AdminKey, map[string]any{"attribution_s": v}); r.Code != 400 || !strings.Contains(string(r.Body), `"field":"attribution_s"`) {
			t.Errorf("PATCH attribution_s %v = %d %s, want 400 naming it", v, r.Code, r.Body)
		}
	}
	for _, v := range []any{0, 366, 1.5, "30"} {
		if r := e.do("PATCH", "/v1/policy", b.AdminKey, map[string]any{"retention_days": v}); r.Code != 400 || !strings.Contains(string(r.Body), `"field":"retention_days"`) {
			t.Errorf("PATCH retention_days %v = %d %s, want 400 naming it", v, r.Code, r.Body)
		}
	}
	if r := e.must(200, "PATCH", "/v1/policy", b.AdminKey, map[string]any{"retention_days": 365}); !strings.Contains(string(r.Body), `"retention_days":365`) {
		t.Errorf("PATCH retention_days 365 answered %s", r.Body)
	}
}

// TestVisitLift is a scripted event with known visits in each group:
// the report gives the known counts, rates, lift and interval. Visits
// count from qualifying pings inside the visit area within the window;
// devices already there are counted apart; an event that ended goes on
// counting, across a restart.
func TestVisitLift(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z")
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.uncapped(b.AdminKey, nil)
	const lat, lon = 40.7128, -74.0060
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", lat, lon, 400))
	e.must(201, "PUT", "/v1/stores/t", b.AdminKey, circleStore("T", lat+0.02, lon, 400))
	var mk struct {
		ManagerKey string `json:"manager_key"`
	}
	e.must(201, "POST", "/v1/stores/s/manager-keys", b.AdminKey, map[string]any{}).decode(t, &mk)
	var other struct {
		ManagerKey string `json:"manager_key"`
	}
	e.must(201, "POST", "/v1/stores/t/manager-keys", b.AdminKey, map[string]any{}).decode(t, &other)
	var ids, there []string
	for i := range 300 {
		id := fmt.Sprintf("dev-%03d", i)
		e.device(b.AppKey, id)
		if i < 16 {
			there = append(there, id)
		} else {
			ids = append(ids, id)
		}
	}
	away := lat + 0.0018 // 200 m north: in the fence, not in the visit area
	e.pingAll(b.AppKey, ids, away, lon, 10)
	e.pingAll(b.AppKey, there, lat, lon, 10)
	var ev struct{ ID string }
	e.must(201, "POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now", "holdout_pct": 50}).decode(t, &ev)
	e.engine.Wait()
	e.drain() // sent (dry run): an event's end expires what is still queued
	group := map[string]string{}
	for _, n := range e.eventLog(b.AdminKey, ev.ID) {
		group[n.DeviceID] = "notified"
		if n.Reason != nil && *n.Reason == hotzone.ReasonHoldout {
			group[n.DeviceID] = "held_back"
		}
	}
	var notified, held []string
	for _, id := range ids {
		if group[id] == "notified" {
			notified = append(notified, id)
		} else {
			held = append(held, id)
		}
	}
	var want hotzone.Pair
	for _, id := range there {
		if group[id] == "notified" {
			want.Notified++
		} else {
			want.HeldBack++
		}
	}
	if len(notified) < 80 || len(held) < 80 {
		t.Fatalf("groups of %d and %d: a 50%% holdout of 284 should give both more", len(notified), len(held))
	}
	clock.advance(10 * time.Minute)
	e.pingAll(b.AppKey, notified[:40], lat, lon, 10)    // visits
	e.pingAll(b.AppKey, notified[40:45], lat, lon, 900) // too inaccurate to count
	e.pingAll(b.AppKey, notified[45:50], away, lon, 10) // in the fence, not in the store
	e.pingAll(b.AppKey, held[:15], lat, lon, 10)        // visits
	e.pingAll(b.AppKey, there, lat, lon, 10)            // still there: no visit
	e.pingAll(b.AppKey, notified[:40], lat, lon, 10)    // visits count once
	// The event ends; visits still count, also after a restart.
	e.must(200, "DELETE", "/v1/stores/s/events/live", b.AdminKey, nil)
	e.restart()
	clock.advance(time.Hour)
	e.pingAll(b.AppKey, held[15:20], lat, lon, 10)
	clock.advance(time.Hour) // 2 h 10 min after the decisions: past the window
	e.pingAll(b.AppKey, notified[50:60], lat, lon, 10)
	e.pingAll(b.AppKey, held[20:30], lat, lon, 10)

	r := e.report(mk.ManagerKey, ev.ID)
	nN, nH := len(notified), len(held) // those compared: the ones not already there
	if r.Notified != nN+want.Notified || r.HeldBack != nH+want.HeldBack || r.AttributionS != 7200 || r.EventID != ev.ID {
		t.Fatalf("report: %+v; want %d notified and %d held back", r, nN+want.Notified, nH+want.HeldBack)
	}
	if r.Visits != (hotzone.Pair{Notified: 40, HeldBack: 20}) || r.AlreadyThere != want {
		t.Fatalf("visits %+v (want 40 and 20), already there %+v (want %+v)", r.Visits, r.AlreadyThere, want)
	}
	rN, rH := 40/float64(nN), 20/float64(nH)
	if math.Abs(*r.VisitRate.Notified-rN) > 1e-9 || math.Abs(*r.VisitRate.HeldBack-rH) > 1e-9 {
		t.Errorf("rates %v and %v, want %v and %v", *r.VisitRate.Notified, *r.VisitRate.HeldBack, rN, rH)
	}
	lo, hi := hotzone.DifferenceCI95(40, nN, 20, nH)
	if r.TooSmall || r.Lift == nil || math.Abs(r.Lift.Difference-(rN-rH)) > 1e-9 || math.Abs(*r.Lift.Ratio-rN/rH) > 1e-9 ||
		math.Abs(r.Lift.CI95[0]-lo) > 1e-9 || math.Abs(r.Lift.CI95[1]-hi) > 1e-9 {
		t.Errorf("lift %+v, want difference %v, ratio %v, ci95 [%v, %v]", r.Lift, rN-rH, rN/rH, lo, hi)
	}
	if !(r.Lift.CI95[0] < r.Lift.Difference && r.Lift.Difference < r.Lift.CI95[1]) {
		t.Errorf("the interval %v does not hold the difference %v", r.Lift.CI95, r.Lift.Difference)
	}
	e.must(403, "GET", "/v1/events/"+ev.ID+"/report", other.ManagerKey, nil)
	e.must(403, "GET", "/v1/events/"+ev.ID+"/report", b.AppKey, nil)
	e.must(404, "GET", "/v1/events/nope/report", b.AdminKey, nil)
	otherBrand := e.brand("Other")
	e.must(404, "GET", "/v1/events/"+ev.ID+"/report", otherBrand.AdminKey, nil)
}

// TestVisitArea: a store's own visit area is validated as a fence is,
// kept, answered, and is where visits count.
func TestVisitArea(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z")
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	body := circleStore("S", 40.7128, -74.0060, 400)
	if r := e.must(201, "PUT", "/v1/stores/s", b.AdminKey, body); !strings.Contains(string(r.Body), `"visit":null`) {
		t.Errorf("a store without a visit area answers %s, want visit null", r.Body)
	}
	for _, c := range []struct {
		visit any
		field string
	}{
		{map[string]any{"circle": map[string]any{"lat": 91, "lon": 0, "radius_m": 20}}, "visit.circle.lat"},
		{map[string]any{"circle": map[string]any{"lat": 40.7, "lon": -74}}, "visit.circle.radius_m"},
		{map[string]any{}, "visit"},
		{map[string]any{"polygon": map[string]any{"type": "Polygon", "coordinates": [][][]float64{{{0, 0}, {1, 0}, {0, 0}}}}}, "visit.polygon"},
		{"here", "visit"},
	} {
		body["visit"] = c.visit
		r := e.do("PUT", "/v1/stores/s", b.AdminKey, body)
		if r.Code != 400 || !strings.Contains(string(r.Body), `"field":"`+c.field) {
			t.Errorf("visit %v = %d %s, want 400 naming %s", c.visit, r.Code, r.Body, c.field)
		}
	}
	body["visit"] = map[string]any{"circle": map[string]any{"lat": 40.7146, "lon": -74.0060, "radius_m": 30}}
	if r := e.must(200, "PUT", "/v1/stores/s", b.AdminKey, body); !strings.Contains(string(r.Body), `"visit":{"circle":{"lat":40.7146,"lon":-74.006,"radius_m":30}}`) {
		t.Errorf("a store with a visit area answers %s", r.Body)
	}
	e.restart()
	if r := e.must(200, "GET", "/v1/stores/s", b.AdminKey, nil); !strings.Contains(string(r.Body), `"radius_m":30}}`) {
		t.Errorf("the visit area after a restart: %s", r.Body)
	}
	e.must(200, "PATCH", "/v1/policy", b.AdminKey, map[string]any{"quiet_hours": nil})
	for _, id := range []string{"walks-in", "at-centre"} {
		e.device(b.AppKey, id)
		e.must(200, "POST", "/v1/pings", b.AppKey, ping(id, 40.7110, -74.0060))
	}
	var ev struct{ ID string }
	e.must(201, "POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now"}).decode(t, &ev)
	e.engine.Wait()
	clock.advance(time.Minute)
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("walks-in", 40.7146, -74.0060))
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("at-centre", 40.7128, -74.0060)) // the fence's centre: not this store's visit area
	if r := e.report(b.AdminKey, ev.ID); r.Visits.Notified != 1 {
		t.Errorf("visits %+v, want the one that walked into the store's own area", r.Visits)
	}
	body["visit"] = nil
	if r := e.must(200, "PUT", "/v1/stores/s", b.AdminKey, body); !strings.Contains(string(r.Body), `"visit":null`) {
		t.Errorf("visit null again answers %s", r.Body)
	}
}

// TestDeviceData: an admin reads what is stored about a device (its
// registration, last position and log entries, newest first); an app
// key cannot; after erasure there is nothing.
func TestDeviceData(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z")
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.uncapped(b.AdminKey, nil)
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7128, -74.0060, 300))
	e.device(b.AppKey, "d1")
	e.device(b.AppKey, "silent")
	var evs []string
	for i := range 3 {
		var ev struct{ ID string }
		e.must(201, "POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": fmt.Sprint("Batch ", i)}).decode(t, &ev)
		evs = append(evs, ev.ID)
		clock.advance(time.Minute)
		p := ping("d1", 40.7128+float64(i)/10000, -74.0060)
		p["accuracy_m"] = 12
		e.must(200, "POST", "/v1/pings", b.AppKey, p)
		e.must(200, "DELETE", "/v1/stores/s/events/live", b.AdminKey, nil)
	}
	var got struct {
		ID           string         `json:"id"`
		Push         map[string]any `json:"push"`
		Tags         []string       `json:"tags"`
		LastPosition *struct {
			Lat, Lon  float64
			AccuracyM float64 `json:"accuracy_m"`
			TS        time.Time
		} `json:"last_position"`
		Notifications []logEntry `json:"notifications"`
	}
	r := e.must(200, "GET", "/v1/devices/d1", b.AdminKey, nil)
	r.decode(t, &got)
	if got.ID != "d1" || got.Push["provider"] != "apns" || got.Push["token"] != nil || got.Tags == nil {
		t.Errorf("the registration: %s", r.Body)
	}
	if p := got.LastPosition; p == nil || p.Lat != 40.7130 || p.AccuracyM != 12 || !p.TS.Equal(clock.now()) {
		t.Errorf("last position %+v, want the third ping's", p)
	}
	if len(got.Notifications) != 3 {
		t.Fatalf("%d notifications, want 3: %s", len(got.Notifications), r.Body)
	}
	for i, n := range got.Notifications {
		if want := evs[2-i]; n.DeviceID != "d1" || n.EventID != want {
			t.Errorf("entry %d: %+v, want event %s's (newest first)", i, n, want)
		}
	}
	if r := e.must(200, "GET", "/v1/devices/silent", b.AdminKey, nil); !strings.Contains(string(r.Body), `"last_position":null`) || !strings.Contains(string(r.Body), `"notifications":[]`) {
		t.Errorf("a device that never pinged: %s", r.Body)
	}
	e.must(403, "GET", "/v1/devices/d1", b.AppKey, nil)
	e.must(404, "GET", "/v1/devices/d1", e.brand("Other").AdminKey, nil)
	e.must(204, "DELETE", "/v1/devices/d1", b.AppKey, nil)
	e.must(404, "GET", "/v1/devices/d1", b.AdminKey, nil)
}
