package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone/hook"
	"github.com/hotzone/hotzone/hook/deliver"
)

type webhookOut struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events"`
	Secret       string     `json:"secret"`
	CreatedAt    time.Time  `json:"created_at"`
	Status       string     `json:"status"`
	FailingSince *time.Time `json:"failing_since"`
}

type deliveryOut struct {
	ID       string          `json:"id"`
	EventID  string          `json:"event_id"`
	Type     string          `json:"type"`
	Status   string          `json:"status"`
	Attempts int             `json:"attempts"`
	Data     json.RawMessage `json:"data"`
}

// TestWebhookURLsRefused: without --webhook-allow-private a URL on
// loopback, a private or a link-local address is a 400 naming url, and
// so is anything but http(s); events are checked one by one.
func TestWebhookURLsRefused(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	for _, c := range []struct {
		body   map[string]any
		fields []string
	}{
		{map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "http://localhost/hook", "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "https://10.1.2.3/hook", "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "http://169.254.169.254/latest", "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "http://[::1]/hook", "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "ftp://example.com/x", "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "https://user:pw@example.com/x", "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "https://example.com/x"}, []string{"events"}},
		{map[string]any{"url": "https://example.com/x", "events": []string{}}, []string{"events"}},
		{map[string]any{"url": "https://example.com/x", "events": []string{"entered", "walked"}}, []string{"events[1]"}},
		{map[string]any{"url": "https://example.com/x", "events": []string{"exited", "exited"}}, []string{"events[1]"}},
		{map[string]any{"url": 5, "events": []string{"entered"}}, []string{"url"}},
		{map[string]any{"url": "https://example.com/x", "events": []string{"entered"}, "secret": "mine"}, []string{"secret"}},
	} {
		checkProblem(t, "POST /v1/webhooks", e.do("POST", "/v1/webhooks", b.AdminKey, c.body), 400, c.fields...)
	}
	e.must(403, "POST", "/v1/webhooks", b.AppKey, map[string]any{"url": "https://example.com/x", "events": []string{"entered"}})
	// A name that does not resolve (here: no such domain, or no DNS at
	// all) is accepted; its deliveries resolve it again.
	var w webhookOut
	e.must(201, "POST", "/v1/webhooks", b.AdminKey, map[string]any{"url": "https://receiver.invalid/hook", "events": []string{"entered"}}).decode(t, &w)
	e.must(204, "DELETE", "/v1/webhooks/"+w.ID, b.AdminKey, nil)
	var list page[webhookOut]
	e.must(200, "GET", "/v1/webhooks", b.AdminKey, nil).decode(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("after refused creates: %d webhooks, want none", len(list.Items))
	}
}

// TestWebhooksEndToEnd: a webhook on a local receiver (the server allows
// private addresses) gets, signed, a device's entered and exited in
// order, the event's start, and the notification's result; the secret
// is answered only on create; deliveries are listed; a test delivery is
// queued; only a failed delivery may be retried.
func TestWebhooksEndToEnd(t *testing.T) {
	clock := newClock("2026-11-22T15:00:00Z")
	e := newManualEnv(t, Options{Now: clock.now, WebhookAllowPrivate: true})
	b := e.brand("Krispy")
	var (
		mu   sync.Mutex
		got  []string            // "type device" in arrival order
		seen = map[string]bool{} // the first request of each delivery fails with a 503
	)
	var secret string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := hook.Verify(r.Header.Get(hook.SignatureHeader), body, []byte(secret), clock.now(), hook.DefaultTolerance); err != nil {
			t.Errorf("delivery not verified: %v", err)
		}
		var m struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				DeviceID string `json:"device_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &m)
		if m.Type == "webhook.test" {
			w.WriteHeader(400) // a final failure: not retried
			return
		}
		if !seen[m.ID] {
			seen[m.ID] = true
			w.WriteHeader(503)
			return
		}
		got = append(got, m.Type+" "+m.Data.DeviceID)
	}))
	defer srv.Close()

	var w webhookOut
	r := e.must(201, "POST", "/v1/webhooks", b.AdminKey, map[string]any{"url": srv.URL + "/hook",
		"events": []string{"entered", "exited", "event.started", "notification.sent"}})
	r.decode(t, &w)
	secret = w.Secret
	if !strings.HasPrefix(w.Secret, "whsec_") || w.Status != "active" || w.ID == "" || r.Header.Get("Location") != "/v1/webhooks/"+w.ID {
		t.Fatalf("POST /v1/webhooks = %s, want an active webhook with a whsec_ secret and a Location", r.Body)
	}
	var again webhookOut
	e.must(200, "GET", "/v1/webhooks/"+w.ID, b.AdminKey, nil).decode(t, &again)
	if again.Secret != "" || again.URL != w.URL || !slices.Equal(again.Events, w.Events) {
		t.Errorf("GET /v1/webhooks/{id} = %+v, want it without the secret", again)
	}
	e.must(404, "GET", "/v1/webhooks/nope", b.AdminKey, nil)

	e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 200))
	e.device(b.AppKey, "d1")
	e.startEvent(b.AdminKey, "main-st", map[string]any{"title": "Hot", "body": "Now"})
	e.engine.Wait()
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.7128, -74.0060)) // entered, notified
	e.drain()                                                                 // notification.sent
	clock.advance(time.Minute)
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.73, -74.0060)) // far: exited

	d := deliver.New(e.db, deliver.Options{Now: clock.now, Client: hook.NewClient(hook.ClientOptions{AllowPrivate: true}), Rand: func() float64 { return 0 }})
	for range 20 {
		if _, err := d.Round(t.Context()); err != nil {
			t.Fatal(err)
		}
		d.Wait()
		clock.advance(time.Minute)
	}
	mu.Lock()
	order := slices.Clone(got)
	mu.Unlock()
	var mine []string
	for _, g := range order {
		if strings.HasSuffix(g, " d1") {
			mine = append(mine, g)
		}
	}
	if want := []string{"entered d1", "notification.sent d1", "exited d1"}; !slices.Equal(mine, want) {
		t.Errorf("d1's deliveries arrived as %v, want %v (each after one 503)", mine, want)
	}
	if !slices.Contains(order, "event.started ") {
		t.Errorf("deliveries %v: no event.started", order)
	}

	var ds page[deliveryOut]
	e.must(200, "GET", "/v1/webhooks/"+w.ID+"/deliveries", b.AdminKey, nil).decode(t, &ds)
	if len(ds.Items) != 4 {
		t.Fatalf("deliveries: %d, want 4", len(ds.Items))
	}
	for _, it := range ds.Items {
		if it.Status != "delivered" || it.Attempts != 2 || it.EventID == "" {
			t.Errorf("delivery %+v, want delivered on the second attempt", it)
		}
	}
	checkProblem(t, "retry a delivered delivery", e.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/"+ds.Items[0].ID+"/retry", b.AdminKey, nil), 409)
	e.must(404, "POST", "/v1/webhooks/"+w.ID+"/deliveries/nope/retry", b.AdminKey, nil)
	var test deliveryOut
	e.must(202, "POST", "/v1/webhooks/"+w.ID+"/test", b.AdminKey, nil).decode(t, &test)
	if test.Type != "webhook.test" || test.Status != "pending" {
		t.Errorf("test delivery %+v, want a pending webhook.test", test)
	}
	if _, err := d.Round(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.Wait()
	var failed page[deliveryOut]
	e.must(200, "GET", "/v1/webhooks/"+w.ID+"/deliveries?status=failed", b.AdminKey, nil).decode(t, &failed)
	if len(failed.Items) != 1 || failed.Items[0].ID != test.ID {
		t.Fatalf("failed deliveries %+v, want the test one (answered 400)", failed.Items)
	}
	var retried deliveryOut
	e.must(202, "POST", "/v1/webhooks/"+w.ID+"/deliveries/"+test.ID+"/retry", b.AdminKey, nil).decode(t, &retried)
	if retried.ID == test.ID || retried.EventID != test.EventID || retried.Status != "pending" {
		t.Errorf("retry = %+v, want a new pending delivery of the same happening (%s)", retried, test.EventID)
	}
	checkProblem(t, "deliveries?status=bad", e.do("GET", "/v1/webhooks/"+w.ID+"/deliveries?status=bad", b.AdminKey, nil), 400, "status")
	var patched webhookOut
	e.must(200, "PATCH", "/v1/webhooks/"+w.ID, b.AdminKey, map[string]any{"status": "disabled"}).decode(t, &patched)
	if patched.Status != "disabled" {
		t.Errorf("PATCH status disabled = %+v", patched)
	}
	checkProblem(t, "PATCH a bad status", e.do("PATCH", "/v1/webhooks/"+w.ID, b.AdminKey, map[string]any{"status": "off"}), 400, "status")
	e.must(204, "DELETE", "/v1/webhooks/"+w.ID, b.AdminKey, nil)
	e.must(404, "GET", "/v1/webhooks/"+w.ID, b.AdminKey, nil)
	e.must(404, "GET", "/v1/webhooks/"+w.ID+"/deliveries", b.AdminKey, nil)
}
