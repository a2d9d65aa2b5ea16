package api

import (
	"strings"
	"testing"
	"time"
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
		{map[string]any{}, "audience.any"},
		{map[string]any{"any": []string{}}, "audience.any"},
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

// TestPresets: an admin saves audiences and message templates, each
// validated as an event's audience and text are; a tablet (manager key)
// lists and reads them but may not change them.
func TestPresets(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z")
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7, -74, 200))
	var mk struct {
		Key string `json:"manager_key"`
	}
	e.must(201, "POST", "/v1/stores/s/manager-keys", b.AdminKey, map[string]any{"label": "tablet"}).decode(t, &mk)

	r := e.must(201, "PUT", "/v1/audiences/gold-commuters", b.AdminKey, map[string]any{"name": "Gold commuters",
		"any": []string{"persona:commuter"}, "all": []string{"loyalty:gold"}})
	if !strings.Contains(string(r.Body), `"id":"gold-commuters"`) || !strings.Contains(string(r.Body), `"none":[]`) ||
		!strings.Contains(string(r.Body), `"created_at":"2026-11-22T15:00:00Z"`) {
		t.Errorf("PUT /v1/audiences/gold-commuters = %s", r.Body)
	}
	clock.advance(time.Minute)
	r = e.must(200, "PUT", "/v1/audiences/gold-commuters", b.AdminKey, map[string]any{"name": "Gold", "all": []string{"loyalty:gold"}})
	if !strings.Contains(string(r.Body), `"created_at":"2026-11-22T15:00:00Z"`) || !strings.Contains(string(r.Body), `"updated_at":"2026-11-22T15:01:00Z"`) ||
		!strings.Contains(string(r.Body), `"any":[]`) {
		t.Errorf("PUT again = %s, want the creation kept and the lists replaced", r.Body)
	}
	e.must(201, "PUT", "/v1/templates/hot-now", b.AdminKey, map[string]any{"name": "Hot now", "title": "Hot now", "body": "Fresh glazed",
		"url": "app://store", "duration_s": 900, "localized": map[string]any{"de": map[string]any{"title": "Frisch", "body": "Jetzt"}}})
	for _, path := range []string{"/v1/audiences", "/v1/templates"} {
		var list page[map[string]any]
		e.must(200, "GET", path, mk.Key, nil).decode(t, &list)
		if len(list.Items) != 1 {
			t.Errorf("GET %s as the tablet: %d items, want 1", path, len(list.Items))
		}
	}
	var tpl map[string]any
	e.must(200, "GET", "/v1/templates/hot-now", mk.Key, nil).decode(t, &tpl)
	if tpl["title"] != "Hot now" || tpl["duration_s"] != 900.0 || tpl["localized"] == nil {
		t.Errorf("GET /v1/templates/hot-now = %v", tpl)
	}
	e.must(403, "PUT", "/v1/templates/mine", mk.Key, map[string]any{"name": "x", "title": "x", "body": "x"})
	e.must(403, "DELETE", "/v1/audiences/gold-commuters", mk.Key, nil)
	for _, c := range []struct {
		path  string
		body  map[string]any
		field string
	}{
		{"/v1/audiences/a", map[string]any{"any": []string{"x"}}, "name"},
		{"/v1/audiences/a", map[string]any{"name": "A"}, "any"},
		{"/v1/audiences/a", map[string]any{"name": "A", "all": []string{"Bad"}}, "all[0]"},
		{"/v1/audiences/a%20b", map[string]any{"name": "A", "all": []string{"ok"}}, "audience_id"},
		{"/v1/templates/t", map[string]any{"name": "T", "title": "T"}, "body"},
		{"/v1/templates/t", map[string]any{"name": "T", "title": "T", "body": "B", "duration_s": 5}, "duration_s"},
		{"/v1/templates/t", map[string]any{"name": "T", "title": "T", "body": "B", "url": "no scheme"}, "url"},
		{"/v1/templates/t", map[string]any{"name": "T", "title": "T", "body": "B", "localized": map[string]any{"x": map[string]any{"title": "a", "body": "b"}}}, "localized.x"},
		{"/v1/templates/t", map[string]any{"name": "T", "title": "T", "body": "B", "extra": 1}, "extra"},
	} {
		checkProblem(t, "PUT "+c.path, e.do("PUT", c.path, b.AdminKey, c.body), 400, c.field)
	}
	e.must(404, "GET", "/v1/templates/t", b.AdminKey, nil)
	e.must(204, "DELETE", "/v1/audiences/gold-commuters", b.AdminKey, nil)
	e.must(404, "GET", "/v1/audiences/gold-commuters", b.AdminKey, nil)
	e.must(404, "DELETE", "/v1/audiences/gold-commuters", b.AdminKey, nil)
}
