package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotzone/hotzone/push"
)

// call sends a request like e.do, with extra header pairs (name, value,
// ...; an empty value removes the header), and checks what holds for
// every answer: never a 500, always an X-Request-Id, and every error a
// problem+json with type, title and a status equal to the response's.
func (e *env) call(method, path, key string, body any, header ...string) response {
	e.t.Helper()
	return e.send(e.request(method, path, key, body, header...))
}

// request builds what call sends.
func (e *env) request(method, path, key string, body any, header ...string) *http.Request {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// send serves req and checks the answer's invariants.
func (e *env) send(req *http.Request) response {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	r := response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	checkResponse(e.t, req.Method+" "+req.URL.RequestURI(), r)
	return r
}

// checkResponse checks the invariants of every answer.
func checkResponse(t testing.TB, what string, r response) {
	t.Helper()
	if r.Code >= 500 {
		t.Errorf("%s = %d, want no 5xx: %s", what, r.Code, r.Body)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id in the answer", what)
	}
	if r.Code < 400 {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s = %d with Content-Type %q, want application/problem+json", what, r.Code, ct)
	}
	var p struct {
		Type   *string `json:"type"`
		Title  *string `json:"title"`
		Status *int    `json:"status"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Errorf("%s = %d: problem is not JSON: %v: %s", what, r.Code, err, r.Body)
		return
	}
	if p.Type == nil || *p.Type == "" || p.Title == nil || *p.Title == "" || p.Status == nil {
		t.Errorf("%s = %d: problem lacks type, title or status: %s", what, r.Code, r.Body)
	} else if *p.Status != r.Code {
		t.Errorf("%s = %d: problem status = %d", what, r.Code, *p.Status)
	}
}

// checkProblem checks an error answer: its status and, when fields are
// given, exactly those fields in its errors, in order.
func checkProblem(t *testing.T, what string, r response, status int, fields ...string) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("%s = %d, want %d: %s", what, r.Code, status, r.Body)
	}
	checkResponse(t, what, r)
	if len(fields) == 0 {
		return
	}
	var p struct {
		Errors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	r.decode(t, &p)
	var got []string
	for _, e := range p.Errors {
		got = append(got, e.Field)
		if e.Message == "" {
			t.Errorf("%s: error for %q has no message", what, e.Field)
		}
	}
	if strings.Join(got, " ") != strings.Join(fields, " ") {
		t.Errorf("%s: error fields = %q, want %q: %s", what, got, fields, r.Body)
	}
}

// jsonEqual tells whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

func TestCreateBrand(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.call("POST", "/v1/brands", e.operator, map[string]any{"name": "Krispy Donuts"})
	if r.Code != 201 {
		t.Fatalf("POST /v1/brands = %d, want 201: %s", r.Code, r.Body)
	}
	var b brandCreated
	r.decode(t, &b)
	if b.ID == "" || b.Name != "Krispy Donuts" {
		t.Errorf("POST /v1/brands = %s, want an id and the name", r.Body)
	}
	if !strings.HasPrefix(b.AdminKey, "hza_") || !strings.HasPrefix(b.AppKey, "hzp_") {
		t.Errorf("POST /v1/brands keys = %q, %q, want prefixes hza_ and hzp_", b.AdminKey, b.AppKey)
	}
	if b.AdminKey == b.AppKey {
		t.Errorf("POST /v1/brands: admin and app key are equal")
	}
	for kind, key := range map[string]string{"admin": b.AdminKey, "app": b.AppKey} {
		var me struct {
			Kind  string   `json:"kind"`
			Brand brandRef `json:"brand"`
		}
		e.call("GET", "/v1/me", key, nil).decode(t, &me)
		if me.Kind != kind || me.Brand.ID != b.ID || me.Brand.Name != b.Name {
			t.Errorf("GET /v1/me with the new %s key = %+v, want kind %s of brand %s", kind, me, kind, b.ID)
		}
	}
	// A second brand has other keys.
	b2 := e.brand("Other")
	if b2.ID == b.ID || b2.AdminKey == b.AdminKey || b2.AppKey == b.AppKey {
		t.Errorf("two brands share an id or a key")
	}
}

func TestCreateBrandInvalid(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		name  string
		body  any
		want  int
		field string
	}{
		{"no name", `{}`, 400, "name"},
		{"null name", `{"name":null}`, 400, "name"},
		{"empty name", `{"name":""}`, 400, "name"},
		{"blank name", `{"name":"   "}`, 400, "name"},
		{"name not a string", `{"name":5}`, 400, "name"},
		{"unknown field", `{"name":"x","color":"red"}`, 400, "color"},
		{"name in another case", `{"Name":"x"}`, 400, "Name"},
		{"duplicate name", `{"name":"x","name":"y"}`, 400, "name"},
		{"trailing data", `{"name":"x"} {}`, 400, ""},
		{"empty body", ``, 400, ""},
		{"array", `[]`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("POST", "/v1/brands", e.operator, tt.body)
			if tt.field == "" {
				checkProblem(t, "POST /v1/brands", r, tt.want)
				return
			}
			checkProblem(t, "POST /v1/brands", r, tt.want, tt.field)
		})
	}
}

func TestMe(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	store := e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 800))
	var mk managerKeyCreated
	e.must(201, "POST", "/v1/stores/main-st/manager-keys", b.AdminKey, nil).decode(t, &mk)
	brand := `{"id":"` + b.ID + `","name":"Krispy"}`
	tests := []struct {
		name string
		key  string
		want string
	}{
		{"operator", e.operator, `{"kind":"operator","brand":null}`},
		{"admin", b.AdminKey, `{"kind":"admin","brand":` + brand + `}`},
		{"app", b.AppKey, `{"kind":"app","brand":` + brand + `}`},
		{"manager", mk.ManagerKey, `{"kind":"manager","brand":` + brand + `,"store":` + string(store.Body) + `,"live_event":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("GET", "/v1/me", tt.key, nil)
			if r.Code != 200 {
				t.Fatalf("GET /v1/me = %d, want 200: %s", r.Code, r.Body)
			}
			if !jsonEqual(t, r.Body, []byte(tt.want)) {
				t.Errorf("GET /v1/me = %s, want %s", r.Body, tt.want)
			}
		})
	}
	// With a live event, the manager sees it (with its counts).
	var ev map[string]any
	e.must(201, "POST", "/v1/stores/main-st/events", mk.ManagerKey, map[string]any{"title": "Hot Now", "body": "Fresh"}).decode(t, &ev)
	var me struct {
		LiveEvent map[string]any `json:"live_event"`
	}
	e.call("GET", "/v1/me", mk.ManagerKey, nil).decode(t, &me)
	if me.LiveEvent == nil || me.LiveEvent["id"] != ev["id"] || me.LiveEvent["counts"] == nil {
		t.Errorf("GET /v1/me live_event = %v, want the live event %v with counts", me.LiveEvent, ev["id"])
	}
}

const defaultPolicyJSON = `{"min_interval_s":14400,"daily_cap":3,"quiet_hours":{"start":"21:00","end":"08:00"},"max_accuracy_m":500,"presence_ttl_s":1800,"max_ping_age_s":300,"trigger":"enter","dwell_s":120,"max_speed_mps":null,"holdout_pct":0,"attribution_s":7200,"retention_days":30}`

func TestPolicyDefaults(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	r := e.call("GET", "/v1/policy", b.AdminKey, nil)
	if r.Code != 200 {
		t.Fatalf("GET /v1/policy = %d, want 200: %s", r.Code, r.Body)
	}
	if !jsonEqual(t, r.Body, []byte(defaultPolicyJSON)) {
		t.Errorf("GET /v1/policy = %s, want %s", r.Body, defaultPolicyJSON)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /v1/policy Content-Type = %q, want application/json", ct)
	}
}

// policyWith is the default policy with some members replaced.
func policyWith(t *testing.T, changes map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(defaultPolicyJSON), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range changes {
		m[k] = v
	}
	buf, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestPolicyPatch(t *testing.T) {
	tests := []struct {
		name  string
		patch string
		want  map[string]any // members changed from the defaults
	}{
		{"empty patch changes nothing", `{}`, nil},
		{"one member", `{"daily_cap":5}`, map[string]any{"daily_cap": 5}},
		{"several members", `{"min_interval_s":0,"max_accuracy_m":25.5,"presence_ttl_s":60}`, map[string]any{"min_interval_s": 0, "max_accuracy_m": 25.5, "presence_ttl_s": 60}},
		{"quiet hours null", `{"quiet_hours":null}`, map[string]any{"quiet_hours": nil}},
		{"quiet hours wrapping midnight", `{"quiet_hours":{"start":"23:30","end":"06:15"}}`, map[string]any{"quiet_hours": map[string]any{"start": "23:30", "end": "06:15"}}},
		{"quiet hours same day", `{"quiet_hours":{"start":"00:00","end":"23:59"}}`, map[string]any{"quiet_hours": map[string]any{"start": "00:00", "end": "23:59"}}},
		{"lowest values", `{"min_interval_s":0,"daily_cap":0,"max_accuracy_m":1,"presence_ttl_s":60,"max_ping_age_s":10}`,
			map[string]any{"min_interval_s": 0, "daily_cap": 0, "max_accuracy_m": 1, "presence_ttl_s": 60, "max_ping_age_s": 10}},
		{"highest values", `{"min_interval_s":604800,"daily_cap":100,"max_accuracy_m":10000,"presence_ttl_s":86400,"max_ping_age_s":86400}`,
			map[string]any{"min_interval_s": 604800, "daily_cap": 100, "max_accuracy_m": 10000, "presence_ttl_s": 86400, "max_ping_age_s": 86400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			b := e.brand("Krispy")
			want := policyWith(t, tt.want)
			r := e.call("PATCH", "/v1/policy", b.AdminKey, tt.patch)
			if r.Code != 200 {
				t.Fatalf("PATCH /v1/policy %s = %d, want 200: %s", tt.patch, r.Code, r.Body)
			}
			if !jsonEqual(t, r.Body, want) {
				t.Errorf("PATCH /v1/policy %s = %s, want %s", tt.patch, r.Body, want)
			}
			if got := e.call("GET", "/v1/policy", b.AdminKey, nil); !jsonEqual(t, got.Body, want) {
				t.Errorf("GET /v1/policy after PATCH %s = %s, want %s", tt.patch, got.Body, want)
			}
		})
	}
	t.Run("patches add up", func(t *testing.T) {
		e := newEnv(t, Options{})
		b := e.brand("Krispy")
		e.must(200, "PATCH", "/v1/policy", b.AdminKey, `{"daily_cap":7}`)
		e.must(200, "PATCH", "/v1/policy", b.AdminKey, `{"quiet_hours":null}`)
		r := e.must(200, "PATCH", "/v1/policy", b.AdminKey, `{"max_ping_age_s":60}`)
		want := policyWith(t, map[string]any{"daily_cap": 7, "quiet_hours": nil, "max_ping_age_s": 60})
		if !jsonEqual(t, r.Body, want) {
			t.Errorf("PATCH /v1/policy three times = %s, want %s", r.Body, want)
		}
		// Quiet hours come back after being switched off.
		r = e.must(200, "PATCH", "/v1/policy", b.AdminKey, `{"quiet_hours":{"start":"22:00","end":"07:00"}}`)
		want = policyWith(t, map[string]any{"daily_cap": 7, "quiet_hours": map[string]any{"start": "22:00", "end": "07:00"}, "max_ping_age_s": 60})
		if !jsonEqual(t, r.Body, want) {
			t.Errorf("PATCH /v1/policy quiet_hours back = %s, want %s", r.Body, want)
		}
	})
	t.Run("brands are separate", func(t *testing.T) {
		e := newEnv(t, Options{})
		a, b := e.brand("A"), e.brand("B")
		e.must(200, "PATCH", "/v1/policy", a.AdminKey, `{"daily_cap":9}`)
		if r := e.call("GET", "/v1/policy", b.AdminKey, nil); !jsonEqual(t, r.Body, []byte(defaultPolicyJSON)) {
			t.Errorf("GET /v1/policy of brand B after A's PATCH = %s, want the defaults", r.Body)
		}
	})
}

func TestPolicyPatchInvalid(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	tests := []struct {
		name   string
		patch  string
		fields []string
	}{
		{"min_interval_s below", `{"min_interval_s":-1}`, []string{"min_interval_s"}},
		{"min_interval_s above", `{"min_interval_s":604801}`, []string{"min_interval_s"}},
		{"min_interval_s fraction", `{"min_interval_s":1.5}`, []string{"min_interval_s"}},
		{"min_interval_s string", `{"min_interval_s":"60"}`, []string{"min_interval_s"}},
		{"min_interval_s huge", `{"min_interval_s":1e300}`, []string{"min_interval_s"}},
		{"daily_cap below", `{"daily_cap":-1}`, []string{"daily_cap"}},
		{"daily_cap above", `{"daily_cap":101}`, []string{"daily_cap"}},
		{"max_accuracy_m below", `{"max_accuracy_m":0.5}`, []string{"max_accuracy_m"}},
		{"max_accuracy_m above", `{"max_accuracy_m":10000.5}`, []string{"max_accuracy_m"}},
		{"presence_ttl_s below", `{"presence_ttl_s":59}`, []string{"presence_ttl_s"}},
		{"presence_ttl_s above", `{"presence_ttl_s":86401}`, []string{"presence_ttl_s"}},
		{"max_ping_age_s below", `{"max_ping_age_s":9}`, []string{"max_ping_age_s"}},
		{"max_ping_age_s above", `{"max_ping_age_s":86401}`, []string{"max_ping_age_s"}},
		{"quiet start 24:00", `{"quiet_hours":{"start":"24:00","end":"08:00"}}`, []string{"quiet_hours.start"}},
		{"quiet start without leading zero", `{"quiet_hours":{"start":"7:00","end":"08:00"}}`, []string{"quiet_hours.start"}},
		{"quiet end 08:60", `{"quiet_hours":{"start":"21:00","end":"08:60"}}`, []string{"quiet_hours.end"}},
		{"quiet end with seconds", `{"quiet_hours":{"start":"21:00","end":"08:00:00"}}`, []string{"quiet_hours.end"}},
		{"quiet end missing", `{"quiet_hours":{"start":"21:00"}}`, []string{"quiet_hours.end"}},
		{"quiet start null", `{"quiet_hours":{"start":null,"end":"08:00"}}`, []string{"quiet_hours.start"}},
		{"quiet hours unknown member", `{"quiet_hours":{"start":"21:00","end":"08:00","tz":"UTC"}}`, []string{"quiet_hours.tz"}},
		{"quiet hours a string", `{"quiet_hours":"21:00-08:00"}`, []string{"quiet_hours"}},
		{"one good, one bad", `{"daily_cap":5,"presence_ttl_s":1}`, []string{"presence_ttl_s"}},
		{"two bad", `{"daily_cap":500,"presence_ttl_s":1}`, []string{"daily_cap", "presence_ttl_s"}},
		{"unknown member", `{"daily_cap":5,"cap":5}`, []string{"cap"}},
		{"member in another case", `{"Daily_Cap":5}`, []string{"Daily_Cap"}},
		{"duplicate member", `{"daily_cap":5,"daily_cap":6}`, []string{"daily_cap"}},
		{"not an object", `[]`, nil},
		{"trailing data", `{"daily_cap":5}x`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("PATCH", "/v1/policy", b.AdminKey, tt.patch)
			checkProblem(t, "PATCH /v1/policy "+tt.patch, r, 400, tt.fields...)
			if got := e.call("GET", "/v1/policy", b.AdminKey, nil); !jsonEqual(t, got.Body, []byte(defaultPolicyJSON)) {
				t.Errorf("GET /v1/policy after the failed PATCH = %s, want it unchanged", got.Body)
			}
		})
	}
}

