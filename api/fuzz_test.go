package api

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hotzone/hotzone"
)

// fuzzEnv is one env for a whole fuzz run (opening bbolt per input would
// leave little time for the inputs): it is opened, and set up, by the
// first input of the process, and every input points e.t at its own t.
type fuzzEnv struct {
	dir   string
	opts  Options
	setup func(e *env)
	e     *env
}

// fuzzBrandWithStore makes the brand a fuzz target works in, with store
// "s": a 200 m circle.
func fuzzBrandWithStore(e *env) brandKeys {
	b := e.brand("Fuzz")
	e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7, -74, 200))
	return b
}

func newFuzzEnv(f *testing.F, opts Options, setup func(e *env)) *fuzzEnv {
	fe := &fuzzEnv{dir: f.TempDir(), opts: opts, setup: setup}
	f.Cleanup(func() {
		if fe.e == nil {
			return
		}
		fe.e.stop()
		if err := fe.e.db.Close(); err != nil {
			f.Errorf("close: %v", err)
		}
	})
	return fe
}

func (fe *fuzzEnv) get(t *testing.T) *env {
	t.Helper()
	if fe.e != nil {
		fe.e.t = t
		return fe.e
	}
	if fe.dir == "" {
		t.Fatal("the setup of this fuzz run failed before")
	}
	e := &env{t: t, dir: fe.dir, opts: fe.opts}
	fe.dir = "" // one try only
	e.open()
	fe.e = e
	fe.setup(e)
	return e
}

// checkJSONAnswer checks what every fuzzed answer must be.
func checkJSONAnswer(t *testing.T, what string, r response, allowed ...int) {
	t.Helper()
	checkResponse(t, what, r)
	if !slicesContains(allowed, r.Code) {
		t.Fatalf("%s = %d, want one of %v: %s", what, r.Code, allowed, r.Body)
	}
	if !json.Valid(r.Body) {
		t.Fatalf("%s = %d with a body that is not JSON: %q", what, r.Code, r.Body)
	}
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func FuzzPingDecoder(f *testing.F) {
	for _, seed := range []string{
		`{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10}`,
		`{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10,"ts":"2026-11-22T10:00:00Z"}`,
		`{"device_id":"d1","lat":-90,"lon":180,"accuracy_m":0}`,
		`{"device_id":"d1","lat":90.0000001,"lon":0,"accuracy_m":1}`,
		`{"device_id":"d1","lon":2,"accuracy_m":1}`,
		`{"device_id":"d1","lat":null,"lon":2,"accuracy_m":1}`,
		`{"device_id":"d1","LAT":1,"lon":2,"accuracy_m":1}`,
		`{"device_id":"d1","lat":1,"lat":1,"lon":2,"accuracy_m":1}`,
		`{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1}{}`,
		`{"device_id":"d1","lat":1e400,"lon":2,"accuracy_m":1}`,
		`{"device_id":"d1","lat":-0,"lon":-0.0e-400,"accuracy_m":1e-320}`,
		`{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"9999-12-31T23:59:59Z"}`,
		`{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"0001-01-01T00:00:00Z"}`,
		`{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"ts":"2026-11-22T10:00:00+23:59"}`,
		`{"device_id":"nobody","lat":1,"lon":2,"accuracy_m":1}`,
		`{"device_id":"` + strings.Repeat("x", 129) + `","lat":1,"lon":2,"accuracy_m":1}`,
		"{\"device_id\":\"d\xff1\",\"lat\":1,\"lon\":2,\"accuracy_m\":1}",
		`{"device_id":"d\u0031","lat":1,"lon":2,"accuracy_m":1}`,
		`{"device_id":"d1","lat":1,"lon":2,"accuracy_m":1,"x":{"y":[1,2,{"z":null}]}}`,
		`{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10,"speed_mps":1.4}`,
		`{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10,"speed_mps":null}`,
		`{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10,"speed_mps":-0.1}`,
		`{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10,"speed_mps":1000.0001}`,
		`{"device_id":"d1","lat":40.7128,"lon":-74.006,"accuracy_m":10,"speed_mps":"3"}`,
		`[` + strings.Repeat(`[`, 10000) + `]`,
		`null`, ``, ` `, `"x"`, `1`, `{`, `}`,
	} {
		f.Add([]byte(seed))
	}
	var b brandKeys
	fe := newFuzzEnv(f, Options{}, func(e *env) {
		b = e.brand("Fuzz")
		e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 800))
		e.must(201, "PUT", "/v1/stores/poly", b.AdminKey, polygonStore("Poly", squareOuter, squareHole))
		e.device(b.AppKey, "d1")
		e.must(201, "POST", "/v1/stores/main-st/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now", "duration_s": 43200})
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fe.get(t)
		r := e.call("POST", "/v1/pings", b.AppKey, body)
		checkJSONAnswer(t, "POST /v1/pings", r, 200, 400, 404, 413, 429)
		switch r.Code {
		case 200:
			// Accepted: the input was one object of exactly the known
			// members, with lat and lon in range.
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("POST /v1/pings %q = 200, but the body does not decode: %v", body, err)
			}
			for k := range m {
				switch k {
				case "device_id", "lat", "lon", "accuracy_m", "ts", "speed_mps":
				default:
					t.Fatalf("POST /v1/pings %q = 200 with unknown member %q", body, k)
				}
			}
			inRange := func(name string, lo, hi float64) {
				n, ok := m[name].(json.Number)
				if !ok {
					t.Fatalf("POST /v1/pings %q = 200 with %s = %v, want a number", body, name, m[name])
				}
				v, err := strconv.ParseFloat(string(n), 64)
				if err != nil || math.IsNaN(v) || v < lo || v > hi {
					t.Fatalf("POST /v1/pings %q = 200 with %s = %v, want %v..%v", body, name, n, lo, hi)
				}
			}
			inRange("lat", -90, 90)
			inRange("lon", -180, 180)
			inRange("accuracy_m", 0, 100000)
			if v, ok := m["speed_mps"]; ok && v != nil {
				inRange("speed_mps", 0, 1000)
			}
			if m["device_id"] != "d1" {
				t.Fatalf("POST /v1/pings %q = 200 for device %v, want only d1 known", body, m["device_id"])
			}
			var resp struct {
				Inside        []json.RawMessage `json:"inside"`
				LiveEvents    []json.RawMessage `json:"live_events"`
				Notifications []json.RawMessage `json:"notifications"`
			}
			r.decode(t, &resp)
			if resp.Inside == nil || resp.LiveEvents == nil || resp.Notifications == nil {
				t.Fatalf("POST /v1/pings = 200 %s, want the three arrays", r.Body)
			}
		case 404:
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil || m["device_id"] == "d1" {
				t.Fatalf("POST /v1/pings %q = 404, want that only for an unknown device", body)
			}
		case 413:
			if len(body) <= limitPing {
				t.Fatalf("POST /v1/pings of %d bytes = 413, want that only over %d", len(body), limitPing)
			}
		}
	})
}

