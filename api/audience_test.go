package api

import (
	"strings"
	"testing"
)

// TestAudience: devices carry tags; an event's audience notifies only
// those it admits, the others get a suppressed entry with reason
// audience and count in devices_in_fence.
func TestAudience(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z") // 10:00 in New York
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7128, -74.0060, 300))
	devices := map[string][]string{
		"gold-commuter": {"persona:commuter", "loyalty:gold"},
		"commuter":      {"persona:commuter"},
		"gold-staff":    {"loyalty:gold", "staff", "persona:commuter"},
		"untagged":      nil,
	}
	for id, tags := range devices {
		body := map[string]any{"platform": "ios", "opt_in": true, "timezone": "America/New_York",
			"push": map[string]any{"provider": "apns", "token": tokenFor(id)}}
		if tags != nil {
			body["tags"] = tags
		}
		r := e.must(201, "PUT", "/v1/devices/"+id, b.AppKey, body)
		var out struct{ Tags []string }
		r.decode(t, &out)
		if strings.Join(out.Tags, ",") != strings.Join(tags, ",") || out.Tags == nil {
			t.Errorf("PUT %s answered tags %v, want %v (an array)", id, out.Tags, tags)
		}
		e.must(200, "POST", "/v1/pings", b.AppKey, ping(id, 40.7128, -74.0060))
	}
	r := e.must(201, "POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now",
		"audience": map[string]any{"any": []string{"persona:commuter"}, "all": []string{"loyalty:gold"}, "none": []string{"staff"}}})
	if !strings.Contains(string(r.Body), `"audience":{"any":["persona:commuter"],"all":["loyalty:gold"],"none":["staff"]}`) {
		t.Errorf("the event's audience as answered: %s", r.Body)
	}
	e.engine.Wait()
	var log struct {
		Items []struct {
			DeviceID string  `json:"device_id"`
			Status   string  `json:"status"`
			Reason   *string `json:"reason"`
		} `json:"items"`
	}
	e.must(200, "GET", "/v1/notifications", b.AdminKey, nil).decode(t, &log)
	got := map[string]string{}
	for _, n := range log.Items {
		got[n.DeviceID] = n.Status
		if n.Reason != nil {
			got[n.DeviceID] += "/" + *n.Reason
		}
	}
	want := map[string]string{"gold-commuter": "queued", "commuter": "suppressed/audience", "gold-staff": "suppressed/audience", "untagged": "suppressed/audience"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
	var live eventOut
	e.must(200, "GET", "/v1/stores/s/events/live", b.AdminKey, nil).decode(t, &live)
	if live.Counts["devices_in_fence"] != 4 || live.Counts["suppressed"] != 3 || live.Counts["queued"] != 1 {
		t.Errorf("counts %v, want 4 in the fence, 3 suppressed, 1 queued", live.Counts)
	}
	// A ping answers the same reason.
	var a pingAnswer
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("commuter", 40.7128, -74.0060)).decode(t, &a)
	if len(a.Notifications) != 1 || a.Notifications[0].Reason != "audience" {
		t.Errorf("ping of a device left out: %+v, want suppressed/audience", a.Notifications)
	}
	// Tags set later by an admin: the device qualifies at its next ping.
	e.must(200, "PUT", "/v1/devices/commuter", b.AdminKey, map[string]any{"platform": "ios", "opt_in": true, "timezone": "America/New_York",
		"push": map[string]any{"provider": "apns", "token": tokenFor("commuter")}, "tags": []string{"persona:commuter", "loyalty:gold"}})
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("commuter", 40.7128, -74.0060)).decode(t, &a)
	if len(a.Notifications) != 1 || a.Notifications[0].Status != "queued" {
		t.Errorf("ping after the admin tagged it gold: %+v, want queued", a.Notifications)
	}
}

// TestTagsAndAudienceValidated: bad tags and audiences are a 400 naming
// the field, and nothing is written.
func TestTagsAndAudienceValidated(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7, -74, 200))
	many := make([]string, 21)
	for i := range many {
		many[i] = "t" + strings.Repeat("x", i)
	}
	for _, c := range []struct {
		tags  any
		field string
	}{
		{[]string{"Persona"}, "tags[0]"},
		{[]string{"ok", "a b"}, "tags[1]"},
		{[]string{"ok", "ok"}, "tags[1]"},
		{[]string{""}, "tags[0]"},
		{[]string{strings.Repeat("a", 65)}, "tags[0]"},
		{many, "tags"},
		{"persona:commuter", "tags"},
	} {
		r := e.do("PUT", "/v1/devices/d1", b.AppKey, map[string]any{"platform": "ios", "opt_in": true, "tags": c.tags})
		checkProblem(t, "PUT device tags", r, 400, c.field)
	}
	e.must(404, "DELETE", "/v1/devices/d1", b.AppKey, nil)
	for _, c := range []struct {
		audience any
		field    string
	}{
		{map[string]any{}, "audience"},
		{map[string]any{"any": []string{}}, "audience"},
		{map[string]any{"any": []string{"Gold"}}, "audience.any[0]"},
		{map[string]any{"all": []string{"a", "a"}}, "audience.all[1]"},
		{map[string]any{"none": []string{"x y"}}, "audience.none[0]"},
		{map[string]any{"some": []string{"a"}}, "audience.some"},
		{[]string{"a"}, "audience"},
	} {
		r := e.do("POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now", "audience": c.audience})
		checkProblem(t, "POST event audience", r, 400, c.field)
	}
	e.must(404, "GET", "/v1/stores/s/events/live", b.AdminKey, nil)
	r := e.must(201, "POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now", "audience": nil})
	if !strings.Contains(string(r.Body), `"audience":null`) {
		t.Errorf("an event for everyone: %s, want \"audience\":null", r.Body)
	}
}
