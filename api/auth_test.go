package api

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// The auth matrix: every registered route against every kind of key, with
// the status the contract's auth rules give (401, then 403, then 404).

// keyCols are the columns of the matrix, in order.
var keyCols = []string{"none", "garbage", "operator", "admin", "app", "manager-s1", "manager-s2", "admin-b"}

// authFixture is brand A (stores s1 and s2, device d1, manager keys for
// both stores and a spare one on s1 to delete) and brand B (its admin key
// only).
type authFixture struct {
	brandA, brandB brandKeys
	keys           map[string]string // column -> Authorization key
	spareKeyID     string            // a manager key of s1 nobody uses
}

func newAuthFixture(t *testing.T) (*env, authFixture) {
	t.Helper()
	e := newEnv(t, Options{})
	var fx authFixture
	fx.brandA = e.brand("Brand A")
	fx.brandB = e.brand("Brand B")
	e.must(201, "PUT", "/v1/stores/s1", fx.brandA.AdminKey, circleStore("S1", 40.7128, -74.0060, 800))
	e.must(201, "PUT", "/v1/stores/s2", fx.brandA.AdminKey, circleStore("S2", 40.7580, -73.9855, 500))
	e.device(fx.brandA.AppKey, "d1")
	var m1, m2, spare managerKeyCreated
	e.must(201, "POST", "/v1/stores/s1/manager-keys", fx.brandA.AdminKey, map[string]any{"label": "s1"}).decode(t, &m1)
	e.must(201, "POST", "/v1/stores/s2/manager-keys", fx.brandA.AdminKey, map[string]any{"label": "s2"}).decode(t, &m2)
	e.must(201, "POST", "/v1/stores/s1/manager-keys", fx.brandA.AdminKey, map[string]any{"label": "spare"}).decode(t, &spare)
	fx.spareKeyID = spare.ID
	// s1 has a live event, so the routes on it answer 200; s2 has none, so
	// starting one there answers 201.
	e.must(201, "POST", "/v1/stores/s1/events", fx.brandA.AdminKey, map[string]any{"title": "Hot Now", "body": "Fresh at S1"})
	fx.keys = map[string]string{
		"none":       "",
		"garbage":    "hza_this-key-was-never-issued",
		"operator":   e.operator,
		"admin":      fx.brandA.AdminKey,
		"app":        fx.brandA.AppKey,
		"manager-s1": m1.ManagerKey,
		"manager-s2": m2.ManagerKey,
		"admin-b":    fx.brandB.AdminKey,
	}
	return e, fx
}

// authRoute is one row: a request, and the status per column of keyCols.
type authRoute struct {
	method, path string // path may hold {spare_key} for the spare manager key id
	route        string // the registered pattern; "" for rows that test 404/405
	body         any
	want         [8]int // none, garbage, operator, admin, app, manager-s1, manager-s2, admin-b
}