// featureField is an error's field inside features[i].
var featureField = regexp.MustCompile(`^features\[(\d+)\]`)

func FuzzImport(f *testing.F) {
	for _, seed := range []string{
		`{"type":"FeatureCollection","features":[]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[-74.006,40.7128]},"properties":{"id":"a","name":"A","timezone":"America/New_York","tags":["x"],"radius_m":300}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],[[0.2,0.2],[0.2,0.8],[0.8,0.8],[0.8,0.2],[0.2,0.2]]]},"properties":{"id":"p","name":"P"}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[[[179,-1],[-179,-1],[-179,1],[179,1],[179,-1]]],[[[10,10],[11,10],[11,11],[10,11],[10,10]]]]},"properties":{"id":"m","name":"M"}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1e-7,-0]},"properties":{"id":"tiny","name":"T","radius_m":10.000000000000002}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[180,90]},"properties":{"id":"pole","name":"N","radius_m":50000}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,1]},"properties":{"id":"a","name":"A","radius_m":100}},{"type":"Feature","geometry":{"type":"Point","coordinates":[1,1]},"properties":{"id":"a","name":"A","radius_m":100}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,1],"foo":1},"properties":{"id":"a","name":"A","radius_m":100}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]},"properties":{"id":"bow","name":"Bow tie"}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]},"properties":{"id":"tri","name":"Tri","radius_m":5}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,1]},"properties":{"id":"a","name":"A","radius_m":100,"timezone":"Local"}}, 7, null, {}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","id":1,"bbox":[0,0,1,1],"geometry":{"type":"Point","coordinates":[1,1],"bbox":[1,1,1,1]},"properties":{"id":"b","name":"☕\u0000","radius_m":100,"tags":["a","a"]}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0,0],[1,0],[1,1],[0,0]]]},"properties":{"id":"z","name":"Z"}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[]},"properties":{"id":"e","name":"E"}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"GeometryCollection","geometries":[]},"properties":{"id":"g","name":"G"}}]}`,
		`{"type":"FeatureCollection"}`, `{"type":"Feature"}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	fe := newFuzzEnv(f, Options{}, func(*env) {})
	n := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fe.get(t)
		n++
		b := e.brand("Fuzz " + strconv.Itoa(n))
		r := e.call("POST", "/v1/stores/import", b.AdminKey, body)
		checkJSONAnswer(t, "POST /v1/stores/import", r, 200, 400, 413)
		var in struct {
			Features []json.RawMessage `json:"features"`
		}
		inErr := json.Unmarshal(body, &in)
		switch r.Code {
		case 400:
			// Every problem of a feature is reported, each once, and the
			// features' errors come in the features' order.
			var p struct {
				Errors []hotzoneFieldError `json:"errors"`
			}
			r.decode(t, &p)
			seen := map[hotzoneFieldError]bool{}
			last := -1
			for _, fe := range p.Errors {
				if seen[fe] {
					t.Fatalf("POST /v1/stores/import = 400 with %+v twice: %s", fe, r.Body)
				}
				seen[fe] = true
				m := featureField.FindStringSubmatch(fe.Field)
				if m == nil {
					continue
				}
				i, err := strconv.Atoi(m[1])
				if err != nil || i < last {
					t.Fatalf("POST /v1/stores/import = 400 with an error for %s after one for features[%d]: %s", fe.Field, last, r.Body)
				}
				last = i
			}
			// And nothing was imported.
			if got := e.must(200, "GET", "/v1/stores", b.AdminKey, nil); !bytes.Contains(got.Body, []byte(`"items":[]`)) {
				t.Fatalf("GET /v1/stores after a failed import = %s, want none", got.Body)
			}
		case 200:
			if inErr != nil {
				t.Fatalf("POST /v1/stores/import %q = 200, but it does not decode: %v", body, inErr)
			}
			var res importResult
			r.decode(t, &res)
			if res.Created+res.Updated != len(in.Features) || res.Updated != 0 {
				t.Fatalf("POST /v1/stores/import of %d features into a new brand = %s", len(in.Features), r.Body)
			}
			// Every feature is a store now, named as imported.
			for i, raw := range in.Features {
				var ft struct {
					Properties struct {
						ID   string `json:"id"`
						Name string `json:"name"`
					} `json:"properties"`
				}
				if err := json.Unmarshal(raw, &ft); err != nil {
					t.Fatalf("features[%d] was accepted but does not decode: %v", i, err)
				}
				var st storeOut
				e.must(200, "GET", "/v1/stores/"+ft.Properties.ID, b.AdminKey, nil).decode(t, &st)
				if st.Name != ft.Properties.Name {
					t.Fatalf("store %s name = %q, want %q", ft.Properties.ID, st.Name, ft.Properties.Name)
				}
			}
			export1 := e.must(200, "GET", "/v1/stores.geojson", b.AdminKey, nil)
			var out struct {
				Features []json.RawMessage `json:"features"`
			}
			export1.decode(t, &out)
			if len(out.Features) < len(in.Features) {
				t.Fatalf("GET /v1/stores.geojson = %d features after importing %d", len(out.Features), len(in.Features))
			}
			// The export imports back unchanged.
			r := e.call("POST", "/v1/stores/import", b.AdminKey, export1.Body)
			if r.Code != 200 {
				t.Fatalf("POST /v1/stores/import of the export = %d: %s\nexport: %s", r.Code, r.Body, export1.Body)
			}
			if export2 := e.must(200, "GET", "/v1/stores.geojson", b.AdminKey, nil); !bytes.Equal(export1.Body, export2.Body) {
				t.Fatalf("export, import, export differ:\n%s\n%s", export1.Body, export2.Body)
			}
		}
	})
}

type hotzoneFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FuzzWebhookCreate: whatever the body, POST /v1/webhooks answers 201
// only for an http(s) URL and known, distinct events, else a 4xx; never
// a 500, and a refused body creates nothing.
func FuzzWebhookCreate(f *testing.F) {
	for _, seed := range []string{
		`{"url":"http://127.0.0.1:9/h","events":["entered"]}`,
		`{"url":"https://example.invalid/h","events":["entered","exited","dwelled"]}`,
		`{"url":"http://localhost/h","events":["visit"]}`,
		`{"url":"http://127.0.0.1:9/h","events":["entered","entered"]}`,
		`{"url":"http://127.0.0.1:9/h","events":[]}`,
		`{"url":"javascript:alert(1)","events":["entered"]}`,
		`{"url":"http://127.0.0.1:9/h","events":[null]}`,
		`{"url":"http://[fe80::1%25eth0]/h","events":["entered"]}`,
		`{"url":null,"events":null}`,
		`{"url":"http://127.0.0.1:9/h","events":"entered"}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	var b brandKeys
	fe := newFuzzEnv(f, Options{WebhookAllowPrivate: true}, func(e *env) { b = e.brand("Fuzz") })
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fe.get(t)
		var before page[webhookOut]
		e.must(200, "GET", "/v1/webhooks?limit=100", b.AdminKey, nil).decode(t, &before)
		r := e.call("POST", "/v1/webhooks", b.AdminKey, body)
		checkJSONAnswer(t, "POST /v1/webhooks", r, 201, 400, 409, 413, 503)
		var after page[webhookOut]
		e.must(200, "GET", "/v1/webhooks?limit=100", b.AdminKey, nil).decode(t, &after)
		if r.Code != 201 {
			if len(after.Items) != len(before.Items) {
				t.Fatalf("POST /v1/webhooks %q = %d, yet a webhook was created", body, r.Code)
			}
			return
		}
		var w webhookOut
		r.decode(t, &w)
		if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") || len(w.Events) == 0 {
			t.Fatalf("POST /v1/webhooks %q = 201 with %+v", body, w)
		}
		// Room for the next inputs.
		e.must(204, "DELETE", "/v1/webhooks/"+w.ID, b.AdminKey, nil)
	})
}

