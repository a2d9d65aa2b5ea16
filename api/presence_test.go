package api

import (
	"strings"
	"testing"
	"time"
)

// pingAnswer is the part of a ping's answer these tests read.
type pingAnswer struct {
	Notifications []struct {
		EventID string `json:"event_id"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
	} `json:"notifications"`
}

// pingFor sends a ping at the clock's time and answers its one
// notification entry as "status/reason".
func pingFor(t *testing.T, e *env, appKey string, body map[string]any) string {
	t.Helper()
	var a pingAnswer
	e.must(200, "POST", "/v1/pings", appKey, body).decode(t, &a)
	if len(a.Notifications) != 1 {
		t.Fatalf("ping %v answered %d notification entries, want 1", body, len(a.Notifications))
	}
	n := a.Notifications[0]
	return n.Status + "/" + n.Reason
}

// TestDwellTrigger: under the dwell trigger, a device inside when the
// event starts is not notified until it has stayed dwell_s; a walk-in
// during the event is notified once it has dwelled; a drive-by faster
// than max_speed_mps never is.
func TestDwellTrigger(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z") // 10:00 in New York: no quiet hours
	// No dispatcher running: the clock jumps past leases while a send
	// is out, which would make it send twice (as a crash would).
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 200))
	p := e.must(200, "PATCH", "/v1/policy", b.AdminKey, map[string]any{"trigger": "dwell", "dwell_s": 60, "max_speed_mps": 5}).json(t)
	if p["trigger"] != "dwell" || p["dwell_s"] != 60.0 || p["max_speed_mps"] != 5.0 {
		t.Fatalf("PATCH /v1/policy = %v, want the dwell trigger, 60 s, 5 m/s", p)
	}
	for _, id := range []string{"early", "walkin", "driver"} {
		e.device(b.AppKey, id)
	}
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("early", 40.7128, -74.0060)) // enters at t0
	clock.advance(10 * time.Second)
	var ev struct {
		ID string `json:"id"`
	}
	e.must(201, "POST", "/v1/stores/main-st/events", b.AdminKey, map[string]any{"title": "Hot now", "body": "Fresh"}).decode(t, &ev)
	e.engine.Wait() // the fan-out
	e.drain()
	if len(e.sends) != 0 {
		t.Fatalf("a device inside for 10 s of 60 was pushed by the fan-out: %v", e.sends)
	}
	clock.advance(20 * time.Second)
	if got := pingFor(t, e, b.AppKey, ping("early", 40.7128, -74.0060)); got != "suppressed/not_dwelled" {
		t.Errorf("ping 30 s after entering = %s, want suppressed/not_dwelled", got)
	}
	clock.advance(30 * time.Second) // 60 s inside
	if got := pingFor(t, e, b.AppKey, ping("early", 40.7128, -74.0060)); got != "queued/" {
		t.Errorf("ping after dwelling 60 s = %s, want queued", got)
	}

	// A walk-in during the event.
	if got := pingFor(t, e, b.AppKey, ping("walkin", 40.7129, -74.0061)); got != "suppressed/not_dwelled" {
		t.Errorf("walk-in's first ping = %s, want suppressed/not_dwelled", got)
	}
	clock.advance(61 * time.Second)
	if got := pingFor(t, e, b.AppKey, ping("walkin", 40.7128, -74.0060)); got != "queued/" {
		t.Errorf("walk-in after 61 s = %s, want queued", got)
	}

	// A drive-by at 15 m/s, then parked: it entered only when it slowed.
	fast := ping("driver", 40.7128, -74.0060)
	fast["speed_mps"] = 15
	if got := pingFor(t, e, b.AppKey, fast); got != "suppressed/too_fast" {
		t.Errorf("a ping at 15 m/s = %s, want suppressed/too_fast", got)
	}
	clock.advance(90 * time.Second)
	if got := pingFor(t, e, b.AppKey, fast); got != "suppressed/too_fast" {
		t.Errorf("still at 15 m/s 90 s later = %s, want suppressed/too_fast", got)
	}
	slow := ping("driver", 40.7128, -74.0060)
	slow["speed_mps"] = 0.5
	if got := pingFor(t, e, b.AppKey, slow); got != "suppressed/not_dwelled" {
		t.Errorf("slowed down inside = %s, want suppressed/not_dwelled (the fast pings entered nothing)", got)
	}

	e.drain()
	var log struct {
		Items []struct {
			ID       string `json:"id"`
			DeviceID string `json:"device_id"`
			Status   string `json:"status"`
		} `json:"items"`
	}
	e.must(200, "GET", "/v1/notifications?event_id="+ev.ID, b.AdminKey, nil).decode(t, &log)
	got := map[string]string{}
	for _, n := range log.Items {
		got[n.DeviceID] = n.Status
		if e.sends[n.ID] != 1 {
			t.Errorf("%s's notification was sent %d times, want once", n.DeviceID, e.sends[n.ID])
		}
	}
	if len(got) != 2 || got["early"] != "dry_run" || got["walkin"] != "dry_run" {
		t.Errorf("the event's log: %v, want early and walkin sent (dry run), the driver absent", got)
	}
	// Without the limit, speed does not matter.
	e.must(200, "PATCH", "/v1/policy", b.AdminKey, map[string]any{"max_speed_mps": nil, "trigger": "enter"})
	e.device(b.AppKey, "racer")
	fast["device_id"] = "racer"
	if got := pingFor(t, e, b.AppKey, fast); got != "queued/" {
		t.Errorf("a fast ping with max_speed_mps off and the enter trigger = %s, want queued", got)
	}
}

// TestPresenceFieldsValidated: the new policy members and speed_mps are
// checked like every other, each 400 naming its field.
func TestPresenceFieldsValidated(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"trigger": "walk"}, "trigger"},
		{map[string]any{"trigger": 1}, "trigger"},
		{map[string]any{"dwell_s": 29}, "dwell_s"},
		{map[string]any{"dwell_s": 3601}, "dwell_s"},
		{map[string]any{"max_speed_mps": 0}, "max_speed_mps"},
		{map[string]any{"max_speed_mps": 101}, "max_speed_mps"},
		{map[string]any{"max_speed_mps": "fast"}, "max_speed_mps"},
	} {
		r := e.do("PATCH", "/v1/policy", b.AdminKey, c.body)
		if r.Code != 400 || !strings.Contains(string(r.Body), `"`+c.field+`"`) {
			t.Errorf("PATCH /v1/policy %v = %d %s, want 400 naming %s", c.body, r.Code, r.Body, c.field)
		}
	}
	p := e.must(200, "GET", "/v1/policy", b.AdminKey, nil).json(t)
	if p["trigger"] != "enter" || p["dwell_s"] != 120.0 || p["max_speed_mps"] != nil {
		t.Errorf("policy after refused patches = %v, want the defaults: enter, 120, null", p)
	}
	for _, v := range []any{-1, 1000.5, "fast", true} {
		body := ping("d1", 40.7, -74)
		body["speed_mps"] = v
		r := e.do("POST", "/v1/pings", b.AppKey, body)
		if r.Code != 400 || !strings.Contains(string(r.Body), `"speed_mps"`) {
			t.Errorf("ping with speed_mps %v = %d %s, want 400 naming speed_mps", v, r.Code, r.Body)
		}
	}
	body := ping("d1", 40.7, -74)
	body["speed_mps"] = nil
	e.must(200, "POST", "/v1/pings", b.AppKey, body)
	body["speed_mps"] = 3.5
	e.must(200, "POST", "/v1/pings", b.AppKey, body)
}