// Fence shapes used below, around lower Manhattan.
var (
	squareOuter = [][2]float64{{-74.02, 40.70}, {-74.00, 40.70}, {-74.00, 40.72}, {-74.02, 40.72}, {-74.02, 40.70}}
	squareHole  = [][2]float64{{-74.015, 40.705}, {-74.015, 40.715}, {-74.005, 40.715}, {-74.005, 40.705}, {-74.015, 40.705}}
)

func polygonStore(name string, rings ...[][2]float64) map[string]any {
	return map[string]any{"name": name, "timezone": "America/New_York", "tags": []string{"poly"},
		"fence": map[string]any{"polygon": map[string]any{"type": "Polygon", "coordinates": rings}}}
}

// storeOut is a store as answered.
type storeOut struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Timezone  string          `json:"timezone"`
	Tags      []string        `json:"tags"`
	Fence     json.RawMessage `json:"fence"`
	BBox      []float64       `json:"bbox"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// insideIDs pings and answers the ids of the stores the ping is inside.
func insideIDs(t *testing.T, e *env, key, device string, lat, lon float64) []string {
	t.Helper()
	r := e.call("POST", "/v1/pings", key, ping(device, lat, lon))
	if r.Code != 200 {
		t.Fatalf("POST /v1/pings (%v, %v) = %d, want 200: %s", lat, lon, r.Code, r.Body)
	}
	var out struct {
		Inside []insideJSON `json:"inside"`
	}
	r.decode(t, &out)
	ids := []string{}
	for _, in := range out.Inside {
		ids = append(ids, in.StoreID)
	}
	slices.Sort(ids)
	return ids
}

func TestPutStore(t *testing.T) {
	clock := newClock("2026-11-22T10:00:00Z")
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")

	r := e.call("PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 800))
	if r.Code != 201 {
		t.Fatalf("PUT /v1/stores/main-st = %d, want 201: %s", r.Code, r.Body)
	}
	var created storeOut
	r.decode(t, &created)
	wantFence := `{"circle":{"lat":40.7128,"lon":-74.006,"radius_m":800}}`
	if created.ID != "main-st" || created.Name != "Main St" || created.Timezone != "America/New_York" ||
		!slices.Equal(created.Tags, []string{"test"}) || !jsonEqual(t, created.Fence, []byte(wantFence)) {
		t.Errorf("PUT /v1/stores/main-st = %s, want the store as sent", r.Body)
	}
	if !created.CreatedAt.Equal(clock.now()) || !created.UpdatedAt.Equal(clock.now()) {
		t.Errorf("PUT /v1/stores/main-st created_at, updated_at = %v, %v, want both %v", created.CreatedAt, created.UpdatedAt, clock.now())
	}
	if len(created.BBox) != 4 || !(created.BBox[0] < -74.006 && created.BBox[2] > -74.006 && created.BBox[1] < 40.7128 && created.BBox[3] > 40.7128) {
		t.Errorf("PUT /v1/stores/main-st bbox = %v, want [west, south, east, north] around the centre", created.BBox)
	}
	if got := e.call("GET", "/v1/stores/main-st", b.AdminKey, nil); got.Code != 200 || !bytes.Equal(got.Body, r.Body) {
		t.Errorf("GET /v1/stores/main-st = %d %s, want 200 and the PUT's answer %s", got.Code, got.Body, r.Body)
	}

	clock.advance(time.Hour)
	repl := map[string]any{"name": "Main Street", "fence": map[string]any{"circle": map[string]any{"lat": 40.7, "lon": -74.0, "radius_m": 50}}}
	r = e.call("PUT", "/v1/stores/main-st", b.AdminKey, repl)
	if r.Code != 200 {
		t.Fatalf("PUT /v1/stores/main-st again = %d, want 200: %s", r.Code, r.Body)
	}
	var replaced storeOut
	r.decode(t, &replaced)
	if !replaced.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("PUT /v1/stores/main-st again: created_at = %v, want it kept at %v", replaced.CreatedAt, created.CreatedAt)
	}
	if !replaced.UpdatedAt.Equal(clock.now()) {
		t.Errorf("PUT /v1/stores/main-st again: updated_at = %v, want %v", replaced.UpdatedAt, clock.now())
	}
	// A replace is whole: absent members take their defaults.
	if replaced.Name != "Main Street" || replaced.Timezone != "UTC" || replaced.Tags == nil || len(replaced.Tags) != 0 {
		t.Errorf("PUT /v1/stores/main-st again = %s, want the new name, timezone UTC and tags []", r.Body)
	}
	if !bytes.Contains(r.Body, []byte(`"tags":[]`)) {
		t.Errorf("PUT /v1/stores/main-st again = %s, want \"tags\":[]", r.Body)
	}
	// The fence index follows the replace.
	e.device(b.AppKey, "d1")
	if got := insideIDs(t, e, b.AppKey, "d1", 40.7128, -74.0060); len(got) != 0 {
		t.Errorf("inside the old fence after replace = %v, want []", got)
	}
	if got := insideIDs(t, e, b.AppKey, "d1", 40.7, -74.0); !slices.Equal(got, []string{"main-st"}) {
		t.Errorf("inside the new fence = %v, want [main-st]", got)
	}
}

func TestPutStoreInvalid(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	orig := e.must(201, "PUT", "/v1/stores/s1", b.AdminKey, circleStore("S1", 40.7128, -74.0060, 800))
	circle := func(lat, lon, r any) map[string]any {
		return map[string]any{"name": "S", "fence": map[string]any{"circle": map[string]any{"lat": lat, "lon": lon, "radius_m": r}}}
	}
	with := func(k string, v any) map[string]any {
		m := circleStore("S", 40.7128, -74.0060, 800)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	long := strings.Repeat("x", 65)
	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = "t" + strconv.Itoa(i)
	}
	tests := []struct {
		name   string
		id     string
		body   any
		fields []string
	}{
		{"radius too small", "s1", circle(40.7, -74.0, 9.9), []string{"fence.circle.radius_m"}},
		{"radius too large", "s1", circle(40.7, -74.0, 50001), []string{"fence.circle.radius_m"}},
		{"radius missing", "s1", `{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74.0}}}`, []string{"fence.circle.radius_m"}},
		{"radius a string", "s1", circle(40.7, -74.0, "800"), []string{"fence.circle.radius_m"}},
		{"lat out of range", "s1", circle(90.5, -74.0, 800), []string{"fence.circle.lat"}},
		{"lon out of range", "s1", circle(40.7, -180.5, 800), []string{"fence.circle.lon"}},
		{"lat null", "s1", `{"name":"S","fence":{"circle":{"lat":null,"lon":-74.0,"radius_m":800}}}`, []string{"fence.circle.lat"}},
		{"circle unknown member", "s1", `{"name":"S","fence":{"circle":{"lat":1,"lon":1,"radius_m":800,"radius":5}}}`, []string{"fence.circle.radius"}},
		{"name missing", "s1", with("name", nil), []string{"name"}},
		{"name empty", "s1", with("name", ""), []string{"name"}},
		{"timezone unknown", "s1", with("timezone", "Mars/Olympus_Mons"), []string{"timezone"}},
		{"timezone empty", "s1", with("timezone", ""), []string{"timezone"}},
		{"timezone Local", "s1", with("timezone", "Local"), []string{"timezone"}},
		{"timezone a path", "s1", with("timezone", "../../etc/passwd"), []string{"timezone"}},
		{"tag empty", "s1", with("tags", []string{""}), []string{"tags[0]"}},
		{"second tag too long", "s1", with("tags", []string{"ok", long}), []string{"tags[1]"}},
		{"too many tags", "s1", with("tags", tooMany), []string{"tags"}},
		{"tags not strings", "s1", with("tags", []int{1}), []string{"tags[0]"}},
		{"fence missing", "s1", with("fence", nil), []string{"fence"}},
		{"fence empty", "s1", with("fence", map[string]any{}), []string{"fence"}},
		{"fence both shapes", "s1", with("fence", map[string]any{"circle": map[string]any{"lat": 1, "lon": 1, "radius_m": 100},
			"polygon": map[string]any{"type": "Polygon", "coordinates": [][][2]float64{squareOuter}}}), []string{"fence"}},
		{"polygon not closed", "s1", polygonStore("P", squareOuter[:4]), []string{"fence.polygon.coordinates[0]"}},
		{"polygon crossing itself", "s1", polygonStore("P", [][2]float64{{0, 0}, {1, 1}, {1, 0}, {0, 1}, {0, 0}}), []string{"fence.polygon.coordinates[0]"}},
		{"polygon hole outside", "s1", polygonStore("P", squareOuter, [][2]float64{{10, 10}, {10, 11}, {11, 11}, {11, 10}, {10, 10}}), []string{"fence.polygon.coordinates[1]"}},
		{"polygon wrong type", "s1", with("fence", map[string]any{"polygon": map[string]any{"type": "LineString", "coordinates": squareOuter}}), []string{"fence.polygon.type"}},
		{"store_id with a space", "bad%20id", circleStore("S", 1, 1, 100), []string{"store_id"}},
		{"store_id with a bang", "bad!", circleStore("S", 1, 1, 100), []string{"store_id"}},
		{"store_id too long", long, circleStore("S", 1, 1, 100), []string{"store_id"}},
		{"everything wrong", "bad!", `{"name":"","timezone":"Nowhere","tags":[""],"fence":{"circle":{"lat":1,"lon":1,"radius_m":1}}}`,
			[]string{"store_id", "name", "timezone", "tags[0]", "fence.circle.radius_m"}},
		{"unknown member", "s1", `{"name":"S","fence":{"circle":{"lat":1,"lon":1,"radius_m":100}},"color":"red"}`, []string{"color"}},
		{"member in another case", "s1", `{"Name":"S","fence":{"circle":{"lat":1,"lon":1,"radius_m":100}}}`, []string{"Name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/stores/" + tt.id
			checkProblem(t, "PUT "+path, e.call("PUT", path, b.AdminKey, tt.body), 400, tt.fields...)
			if got := e.call("GET", "/v1/stores/s1", b.AdminKey, nil); !bytes.Equal(got.Body, orig.Body) {
				t.Errorf("GET /v1/stores/s1 after a failed PUT = %s, want it unchanged: %s", got.Body, orig.Body)
			}
		})
	}
	var list page[storeOut]
	e.call("GET", "/v1/stores", b.AdminKey, nil).decode(t, &list)
	if len(list.Items) != 1 {
		t.Errorf("GET /v1/stores after failed PUTs = %d stores, want 1", len(list.Items))
	}
	// Boundary values are accepted.
	for _, radius := range []float64{10, 50000} {
		e.must(200, "PUT", "/v1/stores/s1", b.AdminKey, circleStore("S1", 90, 180, radius))
		e.must(200, "PUT", "/v1/stores/s1", b.AdminKey, circleStore("S1", -90, -180, radius))
	}
	e.must(201, "PUT", "/v1/stores/"+long[:64], b.AdminKey, circleStore("S", 1, 1, 100))
	e.must(201, "PUT", "/v1/stores/A.b_c-9", b.AdminKey, circleStore("S", 1, 1, 100))
	e.must(200, "PUT", "/v1/stores/s1", b.AdminKey, with("tags", tooMany[:20]))
}

func TestPolygonStoreWithHole(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	r := e.call("PUT", "/v1/stores/donut", b.AdminKey, polygonStore("Donut", squareOuter, squareHole))
	if r.Code != 201 {
		t.Fatalf("PUT /v1/stores/donut = %d, want 201: %s", r.Code, r.Body)
	}
	var st storeOut
	r.decode(t, &st)
	if want := []float64{-74.02, 40.70, -74.00, 40.72}; !slices.Equal(st.BBox, want) {
		t.Errorf("PUT /v1/stores/donut bbox = %v, want %v", st.BBox, want)
	}
	var fence struct {
		Polygon struct {
			Type        string         `json:"type"`
			Coordinates [][][2]float64 `json:"coordinates"`
		} `json:"polygon"`
	}
	if err := json.Unmarshal(st.Fence, &fence); err != nil || fence.Polygon.Type != "Polygon" || len(fence.Polygon.Coordinates) != 2 {
		t.Errorf("PUT /v1/stores/donut fence = %s, want a Polygon with two rings", st.Fence)
	}
	e.device(b.AppKey, "d1")
	tests := []struct {
		name     string
		lat, lon float64
		want     []string
	}{
		{"in the ring", 40.702, -74.018, []string{"donut"}},
		{"in the hole", 40.71, -74.01, []string{}},
		{"outside", 40.75, -74.01, []string{}},
		{"on the outer corner", 40.70, -74.02, []string{"donut"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := insideIDs(t, e, b.AppKey, "d1", tt.lat, tt.lon); !slices.Equal(got, tt.want) {
				t.Errorf("POST /v1/pings (%v, %v) inside = %v, want %v", tt.lat, tt.lon, got, tt.want)
			}
		})
	}
	// A MultiPolygon: a point is inside if any part holds it.
	multi := map[string]any{"name": "Two", "fence": map[string]any{"polygon": map[string]any{"type": "MultiPolygon",
		"coordinates": [][][][2]float64{{squareOuter, squareHole}, {{{10, 10}, {11, 10}, {11, 11}, {10, 11}, {10, 10}}}}}}}
	e.must(201, "PUT", "/v1/stores/two", b.AdminKey, multi)
	if got := insideIDs(t, e, b.AppKey, "d1", 10.5, 10.5); !slices.Equal(got, []string{"two"}) {
		t.Errorf("inside the second part = %v, want [two]", got)
	}
	if got := insideIDs(t, e, b.AppKey, "d1", 40.702, -74.018); !slices.Equal(got, []string{"donut", "two"}) {
		t.Errorf("inside both = %v, want [donut two]", got)
	}
}

// listPage is a page of any list.
type listPage struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

// walk follows next_cursor from path (which has its own query) and
// answers the ids of every item, checking each page's size.
func walk(t *testing.T, e *env, key, path string, limit int) (ids []string, pages int) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	for pages = 1; pages < 100; pages++ {
		url := path + sep + "limit=" + strconv.Itoa(limit)
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		r := e.call("GET", url, key, nil)
		if r.Code != 200 {
			t.Fatalf("GET %s = %d, want 200: %s", url, r.Code, r.Body)
		}
		var pg listPage
		r.decode(t, &pg)
		if pg.Items == nil || pg.NextCursor == nil {
			t.Fatalf("GET %s = %s, want items and next_cursor always present", url, r.Body)
		}
		if len(pg.Items) > limit {
			t.Fatalf("GET %s = %d items, want at most %d", url, len(pg.Items), limit)
		}
		for _, it := range pg.Items {
			var v struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(it, &v); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, v.ID)
		}
		if *pg.NextCursor == "" {
			return ids, pages
		}
		if len(pg.Items) != limit {
			t.Fatalf("GET %s = %d items and a next_cursor, want a full page of %d", url, len(pg.Items), limit)
		}
		cursor = *pg.NextCursor
	}
	t.Fatalf("GET %s: next_cursor never ended", path)
	return nil, 0
}

func TestListStores(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")

	// Empty: items is [] and next_cursor "".
	r := e.must(200, "GET", "/v1/stores", b.AdminKey, nil)
	if !jsonEqual(t, r.Body, []byte(`{"items":[],"next_cursor":""}`)) {
		t.Errorf("GET /v1/stores with no stores = %s, want {\"items\":[],\"next_cursor\":\"\"}", r.Body)
	}

	var all []string
	for i := range 7 {
		id := "store-" + strconv.Itoa(i)
		st := circleStore("Store "+strconv.Itoa(i), 40, -74+float64(i), 100)
		if i%2 == 0 {
			st["tags"] = []string{"drive-thru", "even"}
		} else {
			st["tags"] = []string{"mall"}
		}
		e.must(201, "PUT", "/v1/stores/"+id, b.AdminKey, st)
		all = append(all, id)
	}
	// Another brand's stores never show.
	other := e.brand("Other")
	e.must(201, "PUT", "/v1/stores/zz-other", other.AdminKey, circleStore("Z", 1, 1, 100))

	tests := []struct {
		name      string
		path      string
		limit     int
		wantIDs   []string
		wantPages int
	}{
		{"one page", "/v1/stores", 100, all, 1},
		{"pages of three", "/v1/stores", 3, all, 3},
		{"pages of one", "/v1/stores", 1, all, 7},
		{"exact pages", "/v1/stores", 7, all, 1},
		{"tag drive-thru", "/v1/stores?tag=drive-thru", 2, []string{"store-0", "store-2", "store-4", "store-6"}, 2},
		{"tag mall", "/v1/stores?tag=mall", 100, []string{"store-1", "store-3", "store-5"}, 1},
		{"unknown tag", "/v1/stores?tag=nope", 10, nil, 1},
		{"limit 1000", "/v1/stores", 1000, all, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, pages := walk(t, e, b.AdminKey, tt.path, tt.limit)
			if !slices.Equal(ids, tt.wantIDs) || pages != tt.wantPages {
				t.Errorf("GET %s by %d = %v in %d pages, want %v in %d", tt.path, tt.limit, ids, pages, tt.wantIDs, tt.wantPages)
			}
		})
	}
	t.Run("default limit is 100", func(t *testing.T) {
		var pg listPage
		e.must(200, "GET", "/v1/stores", b.AdminKey, nil).decode(t, &pg)
		if len(pg.Items) != 7 || *pg.NextCursor != "" {
			t.Errorf("GET /v1/stores = %d items, next %q, want 7 and \"\"", len(pg.Items), *pg.NextCursor)
		}
	})
	t.Run("items are stores as GET answers them", func(t *testing.T) {
		var pg listPage
		e.must(200, "GET", "/v1/stores?limit=1", b.AdminKey, nil).decode(t, &pg)
		one := e.must(200, "GET", "/v1/stores/store-0", b.AdminKey, nil)
		if len(pg.Items) != 1 || !jsonEqual(t, pg.Items[0], one.Body) {
			t.Errorf("GET /v1/stores?limit=1 item = %s, want %s", pg.Items, one.Body)
		}
	})

	bad := []struct {
		name, query, field string
	}{
		{"limit 0", "limit=0", "limit"},
		{"limit 1001", "limit=1001", "limit"},
		{"limit negative", "limit=-1", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"limit empty", "limit=", "limit"},
		{"limit fraction", "limit=1.5", "limit"},
		{"cursor garbage", "cursor=!!!", "cursor"},
		{"cursor not ours", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("store-3")), "cursor"},
		{"cursor empty after prefix", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("v1:")), "cursor"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/stores?" + tt.query
			checkProblem(t, "GET "+path, e.call("GET", path, b.AdminKey, nil), 400, tt.field)
		})
	}
}

func TestDeleteStore(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/s1", b.AdminKey, circleStore("S1", 40.7128, -74.0060, 800))
	e.must(201, "PUT", "/v1/stores/s2", b.AdminKey, circleStore("S2", 40.7128, -74.0060, 900))
	var mk, mk2 managerKeyCreated
	e.must(201, "POST", "/v1/stores/s1/manager-keys", b.AdminKey, nil).decode(t, &mk)
	e.must(201, "POST", "/v1/stores/s2/manager-keys", b.AdminKey, nil).decode(t, &mk2)
	e.must(200, "GET", "/v1/stores/s1", mk.ManagerKey, nil)
	e.device(b.AppKey, "d1")

	r := e.call("DELETE", "/v1/stores/s1", b.AdminKey, nil)
	if r.Code != 204 || len(r.Body) != 0 {
		t.Fatalf("DELETE /v1/stores/s1 = %d %q, want 204 and no body", r.Code, r.Body)
	}
	checkProblem(t, "GET /v1/stores/s1 after DELETE", e.call("GET", "/v1/stores/s1", b.AdminKey, nil), 404)
	checkProblem(t, "DELETE /v1/stores/s1 again", e.call("DELETE", "/v1/stores/s1", b.AdminKey, nil), 404)
	checkProblem(t, "GET /v1/stores/s1/manager-keys after DELETE", e.call("GET", "/v1/stores/s1/manager-keys", b.AdminKey, nil), 404)
	checkProblem(t, "POST /v1/stores/s1/manager-keys after DELETE", e.call("POST", "/v1/stores/s1/manager-keys", b.AdminKey, nil), 404)
	// Its manager keys stop working; the other store's do not.
	r = e.call("GET", "/v1/me", mk.ManagerKey, nil)
	checkProblem(t, "GET /v1/me with the deleted store's manager key", r, 401)
	checkProblem(t, "GET /v1/stores/s1 with its manager key", e.call("GET", "/v1/stores/s1", mk.ManagerKey, nil), 401)
	e.must(200, "GET", "/v1/me", mk2.ManagerKey, nil)
	// It leaves the list, the export and the fence index.
	ids, _ := walk(t, e, b.AdminKey, "/v1/stores", 10)
	if !slices.Equal(ids, []string{"s2"}) {
		t.Errorf("GET /v1/stores after DELETE = %v, want [s2]", ids)
	}
	if got := insideIDs(t, e, b.AppKey, "d1", 40.7128, -74.0060); !slices.Equal(got, []string{"s2"}) {
		t.Errorf("inside after DELETE = %v, want [s2]", got)
	}
	var fc struct {
		Features []any `json:"features"`
	}
	e.must(200, "GET", "/v1/stores.geojson", b.AdminKey, nil).decode(t, &fc)
	if len(fc.Features) != 1 {
		t.Errorf("GET /v1/stores.geojson after DELETE = %d features, want 1", len(fc.Features))
	}
	// The id can be used again, and the old keys stay dead.
	e.must(201, "PUT", "/v1/stores/s1", b.AdminKey, circleStore("S1", 1, 1, 100))
	checkProblem(t, "GET /v1/stores/s1 with the old manager key", e.call("GET", "/v1/stores/s1", mk.ManagerKey, nil), 401)
	var keys listPage
	e.must(200, "GET", "/v1/stores/s1/manager-keys", b.AdminKey, nil).decode(t, &keys)
	if len(keys.Items) != 0 {
		t.Errorf("GET /v1/stores/s1/manager-keys of the re-created store = %d keys, want 0", len(keys.Items))
	}
}

func TestManagerKeys(t *testing.T) {
	clock := newClock("2026-11-22T10:00:00Z")
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/s1", b.AdminKey, circleStore("S1", 40.7128, -74.0060, 800))
	e.must(201, "PUT", "/v1/stores/s2", b.AdminKey, circleStore("S2", 40.7128, -74.0060, 800))

	tests := []struct {
		name      string
		body      any
		wantLabel any
	}{
		{"with label", map[string]any{"label": "front counter"}, "front counter"},
		{"null label", `{"label":null}`, nil},
		{"empty object", `{}`, nil},
		{"no body", nil, nil},
	}
	var created []managerKeyCreated
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("POST", "/v1/stores/s1/manager-keys", b.AdminKey, tt.body)
			if r.Code != 201 {
				t.Fatalf("POST /v1/stores/s1/manager-keys = %d, want 201: %s", r.Code, r.Body)
			}
			m := r.json(t)
			for _, member := range []string{"id", "label", "manager_key", "tablet_url", "created_at"} {
				if _, ok := m[member]; !ok {
					t.Errorf("POST /v1/stores/s1/manager-keys = %s, want member %q", r.Body, member)
				}
			}
			if m["label"] != tt.wantLabel {
				t.Errorf("POST /v1/stores/s1/manager-keys label = %#v, want %#v", m["label"], tt.wantLabel)
			}
			var mk managerKeyCreated
			r.decode(t, &mk)
			if !strings.HasPrefix(mk.ManagerKey, "hzm_") || mk.TabletURL != "/tablet#key="+mk.ManagerKey || mk.ID == "" {
				t.Errorf("POST /v1/stores/s1/manager-keys = %s, want an hzm_ key and tablet_url /tablet#key=<it>", r.Body)
			}
			if !mk.CreatedAt.Equal(clock.now()) {
				t.Errorf("POST /v1/stores/s1/manager-keys created_at = %v, want %v", mk.CreatedAt, clock.now())
			}
			created = append(created, mk)
		})
	}
	if len(created) != len(tests) {
		t.FailNow()
	}
	t.Run("invalid", func(t *testing.T) {
		for _, body := range []string{`{"label":5}`, `{"lable":"x"}`, `{"label":"` + strings.Repeat("x", 101) + `"}`, `[]`} {
			checkProblem(t, "POST /v1/stores/s1/manager-keys "+body, e.call("POST", "/v1/stores/s1/manager-keys", b.AdminKey, body), 400)
		}
		checkProblem(t, "POST /v1/stores/nope/manager-keys", e.call("POST", "/v1/stores/nope/manager-keys", b.AdminKey, nil), 404)
		checkProblem(t, "GET /v1/stores/nope/manager-keys", e.call("GET", "/v1/stores/nope/manager-keys", b.AdminKey, nil), 404)
	})

	list := func() (raw []byte, items []map[string]any) {
		t.Helper()
		r := e.must(200, "GET", "/v1/stores/s1/manager-keys", b.AdminKey, nil)
		var pg struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		r.decode(t, &pg)
		if pg.Items == nil || pg.NextCursor == nil {
			t.Fatalf("GET /v1/stores/s1/manager-keys = %s, want items and next_cursor", r.Body)
		}
		return r.Body, pg.Items
	}
	raw, items := list()
	if len(items) != len(created) {
		t.Fatalf("GET /v1/stores/s1/manager-keys = %d keys, want %d", len(items), len(created))
	}
	if bytes.Contains(raw, []byte("hzm_")) {
		t.Errorf("GET /v1/stores/s1/manager-keys = %s, shows a key", raw)
	}
	for i, it := range items {
		if it["id"] != created[i].ID {
			t.Errorf("GET /v1/stores/s1/manager-keys [%d] id = %v, want %s (oldest first)", i, it["id"], created[i].ID)
		}
		for _, member := range []string{"id", "label", "created_at", "last_used_at"} {
			if _, ok := it[member]; !ok {
				t.Errorf("GET /v1/stores/s1/manager-keys [%d] = %v, want member %q", i, it, member)
			}
		}
		if it["last_used_at"] != nil {
			t.Errorf("GET /v1/stores/s1/manager-keys [%d] last_used_at = %v before use, want null", i, it["last_used_at"])
		}
	}
	if items[0]["label"] != "front counter" || items[1]["label"] != nil {
		t.Errorf("GET /v1/stores/s1/manager-keys labels = %v, %v, want \"front counter\", null", items[0]["label"], items[1]["label"])
	}
	// Another store's list is its own.
	var other listPage
	e.must(200, "GET", "/v1/stores/s2/manager-keys", b.AdminKey, nil).decode(t, &other)
	if len(other.Items) != 0 {
		t.Errorf("GET /v1/stores/s2/manager-keys = %d keys, want 0", len(other.Items))
	}

	// Use sets last_used_at.
	clock.advance(90 * time.Second)
	e.must(200, "GET", "/v1/stores/s1", created[0].ManagerKey, nil)
	_, items = list()
	if got, _ := time.Parse(time.RFC3339, fmt.Sprint(items[0]["last_used_at"])); !got.Equal(clock.now()) {
		t.Errorf("last_used_at after use = %v, want %v", items[0]["last_used_at"], clock.now())
	}
	if items[1]["last_used_at"] != nil {
		t.Errorf("last_used_at of an unused key = %v, want null", items[1]["last_used_at"])
	}

	// Delete: the key is 401 at once and leaves the list.
	r := e.call("DELETE", "/v1/manager-keys/"+created[0].ID, b.AdminKey, nil)
	if r.Code != 204 || len(r.Body) != 0 {
		t.Fatalf("DELETE /v1/manager-keys/%s = %d %q, want 204 and no body", created[0].ID, r.Code, r.Body)
	}
	checkProblem(t, "GET /v1/stores/s1 with a deleted key", e.call("GET", "/v1/stores/s1", created[0].ManagerKey, nil), 401)
	checkProblem(t, "GET /v1/me with a deleted key", e.call("GET", "/v1/me", created[0].ManagerKey, nil), 401)
	e.must(200, "GET", "/v1/stores/s1", created[1].ManagerKey, nil)
	_, items = list()
	if len(items) != len(created)-1 || items[0]["id"] != created[1].ID {
		t.Errorf("GET /v1/stores/s1/manager-keys after delete = %v, want the other %d keys", items, len(created)-1)
	}
	checkProblem(t, "DELETE the key again", e.call("DELETE", "/v1/manager-keys/"+created[0].ID, b.AdminKey, nil), 404)
	checkProblem(t, "DELETE an unknown key", e.call("DELETE", "/v1/manager-keys/nope", b.AdminKey, nil), 404)
	// Another brand cannot delete it.
	ob := e.brand("Other")
	checkProblem(t, "DELETE another brand's key", e.call("DELETE", "/v1/manager-keys/"+created[1].ID, ob.AdminKey, nil), 404)
	e.must(200, "GET", "/v1/stores/s1", created[1].ManagerKey, nil)
}

// feature is a GeoJSON Feature for import bodies.
func feature(geometry any, props map[string]any) map[string]any {
	return map[string]any{"type": "Feature", "geometry": geometry, "properties": props}
}

func pointFeature(id string, lon, lat, radius float64) map[string]any {
	return feature(map[string]any{"type": "Point", "coordinates": []float64{lon, lat}},
		map[string]any{"id": id, "name": "Store " + id, "timezone": "America/New_York", "tags": []string{"imported"}, "radius_m": radius})
}

func polygonFeature(id string, rings ...[][2]float64) map[string]any {
	return feature(map[string]any{"type": "Polygon", "coordinates": rings}, map[string]any{"id": id, "name": "Poly " + id})
}

func collection(features ...any) map[string]any {
	return map[string]any{"type": "FeatureCollection", "features": features}
}

type importResult struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
}

func TestImportStores(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/b", b.AdminKey, circleStore("Old B", 1, 1, 100))

	body := collection(pointFeature("a", -74.006, 40.7128, 300), pointFeature("b", -73.99, 40.75, 200), polygonFeature("c", squareOuter, squareHole))
	r := e.call("POST", "/v1/stores/import", b.AdminKey, body)
	if r.Code != 200 {
		t.Fatalf("POST /v1/stores/import = %d, want 200: %s", r.Code, r.Body)
	}
	if !jsonEqual(t, r.Body, []byte(`{"created":2,"updated":1}`)) {
		t.Errorf("POST /v1/stores/import = %s, want {\"created\":2,\"updated\":1}", r.Body)
	}
	var a, bb, c storeOut
	e.must(200, "GET", "/v1/stores/a", b.AdminKey, nil).decode(t, &a)
	e.must(200, "GET", "/v1/stores/b", b.AdminKey, nil).decode(t, &bb)
	e.must(200, "GET", "/v1/stores/c", b.AdminKey, nil).decode(t, &c)
	if a.Name != "Store a" || a.Timezone != "America/New_York" || !slices.Equal(a.Tags, []string{"imported"}) ||
		!jsonEqual(t, a.Fence, []byte(`{"circle":{"lat":40.7128,"lon":-74.006,"radius_m":300}}`)) {
		t.Errorf("GET /v1/stores/a after import = %+v, want the imported point store", a)
	}
	if bb.Name != "Store b" {
		t.Errorf("GET /v1/stores/b after import name = %q, want it replaced by \"Store b\"", bb.Name)
	}
	if c.Timezone != "UTC" || c.Tags == nil || len(c.Tags) != 0 {
		t.Errorf("GET /v1/stores/c after import = %+v, want timezone UTC and tags []", c)
	}
	// Again: all updates.
	r = e.must(200, "POST", "/v1/stores/import", b.AdminKey, body)
	if !jsonEqual(t, r.Body, []byte(`{"created":0,"updated":3}`)) {
		t.Errorf("POST /v1/stores/import again = %s, want {\"created\":0,\"updated\":3}", r.Body)
	}
	// The imported fences answer pings.
	e.device(b.AppKey, "d1")
	if got := insideIDs(t, e, b.AppKey, "d1", 40.702, -74.018); !slices.Equal(got, []string{"c"}) {
		t.Errorf("inside the imported polygon = %v, want [c]", got)
	}
	if got := insideIDs(t, e, b.AppKey, "d1", 40.7128, -74.006); !slices.Equal(got, []string{"a"}) {
		t.Errorf("inside the imported circle = %v, want [a]", got)
	}
	// 32 MiB is the import limit.
	huge := `{"type":"FeatureCollection","features":[]` + strings.Repeat(" ", 32<<20) + `}`
	checkProblem(t, "POST /v1/stores/import over 32 MiB", e.call("POST", "/v1/stores/import", b.AdminKey, huge), 413)
	r = e.call("POST", "/v1/stores/import", b.AdminKey, huge[:32<<20-1]+"}")
	if r.Code != 200 {
		t.Errorf("POST /v1/stores/import of 32 MiB = %d, want 200: %.300s", r.Code, r.Body)
	}
	// An empty collection is fine and changes nothing.
	r = e.must(200, "POST", "/v1/stores/import", b.AdminKey, `{"type":"FeatureCollection","features":[]}`)
	if !jsonEqual(t, r.Body, []byte(`{"created":0,"updated":0}`)) {
		t.Errorf("POST /v1/stores/import of nothing = %s, want zeros", r.Body)
	}
	// GeoJSON's optional members are accepted where RFC 7946 puts them.
	r = e.call("POST", "/v1/stores/import", b.AdminKey, `{"type":"FeatureCollection","bbox":[-180,-90,180,90],"features":[
		{"type":"Feature","id":"x1","bbox":[0,0,2,2],"geometry":{"type":"Point","coordinates":[1,1],"bbox":[1,1,1,1]},"properties":{"id":"x1","name":"X1","radius_m":100}},
		{"type":"Feature","id":7,"geometry":{"type":"Polygon","bbox":[0,0,1,1],"coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]},"properties":{"id":"x2","name":"X2"}}]}`)
	if r.Code != 200 || !jsonEqual(t, r.Body, []byte(`{"created":2,"updated":0}`)) {
		t.Errorf("POST /v1/stores/import with ids and bboxes = %d %s, want 200 and 2 created", r.Code, r.Body)
	}
	// application/geo+json is JSON too.
	r = e.call("POST", "/v1/stores/import", b.AdminKey, collection(pointFeature("geo", 1, 1, 100)), "Content-Type", "application/geo+json")
	if r.Code != 200 {
		t.Errorf("POST /v1/stores/import as application/geo+json = %d, want 200: %s", r.Code, r.Body)
	}
}

func TestImportStoresInvalid(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	good := func(id string) map[string]any { return pointFeature(id, -74, 40.7, 100) }
	withProps := func(id string, change map[string]any) map[string]any {
		f := good(id)
		p := f["properties"].(map[string]any)
		for k, v := range change {
			if v == nil {
				delete(p, k)
			} else {
				p[k] = v
			}
		}
		return f
	}
	tests := []struct {
		name   string
		body   any
		fields []string
	}{
		{"bad id", collection(good("g0"), withProps("g1", map[string]any{"id": "bad id!"}), good("g2")), []string{"features[1].properties.id"}},
		{"missing id", collection(good("g0"), withProps("g1", map[string]any{"id": nil})), []string{"features[1].properties.id"}},
		{"bad geometry", collection(good("g0"), good("g1"), feature(map[string]any{"type": "LineString", "coordinates": [][2]float64{{0, 0}, {1, 1}}},
			map[string]any{"id": "g2", "name": "x"})), []string{"features[2].geometry"}},
		{"no geometry", collection(good("g0"), feature(nil, map[string]any{"id": "g1", "name": "x", "radius_m": 100})), []string{"features[1].geometry"}},
		{"two bad features", collection(withProps("g0", map[string]any{"name": ""}), good("g1"), withProps("g2", map[string]any{"timezone": "Nowhere"})),
			[]string{"features[0].properties.name", "features[2].properties.timezone"}},
		// Every problem of a feature at once, properties and geometry alike.
		{"one bad feature, several problems", collection(withProps("g0", map[string]any{"id": "bad id!", "name": "", "radius_m": 1})),
			[]string{"features[0].properties.id", "features[0].properties.name", "features[0].properties.radius_m"}},
		{"bad id, no name, bad coordinate, unknown zone", collection(good("g0"), feature(map[string]any{"type": "Point", "coordinates": []float64{-74, 95}},
			map[string]any{"id": "bad id!", "timezone": "Mars/Olympus_Mons", "radius_m": 100})),
			[]string{"features[1].properties.id", "features[1].properties.name", "features[1].properties.timezone", "features[1].geometry.coordinates"}},
		{"point out of range without a radius", collection(feature(map[string]any{"type": "Point", "coordinates": []float64{200, 95}},
			map[string]any{"id": "g0", "name": "x"})),
			[]string{"features[0].properties.radius_m", "features[0].geometry.coordinates", "features[0].geometry.coordinates"}},
		{"duplicate id and a bad tag", collection(good("g0"), withProps("g0", map[string]any{"tags": []string{""}})),
			[]string{"features[1].properties.id", "features[1].properties.tags[0]"}},
		{"polygon not closed, with a radius", collection(feature(map[string]any{"type": "Polygon", "coordinates": [][][2]float64{squareOuter[:4]}},
			map[string]any{"id": "g0", "name": "x", "radius_m": 100})),
			[]string{"features[0].properties.radius_m", "features[0].geometry.coordinates[0]"}},
		{"bad radius", collection(good("g0"), withProps("g1", map[string]any{"radius_m": 5})), []string{"features[1].properties.radius_m"}},
		{"point without radius", collection(withProps("g0", map[string]any{"radius_m": nil})), []string{"features[0].properties.radius_m"}},
		{"point out of range", collection(pointFeature("g0", -74, 95, 100)), []string{"features[0].geometry.coordinates"}},
		{"point with altitude", collection(feature(map[string]any{"type": "Point", "coordinates": []float64{1, 2, 3}},
			map[string]any{"id": "g0", "name": "x", "radius_m": 100})), []string{"features[0].geometry.coordinates"}},
		{"polygon with a radius", collection(feature(map[string]any{"type": "Polygon", "coordinates": [][][2]float64{squareOuter}},
			map[string]any{"id": "g0", "name": "x", "radius_m": 100})), []string{"features[0].properties.radius_m"}},
		{"polygon not closed", collection(good("g0"), polygonFeature("g1", squareOuter[:4])), []string{"features[1].geometry.coordinates[0]"}},
		{"duplicate ids", collection(good("g0"), good("g1"), good("g0")), []string{"features[2].properties.id"}},
		{"bad tag", collection(withProps("g0", map[string]any{"tags": []string{""}})), []string{"features[0].properties.tags[0]"}},
		{"unknown property", collection(good("g0"), withProps("g1", map[string]any{"colour": "red"})), []string{"features[1].properties.colour"}},
		{"not a feature", collection(good("g0"), map[string]any{"type": "Point", "coordinates": []float64{1, 1}}), []string{"features[1].coordinates"}},
		{"feature type wrong", collection(map[string]any{"type": "Feat", "geometry": nil, "properties": map[string]any{}}), []string{"features[0].type"}},
		{"feature a number", collection(good("g0"), 5), []string{"features[1]"}},
		{"no properties", collection(map[string]any{"type": "Feature", "geometry": map[string]any{"type": "Point", "coordinates": []float64{1, 1}}}),
			[]string{"features[0].properties"}},
		// A Point is read as strictly as a Polygon.
		{"point unknown member", collection(feature(map[string]any{"type": "Point", "coordinates": []float64{1, 1}, "foo": 1},
			map[string]any{"id": "g0", "name": "x", "radius_m": 100})), []string{"features[0].geometry.foo"}},
		{"point member in another case", collection(feature(map[string]any{"type": "Point", "coordinates": []float64{1, 1}, "Coordinates": []float64{2, 2}},
			map[string]any{"id": "g0", "name": "x", "radius_m": 100})), []string{"features[0].geometry.Coordinates"}},
		{"point bbox a string", collection(feature(map[string]any{"type": "Point", "coordinates": []float64{1, 1}, "bbox": "x"},
			map[string]any{"id": "g0", "name": "x", "radius_m": 100})), []string{"features[0].geometry.bbox"}},
		{"feature bbox a string", collection(map[string]any{"type": "Feature", "bbox": "x", "geometry": map[string]any{"type": "Point", "coordinates": []float64{1, 1}},
			"properties": map[string]any{"id": "g0", "name": "x", "radius_m": 100}}), []string{"features[0].bbox"}},
		{"feature id an object", collection(map[string]any{"type": "Feature", "id": map[string]any{}, "geometry": map[string]any{"type": "Point", "coordinates": []float64{1, 1}},
			"properties": map[string]any{"id": "g0", "name": "x", "radius_m": 100}}), []string{"features[0].id"}},
		{"collection bbox an object", `{"type":"FeatureCollection","features":[],"bbox":{}}`, []string{"bbox"}},
		{"not a collection", `{"type":"Feature","features":[]}`, []string{"type"}},
		{"no features", `{"type":"FeatureCollection"}`, []string{"features"}},
		{"unknown member", `{"type":"FeatureCollection","features":[],"name":"x"}`, []string{"name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("POST", "/v1/stores/import", b.AdminKey, tt.body)
			checkProblem(t, "POST /v1/stores/import", r, 400, tt.fields...)
			// All or nothing: not even the good features were created.
			r = e.must(200, "GET", "/v1/stores", b.AdminKey, nil)
			if !jsonEqual(t, r.Body, []byte(`{"items":[],"next_cursor":""}`)) {
				t.Errorf("GET /v1/stores after a failed import = %s, want no stores", r.Body)
			}
		})
	}
	t.Run("an existing store is not changed", func(t *testing.T) {
		e := newEnv(t, Options{})
		b := e.brand("Krispy")
		orig := e.must(201, "PUT", "/v1/stores/g0", b.AdminKey, circleStore("Keep", 1, 1, 100))
		checkProblem(t, "POST /v1/stores/import", e.call("POST", "/v1/stores/import", b.AdminKey,
			collection(good("g0"), withProps("g1", map[string]any{"id": ""}))), 400, "features[1].properties.id")
		if got := e.must(200, "GET", "/v1/stores/g0", b.AdminKey, nil); !bytes.Equal(got.Body, orig.Body) {
			t.Errorf("GET /v1/stores/g0 after a failed import = %s, want %s", got.Body, orig.Body)
		}
	})
}

func TestExportImportRoundTrip(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/circle", b.AdminKey, circleStore("Circle", 40.7128, -74.0060, 800))
	e.must(201, "PUT", "/v1/stores/tiny", b.AdminKey, circleStore("Tiny", 0.000001, -0.1234567890123, 10))
	e.must(201, "PUT", "/v1/stores/donut", b.AdminKey, polygonStore("Donut ☕ \"quoted\"", squareOuter, squareHole))
	e.must(201, "PUT", "/v1/stores/no-tags", b.AdminKey, map[string]any{"name": "No tags", "fence": map[string]any{"circle": map[string]any{"lat": -33.9, "lon": 151.2, "radius_m": 50000}}})
	e.must(201, "PUT", "/v1/stores/multi", b.AdminKey, map[string]any{"name": "Multi", "tags": []string{"a", "b"}, "fence": map[string]any{"polygon": map[string]any{"type": "MultiPolygon",
		"coordinates": [][][][2]float64{{{{179, -1}, {-179, -1}, {-179, 1}, {179, 1}, {179, -1}}}, {{{10, 10}, {11, 10}, {11, 11}, {10, 11}, {10, 10}}}}}}})

	export1 := e.must(200, "GET", "/v1/stores.geojson", b.AdminKey, nil)
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type       string         `json:"type"`
			Geometry   map[string]any `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	export1.decode(t, &fc)
	if fc.Type != "FeatureCollection" || len(fc.Features) != 5 {
		t.Fatalf("GET /v1/stores.geojson = %s, want a FeatureCollection of 5", export1.Body)
	}
	for _, f := range fc.Features {
		if f.Type != "Feature" || f.Geometry["type"] == nil || f.Properties["id"] == nil {
			t.Errorf("GET /v1/stores.geojson feature = %+v, want a Feature with geometry and properties.id", f)
		}
	}

	// Into the same brand: every store updated, the export unchanged.
	r := e.must(200, "POST", "/v1/stores/import", b.AdminKey, export1.Body)
	if !jsonEqual(t, r.Body, []byte(`{"created":0,"updated":5}`)) {
		t.Errorf("POST /v1/stores/import of the export = %s, want 5 updated", r.Body)
	}
	if export2 := e.must(200, "GET", "/v1/stores.geojson", b.AdminKey, nil); !bytes.Equal(export2.Body, export1.Body) {
		t.Errorf("export, import, export differ:\n%s\n%s", export1.Body, export2.Body)
	}
	// Into a new brand: every store created, the export the same.
	nb := e.brand("Copy")
	r = e.must(200, "POST", "/v1/stores/import", nb.AdminKey, export1.Body)
	if !jsonEqual(t, r.Body, []byte(`{"created":5,"updated":0}`)) {
		t.Errorf("POST /v1/stores/import of the export into a new brand = %s, want 5 created", r.Body)
	}
	if export3 := e.must(200, "GET", "/v1/stores.geojson", nb.AdminKey, nil); !bytes.Equal(export3.Body, export1.Body) {
		t.Errorf("the new brand's export differs:\n%s\n%s", export1.Body, export3.Body)
	}
	// The stores themselves came back equal, except for the times.
	for _, id := range []string{"circle", "tiny", "donut", "no-tags", "multi"} {
		var s1, s2 storeOut
		e.must(200, "GET", "/v1/stores/"+id, b.AdminKey, nil).decode(t, &s1)
		e.must(200, "GET", "/v1/stores/"+id, nb.AdminKey, nil).decode(t, &s2)
		s1.CreatedAt, s1.UpdatedAt, s2.CreatedAt, s2.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(s1, s2) {
			t.Errorf("store %s after the round trip = %+v, want %+v", id, s2, s1)
		}
	}
	empty := e.brand("Empty")
	if r := e.must(200, "GET", "/v1/stores.geojson", empty.AdminKey, nil); !jsonEqual(t, r.Body, []byte(`{"type":"FeatureCollection","features":[]}`)) {
		t.Errorf("GET /v1/stores.geojson with no stores = %s, want an empty FeatureCollection", r.Body)
	}
}

func TestImportDemoStores(t *testing.T) {
	data, err := os.ReadFile("../testdata/demo-stores.geojson")
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(data, &fc); err != nil {
		t.Fatalf("demo-stores.geojson: %v", err)
	}
	e := newEnv(t, Options{})
	b := e.brand("Demo")
	r := e.call("POST", "/v1/stores/import", b.AdminKey, data, "Content-Type", "application/geo+json")
	if r.Code != 200 {
		t.Fatalf("POST /v1/stores/import of demo-stores.geojson = %d, want 200: %s", r.Code, r.Body)
	}
	var res importResult
	r.decode(t, &res)
	if res.Created != len(fc.Features) || res.Updated != 0 || res.Created == 0 {
		t.Errorf("POST /v1/stores/import of demo-stores.geojson = %s, want %d created", r.Body, len(fc.Features))
	}
	// And the demo round-trips through export.
	export1 := e.must(200, "GET", "/v1/stores.geojson", b.AdminKey, nil)
	e.must(200, "POST", "/v1/stores/import", b.AdminKey, export1.Body)
	if export2 := e.must(200, "GET", "/v1/stores.geojson", b.AdminKey, nil); !bytes.Equal(export1.Body, export2.Body) {
		t.Errorf("demo export, import, export differ")
	}
}

func TestPutDevice(t *testing.T) {
	clock := newClock("2026-11-22T10:00:00Z")
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	body := map[string]any{"platform": "ios", "push": map[string]any{"provider": "apns", "token": tokenFor("d1")},
		"opt_in": true, "timezone": "Europe/Berlin", "locale": "de-CH"}
	r := e.call("PUT", "/v1/devices/d1", b.AppKey, body)
	if r.Code != 201 {
		t.Fatalf("PUT /v1/devices/d1 = %d, want 201: %s", r.Code, r.Body)
	}
	m := r.json(t)
	if m["id"] != "d1" || m["platform"] != "ios" || m["opt_in"] != true || m["timezone"] != "Europe/Berlin" || m["locale"] != "de-CH" {
		t.Errorf("PUT /v1/devices/d1 = %s, want the device as sent", r.Body)
	}
	if bytes.Contains(r.Body, []byte(tokenFor("d1"))) {
		t.Errorf("PUT /v1/devices/d1 = %s, echoes the push token", r.Body)
	}
	clock.advance(time.Minute)
	r = e.call("PUT", "/v1/devices/d1", b.AdminKey, map[string]any{"platform": "android", "opt_in": false})
	if r.Code != 200 {
		t.Fatalf("PUT /v1/devices/d1 again = %d, want 200: %s", r.Code, r.Body)
	}
	d, _, err := e.db.Device(bg, b.ID, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Platform != "android" || d.OptIn || d.Timezone != "UTC" || d.Token != "" || d.Locale != "" {
		t.Errorf("device after a replace without push = %+v, want android, opted out, UTC, no token", d)
	}
	// push null is the same as absent.
	e.must(200, "PUT", "/v1/devices/d1", b.AppKey, `{"platform":"android","opt_in":true,"push":null}`)
	// An FCM token.
	e.must(200, "PUT", "/v1/devices/d1", b.AppKey, map[string]any{"platform": "android", "opt_in": true, "push": map[string]any{"provider": "fcm", "token": "abc:DEF_ghi-123"}})
	if d, _, _ := e.db.Device(bg, b.ID, "d1"); d.Provider != "fcm" || d.Token != "abc:DEF_ghi-123" {
		t.Errorf("device after PUT with an FCM token = %+v", d)
	}
	// Ids at the edges of the pattern.
	for _, id := range []string{strings.Repeat("x", 128), "A.b_c:d-9"} {
		e.must(201, "PUT", "/v1/devices/"+id, b.AppKey, map[string]any{"platform": "ios", "opt_in": true})
	}
}

func TestPutDeviceInvalid(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	orig, _, _ := e.db.Device(bg, b.ID, "d1")
	dev := func(change map[string]any) map[string]any {
		m := map[string]any{"platform": "ios", "opt_in": true, "push": map[string]any{"provider": "apns", "token": tokenFor("x")}}
		for k, v := range change {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	apns := func(token string) map[string]any {
		return dev(map[string]any{"push": map[string]any{"provider": "apns", "token": token}})
	}
	fcm := func(token string) map[string]any {
		return dev(map[string]any{"platform": "android", "push": map[string]any{"provider": "fcm", "token": token}})
	}
	hex64 := strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		id     string
		body   any
		fields []string
	}{
		{"platform missing", "d1", dev(map[string]any{"platform": nil}), []string{"platform"}},
		{"platform null", "d1", `{"platform":null,"opt_in":true}`, []string{"platform"}},
		{"platform unknown", "d1", dev(map[string]any{"platform": "windows"}), []string{"platform"}},
		{"platform in capitals", "d1", dev(map[string]any{"platform": "iOS"}), []string{"platform"}},
		{"opt_in missing", "d1", dev(map[string]any{"opt_in": nil}), []string{"opt_in"}},
		{"opt_in null", "d1", `{"platform":"ios","opt_in":null}`, []string{"opt_in"}},
		{"opt_in a string", "d1", dev(map[string]any{"opt_in": "yes"}), []string{"opt_in"}},
		{"timezone unknown", "d1", dev(map[string]any{"timezone": "Europe/Atlantis"}), []string{"timezone"}},
		{"timezone empty", "d1", dev(map[string]any{"timezone": ""}), []string{"timezone"}},
		{"locale bad", "d1", dev(map[string]any{"locale": "not a locale"}), []string{"locale"}},
		{"apns token odd length", "d1", apns(hex64 + "a"), []string{"push.token"}},
		{"apns token not hex", "d1", apns(strings.Repeat("zz", 32)), []string{"push.token"}},
		{"apns token too short", "d1", apns(strings.Repeat("ab", 31)), []string{"push.token"}},
		{"apns token too long", "d1", apns(strings.Repeat("ab", 101)), []string{"push.token"}},
		{"apns token empty", "d1", apns(""), []string{"push.token"}},
		{"apns token with a slash", "d1", apns(hex64[:62] + "/a"), []string{"push.token"}},
		{"fcm token bad chars", "d1", fcm("abc/def"), []string{"push.token"}},
		{"fcm token with a space", "d1", fcm("abc def"), []string{"push.token"}},
		{"fcm token too long", "d1", fcm(strings.Repeat("a", 4097)), []string{"push.token"}},
		{"fcm token empty", "d1", fcm(""), []string{"push.token"}},
		{"apns token on android", "d1", dev(map[string]any{"platform": "android"}), []string{"push.provider"}},
		{"provider unknown", "d1", dev(map[string]any{"push": map[string]any{"provider": "webpush", "token": "x"}}), []string{"push.provider"}},
		{"provider missing", "d1", dev(map[string]any{"push": map[string]any{"token": hex64}}), []string{"push.provider"}},
		{"token missing", "d1", dev(map[string]any{"push": map[string]any{"provider": "apns"}}), []string{"push.token"}},
		{"push unknown member", "d1", dev(map[string]any{"push": map[string]any{"provider": "apns", "token": hex64, "sandbox": true}}), []string{"push.sandbox"}},
		{"push a string", "d1", dev(map[string]any{"push": hex64}), []string{"push"}},
		{"unknown member", "d1", dev(map[string]any{"model": "iPhone"}), []string{"model"}},
		{"member in another case", "d1", `{"platform":"ios","opt_in":true,"Opt_In":false}`, []string{"Opt_In"}},
		{"device id with a question mark", "a%3Fb", dev(nil), []string{"device_id"}},
		{"device id with a space", "a%20b", dev(nil), []string{"device_id"}},
		{"device id too long", strings.Repeat("x", 129), dev(nil), []string{"device_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/devices/" + tt.id
			checkProblem(t, "PUT "+path, e.call("PUT", path, b.AppKey, tt.body), 400, tt.fields...)
			if d, _, err := e.db.Device(bg, b.ID, "d1"); err != nil || !reflect.DeepEqual(d, orig) {
				t.Errorf("device d1 after a failed PUT = %+v, %v, want it unchanged: %+v", d, err, orig)
			}
		})
	}
	// Boundaries are accepted.
	e.must(200, "PUT", "/v1/devices/d1", b.AppKey, apns(strings.Repeat("AB", 100)))
	e.must(200, "PUT", "/v1/devices/d1", b.AppKey, fcm(strings.Repeat("a", 4096)))
	e.must(200, "PUT", "/v1/devices/d1", b.AppKey, fcm("a"))
}

func TestDeviceTokenMoves(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	other := e.brand("Other")
	token := tokenFor("shared")
	put := func(key, id, token string) {
		t.Helper()
		r := e.call("PUT", "/v1/devices/"+id, key, map[string]any{"platform": "ios", "opt_in": true, "push": map[string]any{"provider": "apns", "token": token}})
		if r.Code != 200 && r.Code != 201 {
			t.Fatalf("PUT /v1/devices/%s = %d, want 200 or 201: %s", id, r.Code, r.Body)
		}
	}
	tokenOf := func(brandID, id string) string {
		t.Helper()
		d, _, err := e.db.Device(bg, brandID, id)
		if err != nil {
			t.Fatalf("device %s: %v", id, err)
		}
		return d.Token
	}
	put(b.AppKey, "first", token)
	put(other.AppKey, "first", token) // another brand: its own token table
	// The same token, upper-cased, is the same APNs token.
	put(b.AppKey, "second", strings.ToUpper(token))
	if got := tokenOf(b.ID, "first"); got != "" {
		t.Errorf("first device's token after the second took it = %q, want none", got)
	}
	if got := tokenOf(b.ID, "second"); got != token {
		t.Errorf("second device's token = %q, want %q", got, token)
	}
	if got := tokenOf(other.ID, "first"); got != token {
		t.Errorf("the other brand's device lost its token: %q", got)
	}
	// And back: the token moves again, and an update of the holder keeps it.
	put(b.AppKey, "first", token)
	put(b.AppKey, "first", token)
	if tokenOf(b.ID, "first") != token || tokenOf(b.ID, "second") != "" {
		t.Errorf("after moving back: first %q, second %q", tokenOf(b.ID, "first"), tokenOf(b.ID, "second"))
	}
	// A deleted holder frees it: a new device takes it without touching anyone.
	e.must(204, "DELETE", "/v1/devices/first", b.AppKey, nil)
	put(b.AppKey, "third", token)
	if tokenOf(b.ID, "third") != token {
		t.Errorf("third device's token = %q, want %q", tokenOf(b.ID, "third"), token)
	}
}

func TestDevicesPerBrand(t *testing.T) {
	e := newEnv(t, Options{})
	a, b := e.brand("A"), e.brand("B")
	e.must(201, "PUT", "/v1/stores/s", a.AdminKey, circleStore("S", 40.7128, -74.0060, 800))
	e.must(201, "PUT", "/v1/devices/same", a.AppKey, map[string]any{"platform": "ios", "opt_in": true})
	e.must(201, "PUT", "/v1/devices/same", b.AppKey, map[string]any{"platform": "android", "opt_in": false})
	da, _, _ := e.db.Device(bg, a.ID, "same")
	db, _, _ := e.db.Device(bg, b.ID, "same")
	if da.Platform != "ios" || db.Platform != "android" {
		t.Errorf("devices \"same\" = %s in A and %s in B, want ios and android", da.Platform, db.Platform)
	}
	if got := insideIDs(t, e, a.AppKey, "same", 40.7128, -74.0060); !slices.Equal(got, []string{"s"}) {
		t.Errorf("brand A's ping inside = %v, want [s]", got)
	}
	if got := insideIDs(t, e, b.AppKey, "same", 40.7128, -74.0060); len(got) != 0 {
		t.Errorf("brand B's ping inside = %v, want [] (A's store is not B's)", got)
	}
	e.must(204, "DELETE", "/v1/devices/same", b.AppKey, nil)
	if _, _, err := e.db.Device(bg, a.ID, "same"); err != nil {
		t.Errorf("brand A's device after B deleted its own: %v", err)
	}
	e.must(200, "POST", "/v1/pings", a.AppKey, ping("same", 1, 1))
	checkProblem(t, "POST /v1/pings for B's deleted device", e.call("POST", "/v1/pings", b.AppKey, ping("same", 1, 1)), 404)
}

func TestDeleteDevice(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.7, -74.0))
	r := e.call("DELETE", "/v1/devices/d1", b.AppKey, nil)
	if r.Code != 204 || len(r.Body) != 0 {
		t.Fatalf("DELETE /v1/devices/d1 = %d %q, want 204 and no body", r.Code, r.Body)
	}
	checkProblem(t, "DELETE /v1/devices/d1 again", e.call("DELETE", "/v1/devices/d1", b.AppKey, nil), 404)
	checkProblem(t, "DELETE /v1/devices/never", e.call("DELETE", "/v1/devices/never", b.AdminKey, nil), 404)
	checkProblem(t, "POST /v1/pings for the deleted device", e.call("POST", "/v1/pings", b.AppKey, ping("d1", 40.7, -74.0)), 404)
	r = e.must(200, "POST", "/v1/pings/batch", b.AppKey, map[string]any{"pings": []any{ping("d1", 40.7, -74.0)}})
	if !bytes.Contains(r.Body, []byte(`"status":404`)) {
		t.Errorf("POST /v1/pings/batch for the deleted device = %s, want a 404 problem", r.Body)
	}
	if _, _, err := e.db.Device(bg, b.ID, "d1"); err == nil {
		t.Errorf("device d1 still in the store after DELETE")
	}
	// It can be registered again, from scratch.
	r = e.must(201, "PUT", "/v1/devices/d1", b.AppKey, map[string]any{"platform": "ios", "opt_in": true})
	if _, pos, _ := e.db.Device(bg, b.ID, "d1"); pos != nil {
		t.Errorf("re-registered device d1 has the old position %+v", pos)
	}
}

func TestPing(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 800))
	e.must(201, "PUT", "/v1/stores/big", b.AdminKey, circleStore("Big", 40.7128, -74.0060, 50000))
	e.device(b.AppKey, "d1")
	tests := []struct {
		name     string
		lat, lon float64
		want     string
	}{
		{"inside both", 40.7130, -74.0060, `{"inside":[{"store_id":"big","name":"Big"},{"store_id":"main-st","name":"Main St"}],"live_events":[],"notifications":[]}`},
		{"inside the big one", 40.80, -74.0, `{"inside":[{"store_id":"big","name":"Big"}],"live_events":[],"notifications":[]}`},
		{"outside", 10, 10, `{"inside":[],"live_events":[],"notifications":[]}`},
		{"at the origin", 0, 0, `{"inside":[],"live_events":[],"notifications":[]}`},
		{"at a pole", 90, 180, `{"inside":[],"live_events":[],"notifications":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("POST", "/v1/pings", b.AppKey, ping("d1", tt.lat, tt.lon))
			if r.Code != 200 {
				t.Fatalf("POST /v1/pings = %d, want 200: %s", r.Code, r.Body)
			}
			var got, want pingResponse
			r.decode(t, &got)
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got.Inside, func(a, b insideJSON) int { return strings.Compare(a.StoreID, b.StoreID) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("POST /v1/pings (%v, %v) = %s, want %s", tt.lat, tt.lon, r.Body, tt.want)
			}
			for _, member := range []string{`"inside":[`, `"live_events":[`, `"notifications":[`} {
				if !bytes.Contains(r.Body, []byte(member)) {
					t.Errorf("POST /v1/pings = %s, want %s...]", r.Body, member)
				}
			}
		})
	}
	// The position is recorded.
	e.must(200, "POST", "/v1/pings", b.AppKey, map[string]any{"device_id": "d1", "lat": 12.5, "lon": -3.25, "accuracy_m": 42})
	if _, pos, _ := e.db.Device(bg, b.ID, "d1"); pos == nil || pos.Last.Lat != 12.5 || pos.Last.Lon != -3.25 || pos.Last.AccuracyM != 42 {
		t.Errorf("position after a ping = %+v, want 12.5, -3.25 ±42", pos)
	}
	// A live event shows in the answer of a ping inside its store.
	var ev struct {
		ID string `json:"id"`
	}
	e.must(201, "POST", "/v1/stores/main-st/events", b.AdminKey, map[string]any{"title": "Hot Now", "body": "Fresh", "url": "app://store/main-st"}).decode(t, &ev)
	var resp pingResponse
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.7130, -74.0060)).decode(t, &resp)
	if len(resp.LiveEvents) != 1 || resp.LiveEvents[0].EventID != ev.ID || resp.LiveEvents[0].StoreID != "main-st" || resp.LiveEvents[0].Title != "Hot Now" {
		t.Errorf("POST /v1/pings inside a live event: live_events = %+v, want the event %s", resp.LiveEvents, ev.ID)
	}
	if len(resp.Notifications) != 1 || resp.Notifications[0].EventID != ev.ID {
		t.Errorf("POST /v1/pings inside a live event: notifications = %+v, want one for %s", resp.Notifications, ev.ID)
	}
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.80, -74.0)).decode(t, &resp)
	if len(resp.LiveEvents) != 0 || len(resp.Notifications) != 0 {
		t.Errorf("POST /v1/pings outside the event's store = %+v, want no events", resp)
	}
}

