package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone/geo"
)

// noonNY is a weekday noon in New York: outside the default quiet hours
// for every device zone the tests use.
const noonNY = "2026-11-23T17:00:00Z"

type eventOut struct {
	ID       string         `json:"id"`
	StoreID  string         `json:"store_id"`
	Title    string         `json:"title"`
	Body     string         `json:"body"`
	URL      *string        `json:"url"`
	StartsAt time.Time      `json:"starts_at"`
	EndsAt   time.Time      `json:"ends_at"`
	Status   string         `json:"status"`
	Counts   map[string]int `json:"counts"`
}

type notifOut struct {
	ID       string  `json:"id"`
	EventID  string  `json:"event_id"`
	DeviceID string  `json:"device_id"`
	Status   string  `json:"status"`
	Reason   *string `json:"reason"`
	Attempts int     `json:"attempts"`
}

type pingOut struct {
	Inside []struct {
		StoreID string `json:"store_id"`
	} `json:"inside"`
	LiveEvents []struct {
		EventID string `json:"event_id"`
	} `json:"live_events"`
	Notifications []struct {
		EventID string `json:"event_id"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
	} `json:"notifications"`
}

// allNotifications pages through the delivery log.
func (e *env) allNotifications(key, query string) []notifOut {
	e.t.Helper()
	var all []notifOut
	cursor := ""
	for range 1000 {
		var pg struct {
			Items      []notifOut `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}
		e.must(200, "GET", "/v1/notifications?limit=1000&cursor="+cursor+"&"+query, key, nil).decode(e.t, &pg)
		all = append(all, pg.Items...)
		if pg.NextCursor == "" {
			return all
		}
		cursor = pg.NextCursor
	}
	e.t.Fatal("pagination never ended")
	return nil
}

func (e *env) startEvent(key, storeID string, body map[string]any) eventOut {
	e.t.Helper()
	var ev eventOut
	e.must(201, "POST", "/v1/stores/"+storeID+"/events", key, body).decode(e.t, &ev)
	return ev
}