// FuzzPolicyPatch: whatever the body, PATCH /v1/policy answers 200 with
// a policy in range or a 4xx that leaves the policy as it was.
func FuzzPolicyPatch(f *testing.F) {
	for _, seed := range []string{
		`{"trigger":"dwell","dwell_s":30,"max_speed_mps":1}`,
		`{"trigger":"enter","dwell_s":3600,"max_speed_mps":null}`,
		`{"trigger":"DWELL"}`, `{"dwell_s":29}`, `{"dwell_s":1e9}`, `{"max_speed_mps":100.0001}`,
		`{"max_speed_mps":"5"}`, `{"trigger":null}`, `{"daily_cap":5,"trigger":"dwell"}`,
		`{"quiet_hours":null,"max_speed_mps":0.5}`, `[]`, `null`, ``,
		`{"holdout_pct":50,"attribution_s":300}`, `{"holdout_pct":51}`, `{"holdout_pct":-1}`, `{"holdout_pct":"5"}`,
		`{"attribution_s":604801}`, `{"attribution_s":7200.5}`, `{"holdout_pct":null}`,
		`{"retention_days":1}`, `{"retention_days":366}`, `{"retention_days":0}`,
	} {
		f.Add([]byte(seed))
	}
	var b brandKeys
	fe := newFuzzEnv(f, Options{}, func(e *env) { b = e.brand("Fuzz") })
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fe.get(t)
		before := e.must(200, "GET", "/v1/policy", b.AdminKey, nil).Body
		r := e.call("PATCH", "/v1/policy", b.AdminKey, body)
		checkJSONAnswer(t, "PATCH /v1/policy", r, 200, 400, 413)
		after := e.must(200, "GET", "/v1/policy", b.AdminKey, nil)
		if r.Code != 200 {
			if !bytes.Equal(before, after.Body) {
				t.Fatalf("PATCH /v1/policy %q = %d, yet the policy changed: %s -> %s", body, r.Code, before, after.Body)
			}
			return
		}
		var p struct {
			Trigger     string   `json:"trigger"`
			DwellS      int      `json:"dwell_s"`
			MaxSpeedMPS *float64 `json:"max_speed_mps"`
			HoldoutPct  int      `json:"holdout_pct"`
			Attribution int      `json:"attribution_s"`
			Retention   int      `json:"retention_days"`
		}
		after.decode(t, &p)
		if (p.Trigger != "enter" && p.Trigger != "dwell") || p.DwellS < 30 || p.DwellS > 3600 ||
			(p.MaxSpeedMPS != nil && (*p.MaxSpeedMPS < 1 || *p.MaxSpeedMPS > 100)) ||
			p.HoldoutPct < 0 || p.HoldoutPct > 50 || p.Attribution < 300 || p.Attribution > 604800 ||
			p.Retention < 1 || p.Retention > 365 {
			t.Fatalf("PATCH /v1/policy %q = 200 leaving %s", body, after.Body)
		}
	})
}

