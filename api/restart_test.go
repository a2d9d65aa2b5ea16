package api

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// TestRestart proves that everything the API answers survives closing and
// reopening the database: stores, fences, keys, policy, devices and their
// last positions (written behind, flushed on Close), and erasures.
func TestRestart(t *testing.T) {
	clock := newClock("2026-11-22T10:00:00Z")
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	other := e.brand("Other")
	e.must(200, "PATCH", "/v1/policy", b.AdminKey, `{"daily_cap":7,"quiet_hours":null,"max_accuracy_m":75.5}`)
	e.must(201, "PUT", "/v1/stores/circle", b.AdminKey, circleStore("Circle", 40.7128, -74.0060, 800))
	e.must(201, "PUT", "/v1/stores/donut", b.AdminKey, polygonStore("Donut", squareOuter, squareHole))
	e.must(201, "PUT", "/v1/stores/multi", b.AdminKey, map[string]any{"name": "Across the antimeridian", "tags": []string{"far"}, "fence": map[string]any{"polygon": map[string]any{"type": "MultiPolygon",
		"coordinates": [][][][2]float64{{{{179, -1}, {-179, -1}, {-179, 1}, {179, 1}, {179, -1}}}, {{{10, 10}, {11, 10}, {11, 11}, {10, 11}, {10, 10}}}}}}})
	e.must(201, "PUT", "/v1/stores/gone", b.AdminKey, circleStore("Gone", 1, 1, 100))
	e.must(201, "PUT", "/v1/stores/circle", other.AdminKey, circleStore("Other's circle", 10.5, 10.5, 1000))
	var mk, mkDeleted managerKeyCreated
	e.must(201, "POST", "/v1/stores/circle/manager-keys", b.AdminKey, map[string]any{"label": "counter"}).decode(t, &mk)
	e.must(201, "POST", "/v1/stores/circle/manager-keys", b.AdminKey, nil).decode(t, &mkDeleted)
	e.must(204, "DELETE", "/v1/manager-keys/"+mkDeleted.ID, b.AdminKey, nil)
	var mkGone managerKeyCreated
	e.must(201, "POST", "/v1/stores/gone/manager-keys", b.AdminKey, nil).decode(t, &mkGone)
	e.must(204, "DELETE", "/v1/stores/gone", b.AdminKey, nil)
	// A live event at a store nobody is in, so no notification changes
	// its counts behind the test's back.
	e.must(201, "POST", "/v1/stores/multi/events", b.AdminKey, map[string]any{"title": "Hot Now", "body": "Fresh", "duration_s": 43200})

	for _, id := range []string{"d1", "d2", "d3", "gone"} {
		e.device(b.AppKey, id)
	}
	e.must(201, "PUT", "/v1/devices/d1", other.AppKey, map[string]any{"platform": "android", "opt_in": false})
	clock.advance(time.Minute)
	e.must(200, "GET", "/v1/stores/circle", mk.ManagerKey, nil) // sets last_used_at
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.7128, -74.0060))
	clock.advance(time.Second)
	e.must(200, "POST", "/v1/pings", b.AppKey, map[string]any{"device_id": "d1", "lat": 40.71, "lon": -74.01, "accuracy_m": 900}) // not qualifying
	e.must(200, "POST", "/v1/pings", b.AppKey, map[string]any{"device_id": "d2", "lat": 12.25, "lon": 13.5, "accuracy_m": 20, "ts": "2026-11-22T09:00:00Z"})
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("gone", 40.7128, -74.0060))
	e.must(204, "DELETE", "/v1/devices/gone", b.AppKey, nil)

	// What the API answers, to compare byte for byte.
	reads := []struct{ path, key string }{
		{"/v1/me", b.AdminKey},
		{"/v1/me", b.AppKey},
		{"/v1/me", mk.ManagerKey},
		{"/v1/me", other.AdminKey},
		{"/v1/me", e.operator},
		{"/v1/policy", b.AdminKey},
		{"/v1/policy", other.AdminKey},
		{"/v1/stores", b.AdminKey},
		{"/v1/stores?limit=1", b.AdminKey},
		{"/v1/stores?tag=far", b.AdminKey},
		{"/v1/stores", other.AdminKey},
		{"/v1/stores/circle", b.AdminKey},
		{"/v1/stores/donut", b.AdminKey},
		{"/v1/stores/multi", b.AdminKey},
		{"/v1/stores/circle", other.AdminKey},
		{"/v1/stores.geojson", b.AdminKey},
		{"/v1/stores/circle/manager-keys", b.AdminKey},
		{"/v1/stores/multi/events/live", b.AdminKey},
		{"/v1/events", b.AdminKey},
	}
	snapshot := func() [][]byte {
		t.Helper()
		out := make([][]byte, len(reads))
		for i, rd := range reads {
			out[i] = e.must(200, "GET", rd.path, rd.key, nil).Body
		}
		return out
	}
	positions := func() map[string]*hotzone.DevicePosition {
		t.Helper()
		out := map[string]*hotzone.DevicePosition{}
		for _, id := range []string{"d1", "d2", "d3"} {
			_, pos, err := e.db.Device(bg, b.ID, id)
			if err != nil {
				t.Fatalf("device %s: %v", id, err)
			}
			out[id] = pos
		}
		return out
	}
	// Probe points: each one's inside answer must not change.
	probes := []struct {
		name     string
		lat, lon float64
	}{
		{"circle centre", 40.7128, -74.0060},
		{"donut ring and circle", 40.702, -74.018},
		{"donut hole", 40.71, -74.01},
		{"far outside", -40, 100},
		{"east of the antimeridian", 0, 179.5},
		{"west of the antimeridian", 0.5, -179.5},
		{"second part", 10.5, 10.5},
		{"deleted store", 1, 1},
	}
	probe := func() [][]string {
		t.Helper()
		out := make([][]string, len(probes))
		for i, p := range probes {
			out[i] = insideIDs(t, e, b.AppKey, "probe", p.lat, p.lon)
		}
		return out
	}

	// The probe device is opted out: its pings inside the live event's
	// fence leave one suppressed entry that no dispatcher changes.
	e.must(201, "PUT", "/v1/devices/probe", b.AppKey, map[string]any{"platform": "ios", "opt_in": false})
	probesBefore := probe()
	before := snapshot()
	posBefore := positions()
	if p := posBefore["d1"]; p == nil || p.Qualifying == nil || p.Last.AccuracyM != 900 || p.Qualifying.AccuracyM != 10 {
		t.Fatalf("d1 position before restart = %+v, want a last (±900 m) and a qualifying one (±10 m)", p)
	}

	for round := 1; round <= 2; round++ {
		e.restart()

		after := snapshot()
		for i := range reads {
			if !bytes.Equal(before[i], after[i]) {
				t.Errorf("restart %d: GET %s =\n%s\nwant as before:\n%s", round, reads[i].path, after[i], before[i])
			}
		}
		posAfter := positions()
		for id, want := range posBefore {
			if !samePosition(posAfter[id], want) {
				t.Errorf("restart %d: device %s position = %+v, want %+v", round, id, posAfter[id], want)
			}
		}
		if got := probe(); !slices.EqualFunc(got, probesBefore, slices.Equal) {
			for i := range probes {
				if !slices.Equal(got[i], probesBefore[i]) {
					t.Errorf("restart %d: probe %s inside = %v, want %v", round, probes[i].name, got[i], probesBefore[i])
				}
			}
		}
		// Revoked keys stay revoked; the deleted store and device stay gone.
		checkProblem(t, "GET /v1/me with a deleted manager key", e.call("GET", "/v1/me", mkDeleted.ManagerKey, nil), 401)
		checkProblem(t, "GET /v1/me with the deleted store's manager key", e.call("GET", "/v1/me", mkGone.ManagerKey, nil), 401)
		checkProblem(t, "GET /v1/stores/gone", e.call("GET", "/v1/stores/gone", b.AdminKey, nil), 404)
		checkProblem(t, "POST /v1/pings for the deleted device", e.call("POST", "/v1/pings", b.AppKey, ping("gone", 1, 1)), 404)
		checkProblem(t, "DELETE the deleted device", e.call("DELETE", "/v1/devices/gone", b.AppKey, nil), 404)
		// Brand B's device of the same id is its own, and still there.
		if d, _, err := e.db.Device(bg, other.ID, "d1"); err != nil || d.Platform != "android" {
			t.Errorf("restart %d: brand B's d1 = %+v, %v", round, d, err)
		}
		// Existing devices update (200), tokens stay with their holders.
		e.must(200, "PUT", "/v1/devices/d3", b.AppKey, map[string]any{"platform": "ios", "opt_in": true,
			"push": map[string]any{"provider": "apns", "token": tokenFor("d3")}})
		if d, _, _ := e.db.Device(bg, b.ID, "d2"); d.Token != tokenFor("d2") {
			t.Errorf("restart %d: d2 token = %q, want its own", round, d.Token)
		}
	}
	// The erased device's id is free again.
	e.must(201, "PUT", "/v1/devices/gone", b.AppKey, map[string]any{"platform": "ios", "opt_in": true})
	if _, pos, _ := e.db.Device(bg, b.ID, "gone"); pos != nil {
		t.Errorf("re-created device has the erased device's position %+v", pos)
	}
	// And new writes after a restart persist too.
	e.must(201, "PUT", "/v1/stores/late", b.AdminKey, circleStore("Late", -40, 100, 1000))
	e.restart()
	if got := insideIDs(t, e, b.AppKey, "probe", -40, 100); !slices.Equal(got, []string{"late"}) {
		t.Errorf("inside a store created after a restart, after another = %v, want [late]", got)
	}
}

func samePosition(a, b *hotzone.DevicePosition) bool {
	if a == nil || b == nil {
		return a == b
	}
	same := func(p, q hotzone.Position) bool {
		return p.Lat == q.Lat && p.Lon == q.Lon && p.AccuracyM == q.AccuracyM && p.TS.Equal(q.TS)
	}
	if (a.Qualifying == nil) != (b.Qualifying == nil) {
		return false
	}
	return same(a.Last, b.Last) && (a.Qualifying == nil || same(*a.Qualifying, *b.Qualifying))
}