func TestPingInvalid(t *testing.T) {
	clock := newClock("2026-11-22T10:00:00Z")
	e := newEnv(t, Options{Now: clock.now})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	tests := []struct {
		name   string
		body   string
		status int
		fields []string
	}{
		{"lat missing", `{"device_id":"d1","lon":2,"accuracy_m":1}`, 400, []string{"lat"}},
		{"lat null", `{"device_id":"d1","lat":null,"lon":2,"accuracy_m":1}`, 400, []string{"lat"}},
		{"lon missing", `{"device_id":"d1","lat":2,"accuracy_m":1}`, 400, []string{"lon"}},
		{"accuracy missing", `{"device_id":"d1","lat":1,"lon":2}`, 400, []string{"accuracy_m"}},
		{"device_id missing", `{"lat":1,"lon":2,"accuracy_m":1}`, 400, []string{"device_id"}},
		{"all missing", `{}`, 400, []string{"device_id", "lat", "lon", "accuracy_m"}},
		{"null body", `null`, 400, []string{"device_id", "lat", "lon", "accuracy_m"}},
		{"LAT", `{"device_id":"d1","LAT":1,"lon":2,"accuracy_m":1}`, 400, []string{"LAT"}},
		{"Lat beside lat", `{"device_id":"d1","lat":1,"Lat":1,"lon":2,"accuracy_m":1}`, 400, []string{"Lat"}},
		{"duplicate lat", `{"device_id":"d1","lat":1,"lat":1,"lon":2,"accuracy_m":1}`, 400, []string{"lat"}},
		{"trailing data", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1}{}`, 400, nil},
		{"trailing garbage", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1} x`, 400, nil},
		{"unknown field", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"speed":3}`, 400, []string{"speed"}},
		{"lat a string", `{"device_id":"d1","lat":"1","lon":2,"accuracy_m":1}`, 400, []string{"lat"}},
		{"lat too big", `{"device_id":"d1","lat":90.000001,"lon":2,"accuracy_m":1}`, 400, []string{"lat"}},
		{"lat overflows", `{"device_id":"d1","lat":1e400,"lon":2,"accuracy_m":1}`, 400, []string{"lat"}},
		{"lon too small", `{"device_id":"d1","lat":1,"lon":-180.5,"accuracy_m":1}`, 400, []string{"lon"}},
		{"accuracy negative", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":-1}`, 400, []string{"accuracy_m"}},
		{"accuracy too big", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":100001}`, 400, []string{"accuracy_m"}},
		{"device_id bad", `{"device_id":"d 1","lat":1,"lon":2,"accuracy_m":1}`, 400, []string{"device_id"}},
		{"device_id a number", `{"device_id":1,"lat":1,"lon":2,"accuracy_m":1}`, 400, []string{"device_id"}},
		{"ts 61 s ahead", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"2026-11-22T10:01:01Z"}`, 400, []string{"ts"}},
		{"ts a day ahead in another zone", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"2026-11-23T11:00:00+01:00"}`, 400, []string{"ts"}},
		{"ts without zone", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"2026-11-22T10:00:00"}`, 400, []string{"ts"}},
		{"ts a date", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"2026-11-22"}`, 400, []string{"ts"}},
		{"ts words", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"yesterday"}`, 400, []string{"ts"}},
		{"ts a number", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":1763805600}`, 400, []string{"ts"}},
		{"ts hour 24", `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"2026-11-22T24:00:00Z"}`, 400, []string{"ts"}},
		{"empty body", ``, 400, nil},
		{"array", `[]`, 400, nil},
		{"not JSON", `lat=1&lon=2`, 400, nil},
		{"invalid UTF-8", "{\"device_id\":\"d\xff\",\"lat\":1,\"lon\":2,\"accuracy_m\":1}", 400, nil},
		{"unknown device", `{"device_id":"nobody","lat":1,"lon":2,"accuracy_m":1}`, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblem(t, "POST /v1/pings "+tt.body, e.call("POST", "/v1/pings", b.AppKey, tt.body), tt.status, tt.fields...)
			// Nothing was recorded: a missing lat is never 0.
			if _, pos, _ := e.db.Device(bg, b.ID, "d1"); pos != nil {
				t.Fatalf("position after a bad ping = %+v, want none", pos)
			}
		})
	}
	// The edges are accepted.
	for _, body := range []string{
		`{"device_id":"d1","lat":90,"lon":180,"accuracy_m":0}`,
		`{"device_id":"d1","lat":-90,"lon":-180,"accuracy_m":100000}`,
		`{"device_id":"d1","lat":0,"lon":0,"accuracy_m":5,"ts":"2026-11-22T10:01:00Z"}`,
		`{"device_id":"d1","lat":0,"lon":0,"accuracy_m":5,"ts":"2026-11-22T11:00:59+01:00"}`,
		`{"device_id":"d1","lat":0,"lon":0,"accuracy_m":5,"ts":"2020-01-01T00:00:00.123456789Z"}`,
		` {"device_id":"d1","lat":1e1,"lon":-0,"accuracy_m":5.5} ` + "\n",
	} {
		e.must(200, "POST", "/v1/pings", b.AppKey, body)
	}
}