// FuzzStartEvent: whatever the body (localized texts included), starting
// an event answers 201 or a 4xx naming what is wrong, never a 500; a
// refused start starts nothing.
func FuzzStartEvent(f *testing.F) {
	for _, seed := range []string{
		`{"title":"Hot","body":"Now"}`,
		`{"title":"Hot","body":"Now","localized":{"de":{"title":"Heiss","body":"Frisch"},"nl-BE":{"title":"Warm","body":"Vers"}}}`,
		`{"title":"Hot","body":"Now","localized":{"de":{"title":"Heiss"}}}`,
		`{"title":"Hot","body":"Now","localized":{"de_CH":{"title":"a","body":"b"}}}`,
		`{"title":"Hot","body":"Now","localized":{"de":{"title":"a","body":"b"},"DE":{"title":"a","body":"b"}}}`,
		`{"title":"Hot","body":"Now","localized":null}`,
		`{"title":"Hot","body":"Now","audience":{"any":["persona:commuter"],"none":["staff"]}}`,
		`{"title":"Hot","body":"Now","audience":{"all":["A"]}}`,
		`{"title":"Hot","body":"Now","audience":{}}`,
		`{"title":"Hot","body":"Now","localized":[]}`,
		`{"title":"Hot","body":"Now","duration_s":60,"url":"app://x"}`,
		`{"title":"Hot","body":"Now","holdout_pct":50}`, `{"title":"Hot","body":"Now","holdout_pct":51}`,
		`{"title":"Hot","body":"Now","holdout_pct":null}`, `{"title":"Hot","body":"Now","holdout_pct":1.5}`,
		`{}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	var b brandKeys
	fe := newFuzzEnv(f, Options{}, func(e *env) { b = fuzzBrandWithStore(e) })
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fe.get(t)
		r := e.call("POST", "/v1/stores/s/events", b.AdminKey, body)
		checkJSONAnswer(t, "POST /v1/stores/s/events", r, 201, 400, 413)
		live := e.call("GET", "/v1/stores/s/events/live", b.AdminKey, nil)
		if r.Code != 201 {
			if live.Code != 404 {
				t.Fatalf("POST events %q = %d, yet an event is live", body, r.Code)
			}
			return
		}
		e.must(200, "DELETE", "/v1/stores/s/events/live", b.AdminKey, nil)
	})
}

// FuzzPutPreset: whatever the body, saving an audience or a template
// answers 200/201 or a 4xx, never a 500, and a refused body leaves what
// was saved as it was.
func FuzzPutPreset(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Gold","any":["loyalty:gold"]}`,
		`{"name":"Gold","all":["Loyalty"]}`,
		`{"name":"","none":["x"]}`,
		`{"name":"Hot","title":"Hot","body":"Now","localized":{"de":{"title":"a","body":"b"}}}`,
		`{"name":"Hot","title":"Hot","body":"Now","duration_s":59}`,
		`{"name":"Hot","title":"Hot","body":"Now","url":null,"duration_s":null,"localized":null}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	var b brandKeys
	fe := newFuzzEnv(f, Options{}, func(e *env) { b = e.brand("Fuzz") })
	f.Fuzz(func(t *testing.T, body []byte, audience bool) {
		e := fe.get(t)
		path := "/v1/templates/t"
		if audience {
			path = "/v1/audiences/a"
		}
		before := e.call("GET", path, b.AdminKey, nil)
		r := e.call("PUT", path, b.AdminKey, body)
		checkJSONAnswer(t, "PUT "+path, r, 200, 201, 400, 413)
		after := e.call("GET", path, b.AdminKey, nil)
		if r.Code >= 400 && (before.Code != after.Code || !bytes.Equal(before.Body, after.Body)) {
			t.Fatalf("PUT %s %q = %d, yet what was saved changed: %s -> %s", path, body, r.Code, before.Body, after.Body)
		}
	})
}

// FuzzPutStore: whatever the body (its visit area included), PUT
// /v1/stores/{id} answers 200/201 or a 4xx naming what is wrong, never a
// 500; a refused body leaves the store as it was.
func FuzzPutStore(f *testing.F) {
	for _, seed := range []string{
		`{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74,"radius_m":200}}}`,
		`{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74,"radius_m":200}},"visit":{"circle":{"lat":40.7,"lon":-74,"radius_m":20}}}`,
		`{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74,"radius_m":200}},"visit":null}`,
		`{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74,"radius_m":200}},"visit":{}}`,
		`{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74,"radius_m":200}},"visit":{"polygon":{"type":"Polygon","coordinates":[[[-74,40.7],[-73.99,40.7],[-73.99,40.71],[-74,40.7]]]}}}`,
		`{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74,"radius_m":200}},"visit":{"circle":{"lat":91,"lon":-74,"radius_m":20}}}`,
		`{"name":"S","fence":{"circle":{"lat":40.7,"lon":-74,"radius_m":200}},"visit":"here"}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	var b brandKeys
	fe := newFuzzEnv(f, Options{}, func(e *env) { b = fuzzBrandWithStore(e) })
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fe.get(t)
		before := e.must(200, "GET", "/v1/stores/s", b.AdminKey, nil).Body
		r := e.call("PUT", "/v1/stores/s", b.AdminKey, body)
		checkJSONAnswer(t, "PUT /v1/stores/s", r, 200, 400, 413)
		after := e.must(200, "GET", "/v1/stores/s", b.AdminKey, nil).Body
		if r.Code != 200 && !bytes.Equal(before, after) {
			t.Fatalf("PUT /v1/stores/s %q = %d, yet the store changed: %s -> %s", body, r.Code, before, after)
		}
	})
}