// waitCounts polls the live event until cond holds (fan-out runs behind
// the POST); bounded.
func (e *env) waitCounts(key, storeID string, cond func(map[string]int) bool) map[string]int {
	e.t.Helper()
	var ev eventOut
	for range 500 {
		e.must(200, "GET", "/v1/stores/"+storeID+"/events/live", key, nil).decode(e.t, &ev)
		if cond(ev.Counts) {
			return ev.Counts
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("counts never settled: %v", ev.Counts)
	return nil
}

// TestEventScenario is the end-to-end scenario: 3 stores, 1,000
// devices with known positions, one event.
func TestEventScenario(t *testing.T) {
	clock := newClock(noonNY)
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Donuts")
	stores := []struct {
		id       string
		lat, lon float64
	}{{"a", 40.7128, -74.0060}, {"b", 40.7306, -73.9866}, {"c", 40.7580, -73.9855}}
	for _, s := range stores {
		e.must(201, "PUT", "/v1/stores/"+s.id, b.AdminKey, circleStore(s.id, s.lat, s.lon, 800))
	}
	fenceA := &geo.Fence{Circle: &geo.Circle{Center: geo.Point{Lat: stores[0].lat, Lon: stores[0].lon}, RadiusM: 800}}

	type dev struct {
		id               string
		p                geo.Point
		optIn, token     bool
		accuracy         float64
		ageS             int
		wantInA, wantMsg bool
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var devs []dev
	for i := range 1000 {
		s := stores[i%3]
		// Up to ~1.5 km from a store: some inside its fence, some not.
		d := rng.Float64() * 1500
		bearing := rng.Float64() * 2 * math.Pi
		p := geo.Point{Lat: s.lat + d*math.Cos(bearing)/111195, Lon: s.lon + d*math.Sin(bearing)/(111195*math.Cos(s.lat*math.Pi/180))}
		v := dev{id: fmt.Sprintf("d%04d", i), p: p, optIn: i%10 != 1, token: i%10 != 2, accuracy: 20, ageS: 10}
		if i%10 == 3 {
			v.accuracy = 900 // above max_accuracy_m: never qualifies
		}
		if i%10 == 4 {
			v.ageS = 600 // older than max_ping_age_s: never qualifies
		}
		v.wantInA = fenceA.Contains(p) && v.accuracy <= 500 && v.ageS <= 300
		v.wantMsg = v.wantInA && v.optIn && v.token
		devs = append(devs, v)
	}
	for _, d := range devs {
		body := map[string]any{"platform": "android", "opt_in": d.optIn, "timezone": "America/New_York"}
		if d.token {
			body["push"] = map[string]any{"provider": "fcm", "token": "tok-" + d.id}
		}
		e.must(201, "PUT", "/v1/devices/"+d.id, b.AppKey, body)
		p := map[string]any{"device_id": d.id, "lat": d.p.Lat, "lon": d.p.Lon, "accuracy_m": d.accuracy,
			"ts": clock.now().Add(-time.Duration(d.ageS) * time.Second).Format(time.RFC3339)}
		e.must(200, "POST", "/v1/pings", b.AppKey, p)
	}
	wantQueued, wantSuppressed := 0, 0
	for _, d := range devs {
		if d.wantMsg {
			wantQueued++
		} else if d.wantInA {
			wantSuppressed++
		}
	}
	if wantQueued < 50 || wantSuppressed < 10 {
		t.Fatalf("fixture too thin: %d to notify, %d suppressed", wantQueued, wantSuppressed)
	}

	ev := e.startEvent(b.AdminKey, "a", map[string]any{"title": "Hot Now", "body": "Fresh glazed at A", "duration_s": 1800})
	counts := e.waitCounts(b.AdminKey, "a", func(c map[string]int) bool { return c["devices_in_fence"] == wantQueued+wantSuppressed })
	if counts["queued"] != wantQueued || counts["suppressed"] != wantSuppressed {
		t.Fatalf("counts = %v, want %d queued and %d suppressed", counts, wantQueued, wantSuppressed)
	}

	log := e.allNotifications(b.AdminKey, "event_id="+ev.ID)
	byDevice := map[string]notifOut{}
	for _, n := range log {
		if _, dup := byDevice[n.DeviceID]; dup {
			t.Fatalf("device %s has two log entries", n.DeviceID)
		}
		byDevice[n.DeviceID] = n
	}
	for _, d := range devs {
		n, has := byDevice[d.id]
		switch {
		case d.wantMsg && (!has || n.Status != "queued"):
			t.Errorf("device %s inside and eligible: entry %+v, want queued", d.id, n)
		case d.wantInA && !d.wantMsg:
			want := "opted_out"
			if d.optIn {
				want = "no_token"
			}
			if !has || n.Status != "suppressed" || n.Reason == nil || *n.Reason != want {
				t.Errorf("device %s: entry %+v, want suppressed %s", d.id, n, want)
			}
		case !d.wantInA && has:
			t.Errorf("device %s is not in fence a (or never qualified) but has entry %+v", d.id, n)
		}
	}

	// Half of what was queued is sent; the rest stays queued for the end.
	first, err := e.disp.Round(t.Context())
	if err != nil || first == 0 {
		t.Fatalf("Round = %d, %v", first, err)
	}

	// A second ping of a notified device queues nothing.
	var notified dev
	for _, d := range devs {
		if d.wantMsg {
			notified = d
			break
		}
	}
	var po pingOut
	e.must(200, "POST", "/v1/pings", b.AppKey, map[string]any{"device_id": notified.id, "lat": notified.p.Lat, "lon": notified.p.Lon, "accuracy_m": 10}).decode(t, &po)
	if len(po.Notifications) != 1 || po.Notifications[0].Status != "suppressed" || po.Notifications[0].Reason != "already_notified" {
		t.Errorf("second ping of a notified device: %+v, want suppressed already_notified", po.Notifications)
	}

	// A device walking in later is queued on its ping.
	e.device(b.AppKey, "walker")
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("walker", 40.80, -73.90)) // far away
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("walker", stores[0].lat, stores[0].lon)).decode(t, &po)
	if len(po.LiveEvents) != 1 || po.LiveEvents[0].EventID != ev.ID || len(po.Notifications) != 1 || po.Notifications[0].Status != "queued" {
		t.Errorf("walker's ping = %+v, want queued for %s", po, ev.ID)
	}

	// Ending the event expires what is still queued, and nothing of it is
	// sent afterwards.
	var ended eventOut
	e.must(200, "DELETE", "/v1/stores/a/events/live", b.AdminKey, nil).decode(t, &ended)
	if ended.Status != "ended" || ended.Counts["queued"] != 0 || ended.Counts["expired"] == 0 {
		t.Errorf("ended event counts = %v, status %s: want queued 0, expired > 0", ended.Counts, ended.Status)
	}
	if got := ended.Counts["sent"] + ended.Counts["expired"]; got != wantQueued+1 {
		t.Errorf("sent+expired = %d, want %d", got, wantQueued+1)
	}
	e.drain()
	for _, n := range e.allNotifications(b.AdminKey, "event_id="+ev.ID+"&status=queued") {
		t.Errorf("still queued after end: %+v", n)
	}
	e.sendsMu.Lock()
	defer e.sendsMu.Unlock()
	if len(e.sends) != ended.Counts["sent"] {
		t.Errorf("sender saw %d notifications, log says %d sent", len(e.sends), ended.Counts["sent"])
	}
	for id, n := range e.sends {
		if n != 1 {
			t.Errorf("notification %s sent %d times", id, n)
		}
	}
	e.must(404, "GET", "/v1/stores/a/events/live", b.AdminKey, nil)
}

// TestConcurrentPingsNotifyOnce: 50 goroutines pinging one device inside a
// live fence at once make exactly one notification.
func TestConcurrentPingsNotifyOnce(t *testing.T) {
	clock := newClock(noonNY)
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Donuts")
	e.must(201, "PUT", "/v1/stores/a", b.AdminKey, circleStore("A", 40.7128, -74.0060, 500))
	e.device(b.AppKey, "d1")
	ev := e.startEvent(b.AdminKey, "a", map[string]any{"title": "Hot", "body": "Now"})
	// The fan-out finds no position of d1 once it has run; running
	// alongside the pings it could queue d1 itself, and every ping would
	// rightly answer already_notified.
	e.engine.Wait()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		queued int
	)
	for range 50 {
		wg.Go(func() {
			r := e.do("POST", "/v1/pings", b.AppKey, ping("d1", 40.7128, -74.0060))
			var po pingOut
			if err := jsonUnmarshal(r.Body, &po); err != nil || r.Code != 200 {
				t.Errorf("ping = %d %s", r.Code, r.Body)
				return
			}
			for _, n := range po.Notifications {
				if n.Status == "queued" {
					mu.Lock()
					queued++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if queued != 1 {
		t.Errorf("%d pings answered queued, want exactly 1", queued)
	}
	if log := e.allNotifications(b.AdminKey, "event_id="+ev.ID); len(log) != 1 {
		t.Errorf("log has %d entries for the device, want 1: %+v", len(log), log)
	}
}

// TestQueuedSurvivesCrash: notifications queued but not sent are still
// there after the database is closed and reopened, and go out once.
func TestQueuedSurvivesCrash(t *testing.T) {
	clock := newClock(noonNY)
	e := newManualEnv(t, Options{Now: clock.now})
	b := e.brand("Donuts")
	e.must(201, "PUT", "/v1/stores/a", b.AdminKey, circleStore("A", 40.7128, -74.0060, 500))
	for i := range 300 {
		id := fmt.Sprintf("d%d", i)
		e.device(b.AppKey, id)
		e.must(200, "POST", "/v1/pings", b.AppKey, ping(id, 40.7128, -74.0060))
	}
	ev := e.startEvent(b.AdminKey, "a", map[string]any{"title": "Hot", "body": "Now"})
	e.waitCounts(b.AdminKey, "a", func(c map[string]int) bool { return c["queued"] == 300 })
	e.restart() // no dispatcher ran: everything is still queued
	if got := len(e.allNotifications(b.AdminKey, "status=queued")); got != 300 {
		t.Fatalf("after restart %d queued, want 300", got)
	}
	var live eventOut
	e.must(200, "GET", "/v1/stores/a/events/live", b.AdminKey, nil).decode(t, &live)
	if live.ID != ev.ID || live.Counts["queued"] != 300 {
		t.Fatalf("live event after restart = %+v", live)
	}
	e.drain()
	e.restart()
	e.drain()
	if got := len(e.allNotifications(b.AdminKey, "status=dry_run")); got != 300 {
		t.Errorf("%d dry_run after draining, want 300", got)
	}
	e.sendsMu.Lock()
	defer e.sendsMu.Unlock()
	if len(e.sends) != 300 {
		t.Errorf("sender saw %d notifications, want 300", len(e.sends))
	}
	for id, n := range e.sends {
		if n != 1 {
			t.Errorf("notification %s sent %d times", id, n)
		}
	}
}

func TestEventLifecycle(t *testing.T) {
	clock := newClock(noonNY)
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Donuts")
	e.must(201, "PUT", "/v1/stores/a", b.AdminKey, circleStore("A", 40.7128, -74.0060, 500))
	var mk struct {
		ManagerKey string `json:"manager_key"`
	}
	e.must(201, "POST", "/v1/stores/a/manager-keys", b.AdminKey, map[string]any{}).decode(t, &mk)

	// Validation, counted in bytes.
	e.must(400, "POST", "/v1/stores/a/events", mk.ManagerKey, map[string]any{"body": "x"})
	e.must(400, "POST", "/v1/stores/a/events", mk.ManagerKey, map[string]any{"title": "x", "body": "y", "duration_s": 59})
	e.must(400, "POST", "/v1/stores/a/events", mk.ManagerKey, map[string]any{"title": "x", "body": "y", "duration_s": 43201})
	e.must(400, "POST", "/v1/stores/a/events", mk.ManagerKey, map[string]any{"title": strings.Repeat("x", 101), "body": "y"})
	// 100 + 500 doughnuts of 4 bytes each and a long url: over 4096 bytes
	// while every field is within its own character limit.
	huge := map[string]any{"title": strings.Repeat("🍩", 100), "body": strings.Repeat("🍩", 500), "url": "app://x/" + strings.Repeat("a", 2000)}
	if r := e.must(400, "POST", "/v1/stores/a/events", mk.ManagerKey, huge); !strings.Contains(string(r.Body), "bytes") {
		t.Errorf("payload too large: %s", r.Body)
	}
	// 500 characters of € are 1500 bytes: fits.
	ev := e.startEvent(mk.ManagerKey, "a", map[string]any{"title": "Hot", "body": strings.Repeat("€", 500), "duration_s": 60})
	if ev.URL != nil || ev.Status != "live" || !ev.EndsAt.Equal(ev.StartsAt.Add(time.Minute)) {
		t.Errorf("started event = %+v", ev)
	}
	// A second start is 409 with the live event in the problem.
	r := e.must(409, "POST", "/v1/stores/a/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Again"})
	if got := r.json(t)["event"].(map[string]any)["id"]; got != ev.ID {
		t.Errorf("409 event id = %v, want %s", got, ev.ID)
	}
	// GET /v1/me shows the manager its live event.
	me := e.must(200, "GET", "/v1/me", mk.ManagerKey, nil).json(t)
	if le, _ := me["live_event"].(map[string]any); le == nil || le["id"] != ev.ID {
		t.Errorf("me.live_event = %v, want %s", me["live_event"], ev.ID)
	}
	// It ends by itself at ends_at.
	clock.advance(61 * time.Second)
	for i := 0; ; i++ {
		if e.do("GET", "/v1/stores/a/events/live", b.AdminKey, nil).Code == 404 {
			break
		}
		if i > 200 {
			t.Fatal("event did not end by itself")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var list struct {
		Items []eventOut `json:"items"`
	}
	e.must(200, "GET", "/v1/events?status=ended&store_id=a", b.AdminKey, nil).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != ev.ID || !list.Items[0].EndsAt.Equal(ev.EndsAt) {
		t.Errorf("ended events = %+v", list.Items)
	}
	me = e.must(200, "GET", "/v1/me", mk.ManagerKey, nil).json(t)
	if v, present := me["live_event"]; !present || v != nil {
		t.Errorf("me.live_event after end = %v (present %v), want null", v, present)
	}

	// Idempotency-Key: a retried tap returns the same event, no second one.
	req := map[string]any{"title": "Hot", "body": "Now"}
	first := e.doWith("POST", "/v1/stores/a/events", b.AdminKey, req, map[string]string{"Idempotency-Key": "tap-1"})
	second := e.doWith("POST", "/v1/stores/a/events", b.AdminKey, req, map[string]string{"Idempotency-Key": "tap-1"})
	if first.Code != 201 || second.Code != 201 || first.json(t)["id"] != second.json(t)["id"] {
		t.Errorf("idempotent retry: %d %s / %d %s", first.Code, first.Body, second.Code, second.Body)
	}
	// Deleting the store ends its event, which stays in the history.
	e.must(204, "DELETE", "/v1/stores/a", b.AdminKey, nil)
	e.must(200, "GET", "/v1/events?status=ended", b.AdminKey, nil).decode(t, &list)
	if len(list.Items) != 2 {
		t.Errorf("after deleting the store, %d ended events, want 2", len(list.Items))
	}
}

// TestLiveEventSurvivesRestart: a live event is still live after a
// restart, until its ends_at.
func TestLiveEventSurvivesRestart(t *testing.T) {
	clock := newClock(noonNY)
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Donuts")
	e.must(201, "PUT", "/v1/stores/a", b.AdminKey, circleStore("A", 40.7128, -74.0060, 500))
	ev := e.startEvent(b.AdminKey, "a", map[string]any{"title": "Hot", "body": "Now", "duration_s": 600})
	e.restart()
	var live eventOut
	e.must(200, "GET", "/v1/stores/a/events/live", b.AdminKey, nil).decode(t, &live)
	if live.ID != ev.ID {
		t.Fatalf("live after restart = %s, want %s", live.ID, ev.ID)
	}
	clock.advance(601 * time.Second)
	e.restart()
	for i := 0; e.do("GET", "/v1/stores/a/events/live", b.AdminKey, nil).Code != 404; i++ {
		if i > 200 {
			t.Fatal("event past its ends_at still live after restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamEndsWithRevokedKey: revoking a manager key closes the live
// stream it has open, at once.
func TestStreamEndsWithRevokedKey(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Donuts")
	e.must(201, "PUT", "/v1/stores/a", b.AdminKey, circleStore("A", 40.7128, -74.0060, 500))
	var mk struct {
		ID         string `json:"id"`
		ManagerKey string `json:"manager_key"`
	}
	e.must(201, "POST", "/v1/stores/a/manager-keys", b.AdminKey, map[string]any{}).decode(t, &mk)
	srv := httptest.NewServer(e.srv)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/stores/a/events/live/stream", nil)
	req.Header.Set("Authorization", "Bearer "+mk.ManagerKey)
	resp, err := srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream = %v, %v", resp, err)
	}
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	e.must(204, "DELETE", "/v1/manager-keys/"+mk.ID, b.AdminKey, nil)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5 s after its key was revoked")
	}
}

// TestEventStream: the live stream reports the next event that starts,
// its counts as they move, and its end.
func TestEventStream(t *testing.T) {
	clock := newClock(noonNY)
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Donuts")
	e.must(201, "PUT", "/v1/stores/a", b.AdminKey, circleStore("A", 40.7128, -74.0060, 500))
	e.device(b.AppKey, "d1")
	srv := httptest.NewServer(e.srv)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/stores/a/events/live/stream", nil)
	req.Header.Set("Authorization", "Bearer "+b.AdminKey)
	resp, err := srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream = %v, %v", resp, err)
	}
	defer resp.Body.Close()
	type msg struct {
		event string
		ev    eventOut
	}
	msgs := make(chan msg, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var ev eventOut
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					t.Errorf("bad data line %q: %v", line, err)
				}
				msgs <- msg{name, ev}
			}
		}
		close(msgs)
	}()
	next := func(want string, cond func(eventOut) bool) eventOut {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("stream closed waiting for %s", want)
				}
				if m.event == want && cond(m.ev) {
					return m.ev
				}
			case <-timeout:
				t.Fatalf("no %s message within 5 s", want)
			}
		}
	}
	ev := e.startEvent(b.AdminKey, "a", map[string]any{"title": "Hot", "body": "Now"})
	next("counts", func(got eventOut) bool { return got.ID == ev.ID && got.Status == "live" })
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.7128, -74.0060))
	next("counts", func(got eventOut) bool { return got.Counts["devices_in_fence"] == 1 && got.Counts["sent"] == 1 })
	e.must(200, "DELETE", "/v1/stores/a/events/live", b.AdminKey, nil)
	next("ended", func(got eventOut) bool { return got.ID == ev.ID && got.Status == "ended" })
}