func TestPingBodyAndContentType(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	valid := `{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1}`
	pad := func(n int) string { return valid + strings.Repeat(" ", n-len(valid)) }
	tests := []struct {
		name   string
		body   string
		header []string
		status int
	}{
		{"16 KiB exactly", pad(16 << 10), nil, 200},
		{"one byte over 16 KiB", pad(16<<10 + 1), nil, 413},
		{"1 MiB", pad(1 << 20), nil, 413},
		{"charset parameter", valid, []string{"Content-Type", "application/json; charset=utf-8"}, 200},
		{"text/plain", valid, []string{"Content-Type", "text/plain"}, 415},
		{"form", valid, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"no content type", valid, []string{"Content-Type", ""}, 415},
		{"garbled content type", valid, []string{"Content-Type", "application/json;;;=="}, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("POST", "/v1/pings", b.AppKey, tt.body, tt.header...)
			if r.Code != tt.status {
				t.Fatalf("POST /v1/pings (%d bytes) = %d, want %d: %s", len(tt.body), r.Code, tt.status, r.Body)
			}
		})
	}
	// Without a Content-Length, the limit still holds.
	req := e.request("POST", "/v1/pings", b.AppKey, nil, "Content-Type", "application/json")
	req.Body = io.NopCloser(strings.NewReader(pad(16<<10 + 1)))
	req.ContentLength = -1
	if r := e.send(req); r.Code != 413 {
		t.Errorf("POST /v1/pings chunked, over 16 KiB = %d, want 413: %s", r.Code, r.Body)
	}
	req = e.request("POST", "/v1/pings", b.AppKey, nil, "Content-Type", "application/json")
	req.Body = io.NopCloser(strings.NewReader(valid))
	req.ContentLength = -1
	if r := e.send(req); r.Code != 200 {
		t.Errorf("POST /v1/pings chunked = %d, want 200: %s", r.Code, r.Body)
	}
	// Other bodies have 1 MiB.
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`
	checkProblem(t, "POST /v1/brands over 1 MiB", e.call("POST", "/v1/brands", e.operator, big), 413)
	checkProblem(t, "PUT /v1/stores/x as text", e.call("PUT", "/v1/stores/x", b.AdminKey, `{}`, "Content-Type", "text/plain"), 415)
}

func TestPingRateLimit(t *testing.T) {
	clock := newClock("2026-11-22T10:00:00Z")
	e := newEngineEnv(t, Options{Now: clock.now}, push.EngineOptions{PingRate: 1, PingBurst: 3})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	e.device(b.AppKey, "d2")
	for range 3 {
		e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 1, 1))
	}
	r := e.call("POST", "/v1/pings", b.AppKey, ping("d1", 1, 1))
	checkProblem(t, "POST /v1/pings, 4th in a burst of 3", r, 429)
	if got := r.Header.Get("Retry-After"); got != "1" {
		t.Errorf("POST /v1/pings 429 Retry-After = %q, want \"1\"", got)
	}
	// Other devices are not limited.
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d2", 1, 1))
	// Unknown devices are 404, never 429.
	for range 5 {
		checkProblem(t, "POST /v1/pings unknown device", e.call("POST", "/v1/pings", b.AppKey, ping("ghost", 1, 1)), 404)
	}
	// A bad ping does not use a token.
	checkProblem(t, "POST /v1/pings bad", e.call("POST", "/v1/pings", b.AppKey, `{"device_id":"d2"}`), 400)
	// One second later, one more.
	clock.advance(time.Second)
	e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 1, 1))
	checkProblem(t, "POST /v1/pings after the refill", e.call("POST", "/v1/pings", b.AppKey, ping("d1", 1, 1)), 429)
	// Three seconds refill the burst.
	clock.advance(3 * time.Second)
	for range 3 {
		e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 1, 1))
	}
	checkProblem(t, "POST /v1/pings after the burst", e.call("POST", "/v1/pings", b.AppKey, ping("d1", 1, 1)), 429)

	// In a batch each ping counts once: d3 has a burst of 3, d1 none.
	e.device(b.AppKey, "d3")
	var out struct {
		Results []map[string]any `json:"results"`
	}
	e.must(200, "POST", "/v1/pings/batch", b.AppKey, map[string]any{"pings": []any{ping("d3", 1, 1), ping("d3", 1, 1), ping("d1", 1, 1), ping("d3", 1, 1), ping("d3", 1, 1)}}).decode(t, &out)
	var statuses []any
	for _, res := range out.Results {
		statuses = append(statuses, res["status"])
	}
	if want := []any{nil, nil, float64(429), nil, float64(429)}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("POST /v1/pings/batch statuses = %v, want %v (nil = answered)", statuses, want)
	}
	// Deleting a device forgets its limiter; a new device of that id starts full.
	e.must(204, "DELETE", "/v1/devices/d1", b.AppKey, nil)
	e.device(b.AppKey, "d1")
	for range 3 {
		e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 1, 1))
	}
}

func TestPingBatch(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 800))
	e.device(b.AppKey, "d1")
	body := `{"pings":[
		{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10},
		{"device_id":"d1","lat":95,"lon":-74.006,"accuracy_m":10},
		{"device_id":"d1","lon":-74.006,"accuracy_m":10},
		{"device_id":"ghost","lat":1,"lon":1,"accuracy_m":10},
		{"device_id":"d1","lat":1,"lon":1,"accuracy_m":10,"LON":1},
		{"device_id":"d1","lat":1,"lon":1,"accuracy_m":10}
	]}`
	r := e.call("POST", "/v1/pings/batch", b.AppKey, body)
	if r.Code != 200 {
		t.Fatalf("POST /v1/pings/batch = %d, want 200: %s", r.Code, r.Body)
	}
	var out struct {
		Results []json.RawMessage `json:"results"`
	}
	r.decode(t, &out)
	want := []struct {
		status int
		field  string
		inside int
	}{
		{0, "", 1},
		{400, "pings[1].lat", 0},
		{400, "pings[2].lat", 0},
		{404, "", 0},
		{400, "pings[4].LON", 0},
		{0, "", 0},
	}
	if len(out.Results) != len(want) {
		t.Fatalf("POST /v1/pings/batch = %d results, want %d: %s", len(out.Results), len(want), r.Body)
	}
	for i, w := range want {
		var res struct {
			Type   string              `json:"type"`
			Title  string              `json:"title"`
			Status int                 `json:"status"`
			Errors []map[string]string `json:"errors"`
			pingResponse
		}
		if err := json.Unmarshal(out.Results[i], &res); err != nil {
			t.Fatal(err)
		}
		if res.Status != w.status {
			t.Errorf("results[%d] status = %d, want %d: %s", i, res.Status, w.status, out.Results[i])
			continue
		}
		if w.status != 0 {
			if res.Type == "" || res.Title == "" {
				t.Errorf("results[%d] = %s, want a problem with type and title", i, out.Results[i])
			}
			if w.field != "" && (len(res.Errors) != 1 || res.Errors[0]["field"] != w.field) {
				t.Errorf("results[%d] errors = %v, want one for %s", i, res.Errors, w.field)
			}
			continue
		}
		if res.Inside == nil || res.LiveEvents == nil || res.Notifications == nil || len(res.Inside) != w.inside {
			t.Errorf("results[%d] = %s, want an answer with %d inside and the three arrays", i, out.Results[i], w.inside)
		}
	}

	// Sizes.
	many := func(n int) map[string]any {
		ps := make([]any, n)
		for i := range ps {
			ps[i] = ping("d1", 1, 1)
		}
		return map[string]any{"pings": ps}
	}
	e.must(200, "POST", "/v1/pings/batch", b.AppKey, many(500))
	checkProblem(t, "POST /v1/pings/batch of 501", e.call("POST", "/v1/pings/batch", b.AppKey, many(501)), 400, "pings")
	r = e.must(200, "POST", "/v1/pings/batch", b.AppKey, many(0))
	if !jsonEqual(t, r.Body, []byte(`{"results":[]}`)) {
		t.Errorf("POST /v1/pings/batch of none = %s, want {\"results\":[]}", r.Body)
	}
	for _, bad := range []struct{ body, field string }{
		{`{}`, "pings"},
		{`{"pings":null}`, "pings"},
		{`{"pings":{}}`, "pings"},
		{`{"pings":[],"Pings":[]}`, "Pings"},
		{`{"pings":[],"pings":[]}`, "pings"},
	} {
		checkProblem(t, "POST /v1/pings/batch "+bad.body, e.call("POST", "/v1/pings/batch", b.AppKey, bad.body), 400, bad.field)
	}
	checkProblem(t, "POST /v1/pings/batch with trailing data", e.call("POST", "/v1/pings/batch", b.AppKey, `{"pings":[]} []`), 400)
	big := `{"pings":[` + strings.Repeat(" ", 1<<20) + `]}`
	checkProblem(t, "POST /v1/pings/batch over 1 MiB", e.call("POST", "/v1/pings/batch", b.AppKey, big), 413)
	// Pings that are not objects are problems in their slots.
	r = e.must(200, "POST", "/v1/pings/batch", b.AppKey, `{"pings":[1,"x",[],null]}`)
	var odd struct {
		Results []struct {
			Status int                 `json:"status"`
			Errors []map[string]string `json:"errors"`
		} `json:"results"`
	}
	r.decode(t, &odd)
	if len(odd.Results) != 4 {
		t.Fatalf("POST /v1/pings/batch of odd values = %s, want 4 results", r.Body)
	}
	for i, res := range odd.Results {
		if res.Status != 400 || len(res.Errors) == 0 || !strings.HasPrefix(res.Errors[0]["field"], "pings["+strconv.Itoa(i)+"]") {
			t.Errorf("results[%d] = %+v, want a 400 naming pings[%d]", i, res, i)
		}
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	requests := []struct {
		name, method, path, key string
		body                    any
		status                  int
	}{
		{"200", "GET", "/v1/me", b.AdminKey, nil, 200},
		{"204", "DELETE", "/v1/devices/d1", b.AppKey, nil, 204},
		{"400", "PATCH", "/v1/policy", b.AdminKey, `{"daily_cap":-1}`, 400},
		{"401", "GET", "/v1/me", "", nil, 401},
		{"403", "GET", "/v1/policy", b.AppKey, nil, 403},
		{"404 route", "GET", "/nothing", "", nil, 404},
		{"405", "PUT", "/v1/me", "", nil, 405},
		{"healthz", "GET", "/healthz", "", nil, 200},
	}
	ids := map[string]bool{}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.path, tt.key, tt.body)
			if r.Code != tt.status {
				t.Fatalf("%s %s = %d, want %d: %s", tt.method, tt.path, r.Code, tt.status, r.Body)
			}
			id := r.Header.Get("X-Request-Id")
			if ids[id] {
				t.Errorf("%s %s X-Request-Id = %q, seen before", tt.method, tt.path, id)
			}
			ids[id] = true
		})
	}
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"sane", "req-123_abc.def:9", true},
		{"128 chars", strings.Repeat("a", 128), true},
		{"129 chars", strings.Repeat("a", 129), false},
		{"with a space", "req 1", false},
		{"with a newline-ish char", "req\t1", false},
		{"html", "<script>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/me", "/v1/nothing"} {
				r := e.call("GET", path, b.AdminKey, nil, "X-Request-Id", tt.sent)
				got := r.Header.Get("X-Request-Id")
				if tt.echoed && got != tt.sent {
					t.Errorf("GET %s with X-Request-Id %q = %q, want it echoed", path, tt.sent, got)
				}
				if !tt.echoed && (got == tt.sent || got == "") {
					t.Errorf("GET %s with X-Request-Id %q = %q, want a new id", path, tt.sent, got)
				}
			}
		})
	}
}

// TestManagerKeysConcurrentUse lists a store's keys while its manager
// keys are in use; run with -race, it proves last_used_at is read and
// written under the same lock.
func TestManagerKeysConcurrentUse(t *testing.T) {
	var ticks atomic.Int64
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// Every reading of the clock is a second later, so every use moves
	// last_used_at.
	now := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Second) }
	e := newEnv(t, Options{Now: now})
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/s1", b.AdminKey, circleStore("S1", 40.7128, -74.0060, 800))
	var keys [3]managerKeyCreated
	for i := range keys {
		e.must(201, "POST", "/v1/stores/s1/manager-keys", b.AdminKey, nil).decode(t, &keys[i])
	}
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			for range 200 {
				req := httptest.NewRequest("GET", "/v1/stores/s1", nil)
				req.Header.Set("Authorization", "Bearer "+keys[i].ManagerKey)
				rec := httptest.NewRecorder()
				e.srv.ServeHTTP(rec, req)
				if rec.Code != 200 {
					t.Errorf("GET /v1/stores/s1 = %d, want 200", rec.Code)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			req := httptest.NewRequest("GET", "/v1/stores/s1/manager-keys", nil)
			req.Header.Set("Authorization", "Bearer "+b.AdminKey)
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Errorf("GET /v1/stores/s1/manager-keys = %d, want 200", rec.Code)
				return
			}
		}
	})
	wg.Wait()
	var pg struct {
		Items []struct {
			LastUsedAt *time.Time `json:"last_used_at"`
		} `json:"items"`
	}
	e.must(200, "GET", "/v1/stores/s1/manager-keys", b.AdminKey, nil).decode(t, &pg)
	for i, it := range pg.Items {
		if it.LastUsedAt == nil {
			t.Errorf("key %d last_used_at = null after 200 uses", i)
		}
	}
}

// TestDecodeMessages: type errors say what was expected and what came,
// in words.
func TestDecodeMessages(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	e.device(b.AppKey, "d1")
	tests := []struct {
		name, method, path, body string
		field, message           string
	}{
		{"number too big for a float", "POST", "/v1/pings", `{"device_id":"d1","lat":1e400,"lon":1,"accuracy_m":1}`, "lat", "must be a number in range"},
		{"fraction for an integer", "PATCH", "/v1/policy", `{"daily_cap":1.5}`, "daily_cap", "must be an integer in range"},
		{"string for a number", "POST", "/v1/pings", `{"device_id":"d1","lat":"1","lon":1,"accuracy_m":1}`, "lat", "must be a number, not a string"},
		{"object for an array", "PUT", "/v1/stores/s", `{"name":"S","tags":{},"fence":{"circle":{"lat":1,"lon":1,"radius_m":100}}}`, "tags", "must be an array, not an object"},
		{"array for a string", "PUT", "/v1/stores/s", `{"name":[],"fence":{"circle":{"lat":1,"lon":1,"radius_m":100}}}`, "name", "must be a string, not an array"},
		{"boolean for a string", "PUT", "/v1/devices/d1", `{"platform":true,"opt_in":true}`, "platform", "must be a string, not a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.path, b.AdminKey, tt.body)
			checkProblem(t, tt.method+" "+tt.path, r, 400, tt.field)
			var p struct {
				Errors []hotzoneFieldError `json:"errors"`
			}
			r.decode(t, &p)
			if p.Errors[0].Message != tt.message {
				t.Errorf("%s %s %s: message = %q, want %q", tt.method, tt.path, tt.body, p.Errors[0].Message, tt.message)
			}
		})
	}
}

// Push credentials for tests: keys generated once per test binary.
var (
	testP8 = sync.OnceValue(func() string {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	})
	testServiceAccount = sync.OnceValue(func() string {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		sa, err := json.Marshal(map[string]string{"type": "service_account", "project_id": "hotzone-test", "private_key_id": "abc",
			"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			"client_email": "push@hotzone-test.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"})
		if err != nil {
			panic(err)
		}
		return string(sa)
	})
)

func apnsCreds() map[string]any {
	return map[string]any{"key_p8": testP8(), "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ", "topic": "com.example.app", "environment": "production"}
}

func fcmCreds() map[string]any {
	return map[string]any{"service_account_json": testServiceAccount()}
}

func TestPushCredentials(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	other := e.brand("Other")
	unconfigured := `{"apns":{"configured":false},"fcm":{"configured":false}}`
	if r := e.must(200, "GET", "/v1/push", b.AdminKey, nil); !jsonEqual(t, r.Body, []byte(unconfigured)) {
		t.Errorf("GET /v1/push with nothing configured = %s, want %s", r.Body, unconfigured)
	}
	// Deleting nothing is fine.
	e.must(204, "DELETE", "/v1/push/apns", b.AdminKey, nil)
	e.must(204, "DELETE", "/v1/push/fcm", b.AdminKey, nil)

	if r := e.call("PUT", "/v1/push/apns", b.AdminKey, apnsCreds()); r.Code != 204 || len(r.Body) != 0 {
		t.Fatalf("PUT /v1/push/apns = %d %s, want 204", r.Code, r.Body)
	}
	if r := e.call("PUT", "/v1/push/fcm", b.AdminKey, fcmCreds()); r.Code != 204 || len(r.Body) != 0 {
		t.Fatalf("PUT /v1/push/fcm = %d %s, want 204", r.Code, r.Body)
	}
	r := e.must(200, "GET", "/v1/push", b.AdminKey, nil)
	want := `{"apns":{"configured":true,"key_id":"ABC123DEFG","team_id":"DEF123GHIJ","topic":"com.example.app","environment":"production","status":"ok","error":null},
		"fcm":{"configured":true,"project_id":"hotzone-test","client_email":"push@hotzone-test.iam.gserviceaccount.com","status":"ok","error":null}}`
	if !jsonEqual(t, r.Body, []byte(want)) {
		t.Errorf("GET /v1/push = %s, want %s", r.Body, want)
	}
	for _, secret := range []string{"PRIVATE KEY", "private_key", "key_p8"} {
		if bytes.Contains(r.Body, []byte(secret)) {
			t.Errorf("GET /v1/push = %s, shows %q", r.Body, secret)
		}
	}
	// Another brand's view is its own.
	if r := e.must(200, "GET", "/v1/push", other.AdminKey, nil); !jsonEqual(t, r.Body, []byte(unconfigured)) {
		t.Errorf("GET /v1/push of another brand = %s, want %s", r.Body, unconfigured)
	}
	// Development is the other environment.
	dev := apnsCreds()
	dev["environment"] = "development"
	e.must(204, "PUT", "/v1/push/apns", b.AdminKey, dev)
	var got struct {
		APNs map[string]any `json:"apns"`
	}
	e.must(200, "GET", "/v1/push", b.AdminKey, nil).decode(t, &got)
	if got.APNs["environment"] != "development" {
		t.Errorf("GET /v1/push apns.environment = %v, want development", got.APNs["environment"])
	}

	with := func(base map[string]any, k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	rsaKey := func() string {
		var sa map[string]string
		if err := json.Unmarshal([]byte(testServiceAccount()), &sa); err != nil {
			t.Fatal(err)
		}
		return sa["private_key"]
	}
	bad := []struct {
		name, path string
		body       any
		field      string
	}{
		{"p8 missing", "/v1/push/apns", with(apnsCreds(), "key_p8", nil), "key_p8"},
		{"p8 garbage", "/v1/push/apns", with(apnsCreds(), "key_p8", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"), "key_p8"},
		{"p8 an RSA key", "/v1/push/apns", with(apnsCreds(), "key_p8", rsaKey()), "key_p8"},
		{"key_id short", "/v1/push/apns", with(apnsCreds(), "key_id", "ABC"), "key_id"},
		{"team_id missing", "/v1/push/apns", with(apnsCreds(), "team_id", nil), "team_id"},
		{"topic bad", "/v1/push/apns", with(apnsCreds(), "topic", "com example"), "topic"},
		{"environment bad", "/v1/push/apns", with(apnsCreds(), "environment", "staging"), "environment"},
		{"apns unknown member", "/v1/push/apns", with(apnsCreds(), "bundle", "x"), "bundle"},
		{"service account missing", "/v1/push/fcm", map[string]any{}, "service_account_json"},
		{"service account not JSON", "/v1/push/fcm", map[string]any{"service_account_json": "{"}, "service_account_json"},
		{"service account without project", "/v1/push/fcm", map[string]any{"service_account_json": `{"type":"service_account","client_email":"a@b","private_key":"x"}`}, "service_account_json"},
		{"service account an object", "/v1/push/fcm", map[string]any{"service_account_json": map[string]any{}}, "service_account_json"},
	}
	before := e.must(200, "GET", "/v1/push", b.AdminKey, nil).Body
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			checkProblem(t, "PUT "+tt.path, e.call("PUT", tt.path, b.AdminKey, tt.body), 400, tt.field)
			if after := e.must(200, "GET", "/v1/push", b.AdminKey, nil).Body; !jsonEqual(t, after, before) {
				t.Errorf("GET /v1/push after a failed PUT = %s, want it unchanged: %s", after, before)
			}
		})
	}

	e.must(204, "DELETE", "/v1/push/apns", b.AdminKey, nil)
	got.APNs = nil
	e.must(200, "GET", "/v1/push", b.AdminKey, nil).decode(t, &got)
	if !reflect.DeepEqual(got.APNs, map[string]any{"configured": false}) {
		t.Errorf("GET /v1/push apns after DELETE = %v, want {\"configured\": false}", got.APNs)
	}
	// Credentials survive a restart, and still show no secret.
	e.restart()
	r = e.must(200, "GET", "/v1/push", b.AdminKey, nil)
	var afterRestart struct {
		APNs map[string]any `json:"apns"`
		FCM  map[string]any `json:"fcm"`
	}
	r.decode(t, &afterRestart)
	if afterRestart.FCM["project_id"] != "hotzone-test" || !reflect.DeepEqual(afterRestart.APNs, map[string]any{"configured": false}) {
		t.Errorf("GET /v1/push after a restart = %s, want fcm configured and apns not", r.Body)
	}
}