func authRoutes() []authRoute {
	importBody := map[string]any{"type": "FeatureCollection", "features": []any{
		map[string]any{"type": "Feature", "geometry": map[string]any{"type": "Point", "coordinates": []float64{-74.0, 40.7}},
			"properties": map[string]any{"id": "imported", "name": "Imported", "radius_m": 100}},
	}}
	device := map[string]any{"platform": "android", "opt_in": true}
	batch := map[string]any{"pings": []any{ping("d1", 40.7128, -74.0060)}}
	return []authRoute{
		// want: none, garbage, operator, admin, app, manager-s1, manager-s2, admin-b
		{"POST", "/v1/brands", "/v1/brands", map[string]any{"name": "New"}, [8]int{401, 401, 201, 403, 403, 403, 403, 403}},
		{"GET", "/v1/me", "/v1/me", nil, [8]int{401, 401, 200, 200, 200, 200, 200, 200}},
		{"GET", "/v1/policy", "/v1/policy", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"GET", "/v1/fences/nearby?lat=40.7&lon=-74", "/v1/fences/nearby", nil, [8]int{401, 401, 403, 200, 200, 403, 403, 200}},
		{"PATCH", "/v1/policy", "/v1/policy", map[string]any{"daily_cap": 5}, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"GET", "/v1/push", "/v1/push", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"PUT", "/v1/push/apns", "/v1/push/apns", apnsCreds(), [8]int{401, 401, 403, 204, 403, 403, 403, 204}},
		{"PUT", "/v1/push/fcm", "/v1/push/fcm", fcmCreds(), [8]int{401, 401, 403, 204, 403, 403, 403, 204}},
		{"DELETE", "/v1/push/apns", "/v1/push/apns", nil, [8]int{401, 401, 403, 204, 403, 403, 403, 204}},
		{"DELETE", "/v1/push/fcm", "/v1/push/fcm", nil, [8]int{401, 401, 403, 204, 403, 403, 403, 204}},
		{"GET", "/v1/stores", "/v1/stores", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"GET", "/v1/stores.geojson", "/v1/stores.geojson", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"POST", "/v1/stores/import", "/v1/stores/import", importBody, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		// Store ids are per brand: brand B's PUT creates its own s1.
		{"PUT", "/v1/stores/s1", "/v1/stores/:store_id", circleStore("S1 again", 40.7128, -74.0060, 900), [8]int{401, 401, 403, 200, 403, 403, 403, 201}},
		{"GET", "/v1/stores/s1", "/v1/stores/:store_id", nil, [8]int{401, 401, 403, 200, 403, 200, 403, 404}},
		{"GET", "/v1/stores/s2", "/v1/stores/:store_id", nil, [8]int{401, 401, 403, 200, 403, 403, 200, 404}},
		{"GET", "/v1/stores/nope", "/v1/stores/:store_id", nil, [8]int{401, 401, 403, 404, 403, 404, 404, 404}},
		{"DELETE", "/v1/stores/s1", "/v1/stores/:store_id", nil, [8]int{401, 401, 403, 204, 403, 403, 403, 404}},
		{"POST", "/v1/stores/s1/manager-keys", "/v1/stores/:store_id/manager-keys", map[string]any{"label": "x"}, [8]int{401, 401, 403, 201, 403, 403, 403, 404}},
		{"GET", "/v1/stores/s1/manager-keys", "/v1/stores/:store_id/manager-keys", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 404}},
		{"DELETE", "/v1/manager-keys/{spare_key}", "/v1/manager-keys/:key_id", nil, [8]int{401, 401, 403, 204, 403, 403, 403, 404}},
		// A manager reaches only its own store's events.
		{"POST", "/v1/stores/s2/events", "/v1/stores/:store_id/events", map[string]any{"title": "Hot", "body": "Fresh"}, [8]int{401, 401, 403, 201, 403, 403, 201, 404}},
		{"GET", "/v1/stores/s1/events/live", "/v1/stores/:store_id/events/live", nil, [8]int{401, 401, 403, 200, 403, 200, 403, 404}},
		{"DELETE", "/v1/stores/s1/events/live", "/v1/stores/:store_id/events/live", nil, [8]int{401, 401, 403, 200, 403, 200, 403, 404}},
		{"GET", "/v1/stores/s1/events/live/stream", "/v1/stores/:store_id/events/live/stream", nil, [8]int{401, 401, 403, 200, 403, 200, 403, 404}},
		{"GET", "/v1/stores/s2/events/live", "", nil, [8]int{401, 401, 403, 404, 403, 403, 404, 404}},
		{"GET", "/v1/events", "/v1/events", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"GET", "/v1/notifications", "/v1/notifications", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"GET", "/v1/events/nope/report", "/v1/events/:event_id/report", nil, [8]int{401, 401, 403, 404, 403, 404, 404, 404}},
		{"POST", "/v1/notifications/nope/open", "/v1/notifications/:notification_id/open", map[string]any{"device_id": "d1"}, [8]int{401, 401, 403, 404, 404, 403, 403, 404}},
		{"GET", "/v1/audiences", "/v1/audiences", nil, [8]int{401, 401, 403, 200, 403, 200, 200, 200}},
		{"GET", "/v1/audiences/nope", "/v1/audiences/:audience_id", nil, [8]int{401, 401, 403, 404, 403, 404, 404, 404}},
		{"PUT", "/v1/audiences/gold", "/v1/audiences/:audience_id", map[string]any{"name": "Gold", "all": []string{"loyalty:gold"}}, [8]int{401, 401, 403, 201, 403, 403, 403, 201}},
		{"DELETE", "/v1/audiences/nope", "/v1/audiences/:audience_id", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		{"GET", "/v1/templates", "/v1/templates", nil, [8]int{401, 401, 403, 200, 403, 200, 200, 200}},
		{"GET", "/v1/templates/nope", "/v1/templates/:template_id", nil, [8]int{401, 401, 403, 404, 403, 404, 404, 404}},
		{"PUT", "/v1/templates/hot", "/v1/templates/:template_id", map[string]any{"name": "Hot", "title": "Hot", "body": "Now"}, [8]int{401, 401, 403, 201, 403, 403, 403, 201}},
		{"DELETE", "/v1/templates/nope", "/v1/templates/:template_id", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		// A loopback receiver is refused (400) past the key check.
		{"POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/h", "events": []string{"entered"}}, [8]int{401, 401, 403, 400, 403, 403, 403, 400}},
		{"GET", "/v1/webhooks", "/v1/webhooks", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 200}},
		{"GET", "/v1/webhooks/nope", "/v1/webhooks/:webhook_id", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		{"PATCH", "/v1/webhooks/nope", "/v1/webhooks/:webhook_id", map[string]any{"status": "active"}, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		{"DELETE", "/v1/webhooks/nope", "/v1/webhooks/:webhook_id", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		{"POST", "/v1/webhooks/nope/test", "/v1/webhooks/:webhook_id/test", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		{"GET", "/v1/webhooks/nope/deliveries", "/v1/webhooks/:webhook_id/deliveries", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		{"POST", "/v1/webhooks/nope/deliveries/x/retry", "/v1/webhooks/:webhook_id/deliveries/:delivery_id/retry", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},

		// Device ids are per brand too: brand B's PUT creates its own d1.
		{"PUT", "/v1/devices/d1", "/v1/devices/:device_id", device, [8]int{401, 401, 403, 200, 200, 403, 403, 201}},
		{"GET", "/v1/devices/d1", "/v1/devices/:device_id", nil, [8]int{401, 401, 403, 200, 403, 403, 403, 404}},
		{"GET", "/v1/devices/nope", "/v1/devices/:device_id", nil, [8]int{401, 401, 403, 404, 403, 403, 403, 404}},
		{"DELETE", "/v1/devices/d1", "/v1/devices/:device_id", nil, [8]int{401, 401, 403, 204, 204, 403, 403, 404}},
		{"POST", "/v1/pings", "/v1/pings", ping("d1", 40.7128, -74.0060), [8]int{401, 401, 403, 200, 200, 403, 403, 404}},
		// A batch answers 200; brand B's ping inside it is a 404 problem.
		{"POST", "/v1/pings/batch", "/v1/pings/batch", batch, [8]int{401, 401, 403, 200, 200, 403, 403, 200}},

		// Unknown routes are 404 and known paths with a wrong method 405,
		// whatever the key.
		{"GET", "/v1/nothing", "", nil, [8]int{404, 404, 404, 404, 404, 404, 404, 404}},
		{"GET", "/v2/me", "", nil, [8]int{404, 404, 404, 404, 404, 404, 404, 404}},
		{"GET", "/v1/stores/s1/nothing", "", nil, [8]int{404, 404, 404, 404, 404, 404, 404, 404}},
		{"GET", "/v1/me/", "", nil, [8]int{404, 404, 404, 404, 404, 404, 404, 404}},
		{"POST", "/v1/me", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"GET", "/v1/brands", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"DELETE", "/v1/policy", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"POST", "/v1/fences/nearby", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"DELETE", "/v1/stores", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"PUT", "/v1/stores.geojson", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"PATCH", "/v1/stores/s1", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"GET", "/v1/manager-keys/x", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"PATCH", "/v1/devices/d1", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"GET", "/v1/pings", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"PUT", "/v1/pings/batch", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"POST", "/v1/push", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"GET", "/v1/push/apns", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"GET", "/v1/push/webpush", "", nil, [8]int{404, 404, 404, 404, 404, 404, 404, 404}},
		{"GET", "/v1/stores/s1/events", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"POST", "/v1/stores/s1/events/live", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"POST", "/v1/events", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"DELETE", "/v1/notifications", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"HEAD", "/v1/me", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
		{"OPTIONS", "/v1/stores", "", nil, [8]int{405, 405, 405, 405, 405, 405, 405, 405}},
	}
}

func TestAuthMatrix(t *testing.T) {
	for _, rt := range authRoutes() {
		for col, kind := range keyCols {
			want := rt.want[col]
			t.Run(rt.method+" "+rt.path+"/"+kind, func(t *testing.T) {
				t.Parallel()
				// Every cell gets its own world, so a DELETE or a PUT in
				// one cell never changes what another cell sees.
				e, fx := newAuthFixture(t)
				path := strings.ReplaceAll(rt.path, "{spare_key}", fx.spareKeyID)
				req := e.request(rt.method, path, fx.keys[kind], rt.body)
				if strings.HasSuffix(rt.path, "/stream") {
					// The stream stays open; end it after a moment.
					ctx, cancel := context.WithTimeout(req.Context(), 100*time.Millisecond)
					defer cancel()
					req = req.WithContext(ctx)
				}
				r := e.send(req)
				if r.Code != want {
					t.Fatalf("%s %s with %s key = %d, want %d: %s", rt.method, path, kind, r.Code, want, r.Body)
				}
				if want == 401 {
					if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
						t.Errorf("%s %s with %s key: WWW-Authenticate = %q, want Bearer ...", rt.method, path, kind, got)
					}
				}
			})
		}
	}
}

// TestAuthMatrixCoversRoutes fails when a route is registered that the
// matrix does not test: add a row to authRoutes for it.
func TestAuthMatrixCoversRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	tested := map[string]bool{}
	for _, rt := range authRoutes() {
		if rt.route != "" {
			tested[rt.method+" "+rt.route] = true
		}
	}
	var missing []string
	for _, ri := range e.srv.router.Routes() {
		if !strings.HasPrefix(ri.Path, "/v1/") {
			continue // operations routes take no key
		}
		if !tested[ri.Method+" "+ri.Path] {
			missing = append(missing, ri.Method+" "+ri.Path)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("routes missing from the auth matrix: %s", strings.Join(missing, ", "))
	}
}

// TestAuthHeader covers the ways an Authorization header can be wrong.
func TestAuthHeader(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("A")
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"bearer admin", "Bearer " + b.AdminKey, 200},
		{"lower-case scheme", "bearer " + b.AdminKey, 200},
		{"upper-case scheme", "BEARER " + b.AdminKey, 200},
		{"extra spaces", "Bearer   " + b.AdminKey + " ", 200},
		{"no header", "", 401},
		{"other scheme of the same length", "Beaver " + b.AdminKey, 401},
		{"empty bearer", "Bearer ", 401},
		{"scheme only", "Bearer", 401},
		{"basic scheme", "Basic " + b.AdminKey, 401},
		{"key without scheme", b.AdminKey, 401},
		{"unknown admin-looking key", "Bearer hza_0000000000000000000000000000000000000000000000000000", 401},
		{"key with a suffix", "Bearer " + b.AdminKey + "x", 401},
		{"key truncated", "Bearer " + b.AdminKey[:len(b.AdminKey)-1], 401},
		{"key upper-cased", "Bearer " + strings.ToUpper(b.AdminKey), 401},
		{"app key where admin is needed", "Bearer " + b.AppKey, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.header != "" {
				hdr = []string{"Authorization", tt.header}
			}
			r := e.call("GET", "/v1/policy", "", nil, hdr...)
			if r.Code != tt.want {
				t.Fatalf("GET /v1/policy with %q = %d, want %d: %s", tt.header, r.Code, tt.want, r.Body)
			}
			if tt.want == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET /v1/policy with %q: WWW-Authenticate = %q, want Bearer ...", tt.header, r.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestAuthManagerOnOtherBrand: a manager key of brand A reaching for a
// store id that exists only in brand B is 404, not 403 — the store of
// another brand must not be revealed.
func TestAuthManagerOnOtherBrand(t *testing.T) {
	e, fx := newAuthFixture(t)
	e.must(201, "PUT", "/v1/stores/only-b", fx.brandB.AdminKey, circleStore("B", 1, 1, 100))
	tests := []struct {
		name, key, path string
		want            int
	}{
		{"manager of A on B's store", fx.keys["manager-s1"], "/v1/stores/only-b", 404},
		{"admin of A on B's store", fx.keys["admin"], "/v1/stores/only-b", 404},
		{"admin of B on its store", fx.keys["admin-b"], "/v1/stores/only-b", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.call("GET", tt.path, tt.key, nil); r.Code != tt.want {
				t.Errorf("GET %s = %d, want %d: %s", tt.path, r.Code, tt.want, r.Body)
			}
		})
	}
	// And the batch that brand B sent for A's device answered 404 inside.
	r := e.call("POST", "/v1/pings/batch", fx.keys["admin-b"], map[string]any{"pings": []any{ping("d1", 1, 1)}})
	var out struct {
		Results []map[string]any `json:"results"`
	}
	r.decode(t, &out)
	if len(out.Results) != 1 || out.Results[0]["status"] != float64(404) {
		t.Errorf("POST /v1/pings/batch by brand B for A's device: results = %v, want one 404 problem", out.Results)
	}
}