// FuzzOpen: whatever the body and id, reporting a tap answers 204, 400
// or 404, never a 500, and counts at most the one open.
func FuzzOpen(f *testing.F) {
	for _, seed := range []string{`{"device_id":"d1"}`, `{"device_id":"d2"}`, `{"device_id":""}`, `{"device_id":7}`,
		`{"device_id":"d1","x":1}`, `{}`, `[]`, `null`, ``, `{`} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	var (
		b   brandKeys
		nid string
	)
	fe := newFuzzEnv(f, Options{}, func(e *env) {
		b = e.brand("Fuzz")
		e.must(200, "PATCH", "/v1/policy", b.AdminKey, map[string]any{"quiet_hours": nil})
		e.must(201, "PUT", "/v1/stores/s", b.AdminKey, circleStore("S", 40.7, -74, 200))
		e.device(b.AppKey, "d1")
		e.must(201, "POST", "/v1/stores/s/events", b.AdminKey, map[string]any{"title": "Hot", "body": "Now"})
		e.must(200, "POST", "/v1/pings", b.AppKey, ping("d1", 40.7, -74))
		var log struct {
			Items []struct{ ID string } `json:"items"`
		}
		e.must(200, "GET", "/v1/notifications", b.AdminKey, nil).decode(e.t, &log)
		if len(log.Items) != 1 {
			e.t.Fatalf("log: %+v", log)
		}
		nid = log.Items[0].ID
	})
	f.Fuzz(func(t *testing.T, body []byte, known bool) {
		e := fe.get(t)
		id := "nope"
		if known {
			id = nid
		}
		r := e.call("POST", "/v1/notifications/"+id+"/open", b.AppKey, body)
		if r.Code == 204 {
			if len(r.Body) != 0 {
				t.Fatalf("204 with a body: %q", r.Body)
			}
		} else {
			checkJSONAnswer(t, "POST open", r, 400, 404, 413)
		}
		var live struct{ Counts hotzone.Counts }
		e.must(200, "GET", "/v1/stores/s/events/live", b.AdminKey, nil).decode(t, &live)
		if live.Counts.Opened > 1 {
			t.Fatalf("opened %d after %q", live.Counts.Opened, body)
		}
	})
}
