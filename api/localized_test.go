package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLocalizedDelivery: each device gets the text of its locale through
// the real apns2 and firebase clients: the exact tag, else its
// language's, else the default; a device with no locale or an unknown
// one gets the default.
func TestLocalizedDelivery(t *testing.T) {
	d := newDeliveryEnv(t)
	devices := []struct{ id, platform, locale, want string }{
		{"ios-dech", "ios", "de-CH", "Heiss"},   // de-CH → de
		{"and-de", "android", "de", "Heiss"},    // exact
		{"ios-nlbe", "ios", "nl-BE", "Warm BE"}, // exact
		{"and-nl", "android", "nl", "Hot"},      // nl-BE is not nl: default
		{"ios-none", "ios", "", "Hot"},          // no locale
		{"and-xx", "android", "xx-YY", "Hot"},   // unknown tag
		{"ios-case", "ios", "NL-be", "Warm BE"}, // tags compare case-insensitively
	}
	tokens := map[string]string{}
	for _, dv := range devices {
		body := map[string]any{"platform": dv.platform, "opt_in": true, "timezone": "America/New_York"}
		if dv.locale != "" {
			body["locale"] = dv.locale
		}
		if dv.platform == "ios" {
			tokens[dv.id] = tokenFor(dv.id)
			body["push"] = map[string]any{"provider": "apns", "token": tokens[dv.id]}
		} else {
			tokens[dv.id] = "fcm-" + dv.id
			body["push"] = map[string]any{"provider": "fcm", "token": tokens[dv.id]}
		}
		d.must(201, "PUT", "/v1/devices/"+dv.id, d.brand.AppKey, body)
		d.must(200, "POST", "/v1/pings", d.brand.AppKey, ping(dv.id, 40.7128, -74.0060))
	}
	var ev eventOut
	r := d.must(201, "POST", "/v1/stores/a/events", d.brand.AdminKey, map[string]any{"title": "Hot", "body": "Fresh now",
		"localized": map[string]any{"de": map[string]any{"title": "Heiss", "body": "Frisch"}, "nl-BE": map[string]any{"title": "Warm BE", "body": "Vers"}}})
	r.decode(t, &ev)
	var shown struct {
		Localized map[string]struct{ Title, Body string } `json:"localized"`
	}
	r.decode(t, &shown)
	if shown.Localized["de"].Title != "Heiss" || shown.Localized["nl-BE"].Body != "Vers" {
		t.Errorf("the event's localized as answered: %s", r.Body)
	}
	d.waitSettled(len(devices))
	titles, nids := map[string]string{}, map[string]string{}
	for _, p := range d.apns.Received() {
		var m struct {
			APS struct {
				Alert struct{ Title string } `json:"alert"`
			} `json:"aps"`
			NotificationID string `json:"notification_id"`
		}
		if err := json.Unmarshal(p.Payload, &m); err != nil {
			t.Fatal(err)
		}
		titles[p.Token], nids[p.Token] = m.APS.Alert.Title, m.NotificationID
	}
	for _, m := range d.fcm.Received() {
		titles[m.Token], nids[m.Token] = m.Notification.Title, m.Data["notification_id"]
	}
	for _, dv := range devices {
		if got := titles[tokens[dv.id]]; got != dv.want {
			t.Errorf("%s (locale %q) got %q, want %q", dv.id, dv.locale, got, dv.want)
		}
	}
	// Each push carries its own notification's id, which the app hands
	// back when its user taps it.
	var log struct {
		Items []struct {
			ID       string `json:"id"`
			DeviceID string `json:"device_id"`
		} `json:"items"`
	}
	d.must(200, "GET", "/v1/notifications?event_id="+ev.ID, d.brand.AdminKey, nil).decode(t, &log)
	for _, n := range log.Items {
		if got := nids[tokens[n.DeviceID]]; got != n.ID {
			t.Errorf("%s's push carries notification_id %q, want %q", n.DeviceID, got, n.ID)
		}
		d.must(204, "POST", "/v1/notifications/"+n.ID+"/open", d.brand.AppKey, map[string]any{"device_id": n.DeviceID})
	}
	var live struct{ Counts struct{ Opened int } }
	d.must(200, "GET", "/v1/stores/a/events/live", d.brand.AdminKey, nil).decode(t, &live)
	if live.Counts.Opened != len(devices) {
		t.Errorf("opened %d after every device reported its tap, want %d", live.Counts.Opened, len(devices))
	}
	// Without localized, answers show null.
	d.must(200, "DELETE", "/v1/stores/a/events/live", d.brand.AdminKey, nil)
	r = d.must(201, "POST", "/v1/stores/a/events", d.brand.AdminKey, map[string]any{"title": "Hot", "body": "Again"})
	if !strings.Contains(string(r.Body), `"localized":null`) {
		t.Errorf("an event without languages: %s, want \"localized\":null", r.Body)
	}
}

// TestLocalizedValidated: tags, texts and each variant's payload size
// are checked at the start, each 400 naming its field; nothing starts.
func TestLocalizedValidated(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7, -74, 200))
	long := strings.Repeat("€", 500) // 1,500 bytes of body
	for _, c := range []struct {
		localized any
		field     string
	}{
		{map[string]any{"d": map[string]any{"title": "T", "body": "B"}}, "localized.d"},
		{map[string]any{"de_CH": map[string]any{"title": "T", "body": "B"}}, "localized.de_CH"},
		{map[string]any{"de": map[string]any{"body": "B"}}, "localized.de.title"},
		{map[string]any{"de": map[string]any{"title": "T", "body": ""}}, "localized.de.body"},
		{map[string]any{"de": map[string]any{"title": "T", "body": "B"}, "DE": map[string]any{"title": "T", "body": "B"}}, "localized.de"},
		{map[string]any{"de": map[string]any{"title": strings.Repeat("€", 100), "body": long + long[:0]}, "fr": map[string]any{"title": "T", "body": "B"}}, ""},
		{map[string]any{"de": "Heiss"}, "localized.de"},
		{[]string{"de"}, "localized"},
	} {
		r := e.do("POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now", "localized": c.localized})
		if c.field == "" {
			// 100 + 500 three-byte characters fit a payload; the next case
			// makes one that does not.
			if r.Code != 201 {
				t.Fatalf("a long but fitting variant = %d %s", r.Code, r.Body)
			}
			e.must(200, "DELETE", "/v1/stores/s/events/live", b.AdminKey, nil)
			continue
		}
		checkProblem(t, "localized "+c.field, r, 400, c.field)
	}
	// A variant whose payload is over 4 KB once escaped (control
	// characters take six bytes each in JSON) beside a long url, while
	// the default's fits.
	esc := strings.Repeat("\u0001", 500)
	r := e.do("POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now", "url": "app://x/" + strings.Repeat("a", 1900),
		"localized": map[string]any{"de": map[string]any{"title": strings.Repeat("\u0001", 100), "body": esc}}})
	checkProblem(t, "a variant over 4 KB", r, 400, "localized.de")
	e.must(404, "GET", "/v1/stores/s/events/live", b.AdminKey, nil)
}
