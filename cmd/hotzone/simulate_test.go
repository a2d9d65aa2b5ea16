package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// simStoresGeoJSON: two circles and a polygon in lower Manhattan.
const simStoresGeoJSON = `{"type":"FeatureCollection","features":[
 {"type":"Feature","geometry":{"type":"Point","coordinates":[-74.0060,40.7128]},
  "properties":{"id":"sim-a","name":"City Hall","timezone":"America/New_York","radius_m":250}},
 {"type":"Feature","geometry":{"type":"Point","coordinates":[-73.9911,40.7359]},
  "properties":{"id":"sim-b","name":"Union Square","timezone":"America/New_York","radius_m":300}},
 {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[-74.0030,40.7270],[-73.9990,40.7270],[-73.9990,40.7300],[-74.0030,40.7300],[-74.0030,40.7270]]]},
  "properties":{"id":"sim-c","name":"Soho","timezone":"Europe/Berlin"}}]}`

type simFixture struct {
	base, admin, app, eventID string
	stop                      func() error // the server, as SIGTERM would
}

// simServer starts a server with a brand, three stores, no quiet hours
// (so what is queued does not depend on the hour the test runs) and a
// live event at sim-a.
func simServer(t *testing.T, serveArgs ...string) simFixture {
	t.Helper()
	const op = "hzo_simulate-secret"
	base, _, stop := startServer(t, map[string]string{"HOTZONE_OPERATOR_KEY": op}, append([]string{"--data", t.TempDir()}, serveArgs...)...)
	code, brand := httpCall(t, "POST", base+"/v1/brands", op, `{"name":"Sim Donuts"}`)
	if code != 201 {
		t.Fatalf("POST /v1/brands = %d %v", code, brand)
	}
	f := simFixture{base: base, admin: brand["admin_key"].(string), app: brand["app_key"].(string), stop: stop}
	if code, m := httpCall(t, "PATCH", base+"/v1/policy", f.admin, `{"quiet_hours":null}`); code != 200 {
		t.Fatalf("PATCH /v1/policy = %d %v", code, m)
	}
	if code, m := httpCall(t, "POST", base+"/v1/stores/import", f.admin, simStoresGeoJSON); code != 200 || m["created"] != 3.0 {
		t.Fatalf("import stores = %d %v", code, m)
	}
	code, ev := httpCall(t, "POST", base+"/v1/stores/sim-a/events", f.admin, `{"title":"Hot Now","body":"Fresh at City Hall","duration_s":600}`)
	if code != 201 {
		t.Fatalf("start event = %d %v", code, ev)
	}
	f.eventID = ev["id"].(string)
	return f
}

// runSimulate runs `hotzone simulate` in-process and decodes its --json
// summary; stderr is the progress.
func runSimulate(t *testing.T, ctx context.Context, args ...string) (*simSummary, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	if err := run(ctx, append([]string{"simulate"}, args...), func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("simulate %v: %v\n%s", args, err, stderr.String())
	}
	var sum simSummary
	dec := json.NewDecoder(strings.NewReader(stdout.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sum); err != nil {
		t.Fatalf("summary is not one JSON object: %v\n%s", err, stdout.String())
	}
	if dec.More() {
		t.Fatalf("stdout holds more than the summary:\n%s", stdout.String())
	}
	return &sum, stderr.String()
}

// metricSeries reads one series of GET /metrics: its value (0 while it
// has not appeared), whether it appeared, and whether the server has the
// endpoint at all.
func metricSeries(t *testing.T, base, series string) (v float64, found, endpoint bool) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, false, false
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if name, val, ok := strings.Cut(sc.Text(), " "); ok && name == series {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				t.Fatalf("/metrics: %s %q", series, val)
			}
			return v, true, true
		}
	}
	return 0, false, true
}

func checkCounts(t *testing.T, sum *simSummary, devices int) {
	t.Helper()
	p := sum.Pings
	if sum.Devices != devices || sum.DevicesFailed != 0 {
		t.Errorf("devices = %d (%d failed), want %d", sum.Devices, sum.DevicesFailed, devices)
	}
	if sum.Platforms["ios"]+sum.Platforms["android"] != sum.Devices || sum.Platforms["ios"] == 0 || sum.Platforms["android"] == 0 {
		t.Errorf("platforms = %v, want a mix adding up to %d", sum.Platforms, sum.Devices)
	}
	if p.Sent == 0 || p.OK+p.RateLimited+p.Failed != p.Sent {
		t.Errorf("pings = %+v: want sent > 0 and ok + rate_limited + failed == sent", p)
	}
	if p.Failed != 0 || len(sum.Errors) != 0 {
		t.Errorf("%d pings failed against a local server: %v", p.Failed, sum.Errors)
	}
	if p.InsideFence == 0 || p.InsideFence > p.OK {
		t.Errorf("inside_fence = %d of %d ok pings, want some", p.InsideFence, p.OK)
	}
	if l := sum.LatencyMS; !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency = %+v, want 0 < p50 ≤ p90 ≤ p99 ≤ max", l)
	}
}

// TestSimulate runs the simulator against a real server and holds its
// summary against what the server itself recorded.
func TestSimulate(t *testing.T) {
	f := simServer(t)
	const okPings = `hotzone_pings_total{outcome="ok"}`
	okBefore, _, haveMetrics := metricSeries(t, f.base, okPings)

	sum, progress := runSimulate(t, t.Context(), "--url", f.base, "--admin-key", f.admin,
		"--devices", "50", "--rate", "100", "--duration", "3s", "--json", "--seed", "1")
	t.Logf("summary: %+v", *sum)
	checkCounts(t, sum, 50)
	p := sum.Pings
	// 50 devices at most once a second each: --rate 100 is held to 50/s,
	// and the server's limit (1/s, burst 20) never answers 429.
	if sum.TargetRate != 50 || p.Sent > 50*4 || p.Sent < 50*2 || p.RateLimited != 0 {
		t.Errorf("target %v/s, pings %+v: want 50/s, 100–200 sent in 3s and no 429", sum.TargetRate, p)
	}
	if sum.Stores != 3 || sum.LiveEvents != 1 || sum.Interrupted {
		t.Errorf("stores %d, live events %d, interrupted %v; want 3, 1, false", sum.Stores, sum.LiveEvents, sum.Interrupted)
	}
	if lines := regexp.MustCompile(`(?m)^\s*\d+s  devices 50  pings \d+  [\d.]+/s  p50 \S+  p99 \S+  429s \d+  errors \d+  queued \d+$`).FindAllString(progress, -1); len(lines) < 3 {
		t.Errorf("progress has %d lines a second, want 3 or more:\n%s", len(lines), progress)
	}

	// Queued notifications: the event started before any device existed,
	// so every entry of its log that is not a hold was queued by a ping,
	// and the server answers "queued" once per device and event.
	n := sum.Notifications
	if n.Queued == 0 || n.ByEvent[f.eventID].Queued != n.Queued || n.ByEvent[f.eventID].StoreID != "sim-a" {
		t.Errorf("notifications = %+v, want some queued, all for event %s at sim-a", n, f.eventID)
	}
	code, list := httpCall(t, "GET", f.base+"/v1/notifications?limit=1000&event_id="+f.eventID, f.admin, "")
	items, _ := list["items"].([]any)
	notHeld := 0
	for _, it := range items {
		if it.(map[string]any)["status"] != "suppressed" {
			notHeld++
		}
	}
	if code != 200 || notHeld != n.Queued {
		t.Errorf("server's log holds %d notifications past the policy (of %d entries), summary queued %d", notHeld, len(items), n.Queued)
	}
	_, live := httpCall(t, "GET", f.base+"/v1/stores/sim-a/events/live", f.admin, "")
	if c, _ := live["counts"].(map[string]any); c == nil || int(c["devices_in_fence"].(float64)-c["suppressed"].(float64)) != n.Queued {
		t.Errorf("live event counts %v, summary queued %d", live["counts"], n.Queued)
	}

	// The server's own ping counter moved by exactly the pings answered.
	if haveMetrics {
		okAfter, found, _ := metricSeries(t, f.base, okPings)
		if got := int(okAfter - okBefore); !found || got != p.OK {
			t.Errorf("%s moved by %d (found %v), summary ok %d", okPings, got, found, p.OK)
		}
	} else {
		t.Log("the server has no /metrics: its ping count is not compared")
	}

	// Exactly the 50 devices exist: each erases (204), the next id is unknown.
	for i := range 51 {
		want := 204
		if i == 50 {
			want = 404
		}
		if code, _ := httpCall(t, "DELETE", fmt.Sprintf("%s/v1/devices/%s%d", f.base, sum.DeviceIDPrefix, i), f.admin, ""); code != want {
			t.Errorf("DELETE device %s%d = %d, want %d", sum.DeviceIDPrefix, i, code, want)
		}
	}
}

// TestSimulateBatchText: batches through the app key, the summary for a
// person, progress as plain lines on stdout when it is not a terminal.
func TestSimulateBatchText(t *testing.T) {
	f := simServer(t)
	var stdout, stderr syncBuffer
	err := run(t.Context(), []string{"simulate", "--url", f.base, "--admin-key", f.admin, "--app-key", f.app,
		"--devices", "40", "--rate", "40", "--batch", "8", "--duration", "2s", "--seed", "7"}, func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, "\r") || !regexp.MustCompile(`(?m)^\s*\d+s  devices 40  pings \d+`).MatchString(out) {
		t.Errorf("progress lines missing or redrawn:\n%s", out)
	}
	m := regexp.MustCompile(`pings\s+(\d+) sent in [\d.]+s \([\d.]+/s, target 40/s, batches of up to 8, (\d+) requests\): (\d+) ok, (\d+) rate limited, (\d+) failed`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary lacks the pings line:\n%s", out)
	}
	v := make([]int, len(m))
	for i := 1; i < len(m); i++ {
		v[i], _ = strconv.Atoi(m[i])
	}
	if sent, reqs, ok := v[1], v[2], v[3]; sent == 0 || ok+v[4]+v[5] != sent || reqs*8 < sent || reqs >= sent {
		t.Errorf("sent %d in %d requests, %d ok %d limited %d failed: inconsistent\n%s", sent, reqs, ok, v[4], v[5], out)
	}
	for _, want := range []string{"devices        40 registered", "0 failed; ids sim-7-0 … sim-7-39", "notifications  ", "latency        p50 "} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// TestSimulateRetryAfter: against a server allowing one ping a minute
// per device, each device is answered 429 once and then waits out the
// Retry-After instead of pinging on.
func TestSimulateRetryAfter(t *testing.T) {
	f := simServer(t, "--device-ping-rate", "1/m,burst=1")
	sum, _ := runSimulate(t, t.Context(), "--url", f.base, "--admin-key", f.admin,
		"--devices", "10", "--rate", "10", "--duration", "2500ms", "--json")
	p := sum.Pings
	if p.OK != 10 || p.RateLimited == 0 || p.RateLimited > 10 || p.Failed != 0 || p.Sent != p.OK+p.RateLimited {
		t.Errorf("pings = %+v: want 10 ok, then at most one 429 per device", p)
	}
}

// TestSimulateInterrupt: SIGINT (a cancelled context) ends the run early,
// still with a summary.
func TestSimulateInterrupt(t *testing.T) {
	f := simServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	sum, _ := runSimulate(t, ctx, "--url", f.base, "--admin-key", f.admin, "--devices", "20", "--rate", "20", "--duration", "1m", "--json")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("interrupted run took %v", took)
	}
	if !sum.Interrupted || sum.Pings.Sent == 0 || sum.Pings.Sent > 20*3 || sum.Pings.OK+sum.Pings.RateLimited+sum.Pings.Failed != sum.Pings.Sent {
		t.Errorf("interrupted %v, pings %+v", sum.Interrupted, sum.Pings)
	}
}

// TestSimulateKeys: a key the server refuses fails before any device is
// registered, naming the flag.
func TestSimulateKeys(t *testing.T) {
	f := simServer(t)
	tests := []struct {
		name, wantErr string
		args          []string
	}{
		{"unknown admin key", "--admin-key", []string{"--admin-key", "hza_nosuchkey"}},
		{"unknown app key", "--app-key", []string{"--admin-key", f.admin, "--app-key", "hzp_nosuchkey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"simulate", "--url", f.base, "--duration", "1s"}, tt.args...)
			err := run(t.Context(), args, func(string) string { return "" }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run(%v) = %v, want an error naming %s", args, err, tt.wantErr)
			}
		})
	}
	// Nothing was registered: the first device id is unknown.
	if code, _ := httpCall(t, "DELETE", f.base+"/v1/devices/sim-1-0", f.admin, ""); code != 404 {
		t.Errorf("DELETE sim-1-0 = %d, want 404", code)
	}
}

// TestSimulateFlags: invalid values fail fast, before any request.
func TestSimulateFlags(t *testing.T) {
	const key = "hza_x"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"no admin key", nil, nil, "--admin-key is required"},
		{"app key as admin key", []string{"--admin-key", "hzp_x"}, nil, "--admin-key"},
		{"admin key as app key", []string{"--admin-key", key, "--app-key", "hza_y"}, nil, "--app-key"},
		{"url scheme", []string{"--admin-key", key, "--url", "ftp://host"}, nil, "--url"},
		{"url without host", []string{"--admin-key", key, "--url", "http://"}, nil, "--url"},
		{"no devices", []string{"--admin-key", key, "--devices", "0"}, nil, "--devices"},
		{"negative rate", []string{"--admin-key", key, "--rate", "-5"}, nil, "--rate"},
		{"NaN rate", []string{"--admin-key", key, "--rate", "NaN"}, nil, "--rate"},
		{"zero device rate", []string{"--admin-key", key, "--device-rate", "0"}, nil, "--device-rate"},
		{"zero duration", []string{"--admin-key", key, "--duration", "0s"}, nil, "--duration"},
		{"batch too big", []string{"--admin-key", key, "--batch", "501"}, nil, "--batch"},
		{"negative batch", []string{"--admin-key", key, "--batch", "-1"}, nil, "--batch"},
		{"timeout too long", []string{"--admin-key", key, "--timeout", "1h"}, nil, "--timeout"},
		{"bad env number", []string{"--admin-key", key}, map[string]string{"HOTZONE_SIM_DEVICES": "lots"}, "HOTZONE_SIM_DEVICES"},
		{"bad env duration", []string{"--admin-key", key}, map[string]string{"HOTZONE_SIM_DURATION": "soon"}, "HOTZONE_SIM_DURATION"},
		{"bad env url", nil, map[string]string{"HOTZONE_SIM_URL": "localhost:8080", "HOTZONE_SIM_ADMIN_KEY": key}, "--url"},
		{"stray argument", []string{"--admin-key", key, "extra"}, nil, "no arguments"},
		{"unknown flag", []string{"--admin-key", key, "--speed", "9"}, nil, "speed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			err := run(t.Context(), append([]string{"simulate"}, tt.args...), getenv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("simulate %v (env %v) = %v, want an error naming %q", tt.args, tt.env, err, tt.wantErr)
			}
		})
	}

	// Flags win over the environment; the environment over defaults.
	cfg, err := parseSimFlags([]string{"--devices", "7"}, func(k string) string {
		return map[string]string{"HOTZONE_SIM_DEVICES": "9", "HOTZONE_SIM_RATE": "3", "HOTZONE_SIM_ADMIN_KEY": key, "HOTZONE_SIM_JSON": "true"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Devices != 7 || cfg.Rate != 3 || !cfg.JSON || cfg.URL != "http://localhost:8080" || cfg.Duration != time.Minute || cfg.effectiveRate(cfg.Devices) != 3 || cfg.effectiveRate(2) != 2 {
		t.Errorf("config = %+v", cfg)
	}
	var help strings.Builder
	if err := run(t.Context(), []string{"simulate", "--help"}, func(string) string { return "" }, io.Discard, &help); err != nil {
		t.Errorf("--help = %v", err)
	}
	for _, name := range []string{"HOTZONE_SIM_URL", "HOTZONE_SIM_ADMIN_KEY", "HOTZONE_SIM_DEVICES", "HOTZONE_SIM_RATE", "HOTZONE_SIM_DURATION", "HOTZONE_SIM_BATCH", "HOTZONE_SIM_SEED", "HOTZONE_SIM_JSON"} {
		if !strings.Contains(help.String(), name) {
			t.Errorf("--help does not mention %s", name)
		}
	}
}

// TestSimulateWalk: people move at their speed, visitors reach the
// fence, and fixes stay within their stated accuracy.
func TestSimulateWalk(t *testing.T) {
	st := &simStore{ID: "s", Lat: 40.7128, Lon: -74.0060, RadiusM: 200}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	entered, visitors := 0, 0
	for i := range 500 {
		d, body := newSimDevice(3, i, []*simStore{st}, nil, time.Minute, t0)
		if body.Platform == "ios" && len(body.Push.Token) != 64 || body.Platform == "android" && body.Push.Provider != "fcm" {
			t.Fatalf("device %d push = %+v", i, body.Push)
		}
		w := d.w
		if w.mode == modeVisit {
			visitors++
		}
		inside := false
		for s := 1; s <= 60; s++ {
			x, y := w.x, w.y
			w.advance(t0.Add(time.Duration(s) * time.Second))
			if moved := dist(x, y, w.x, w.y); moved > 5.0001 {
				t.Fatalf("device %d moved %.1f m in a second", i, moved)
			}
			if dist(0, 0, w.x, w.y) <= st.RadiusM {
				inside = true
			}
			lat, lon, acc := w.fix()
			tlat, tlon := offset(st.Lat, st.Lon, w.x, w.y)
			if e := haversine(lat, lon, tlat, tlon); acc < 5 || acc > 600 || e > acc+1 {
				t.Fatalf("fix %v,%v ±%v is %.1f m from the true position", lat, lon, acc, e)
			}
		}
		if inside {
			entered++
		}
	}
	t.Logf("%d visitors, %d of 500 inside within a minute", visitors, entered)
	// About 15% start inside and 45% head in; most of them make it.
	if visitors < 150 || entered < 200 || entered > 450 {
		t.Errorf("%d visitors, %d of 500 were inside within a minute; want most visitors and not the passers-by", visitors, entered)
	}
}

func dist(x1, y1, x2, y2 float64) float64 { return math.Hypot(x2-x1, y2-y1) }

func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	a := math.Pow(math.Sin((lat2-lat1)*rad/2), 2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Pow(math.Sin((lon2-lon1)*rad/2), 2)
	return 2 * earthRadiusM * math.Asin(math.Sqrt(a))
}

// TestSimulateServerGone: when the server goes away in the middle of a
// run, simulate stops within seconds instead of firing for the rest of
// --duration, still prints its summary, and exits non-zero.
func TestSimulateServerGone(t *testing.T) {
	f := simServer(t)
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- run(t.Context(), []string{"simulate", "--url", f.base, "--admin-key", f.admin,
			"--devices", "20", "--rate", "20", "--duration", "2m", "--timeout", "2s", "--json"}, func(string) string { return "" }, &stdout, &stderr)
	}()
	for !regexp.MustCompile(`pings [1-9]`).MatchString(stderr.String()) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no ping within 30s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("simulate still running a minute after the server stopped:\n%s", stderr.String())
	}
	if took := time.Since(stopped); took > 20*time.Second {
		t.Errorf("simulate took %v to stop after the server went away", took)
	}
	if err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), f.base) {
		t.Errorf("simulate against a server that went away = %v, want an error saying pings failed at %s", err, f.base)
	}
	var sum simSummary
	if jerr := json.Unmarshal([]byte(stdout.String()), &sum); jerr != nil {
		t.Fatalf("no summary on stdout: %v\n%s", jerr, stdout.String())
	}
	if sum.StoppedEarly == "" || sum.Pings.Failed == 0 || sum.Pings.OK == 0 || sum.DurationS > 60 || sum.LiveEvents != -1 {
		t.Errorf("summary: stopped early %q, pings %+v, %.1fs, live events %d; want a reason, some ok, some failed, under a minute, -1 (unknown)",
			sum.StoppedEarly, sum.Pings, sum.DurationS, sum.LiveEvents)
	}
	if !strings.Contains(stderr.String(), "stopped early: ") {
		t.Errorf("progress does not say the run stopped early:\n%s", stderr.String())
	}
}

// TestSimulateVerdict: the exit status follows what the run met.
func TestSimulateVerdict(t *testing.T) {
	tests := []struct {
		name     string
		sum      simSummary
		wantFail bool
	}{
		{"all ok", simSummary{Devices: 10}, false},
		{"a few failed", simSummary{Devices: 10, DevicesFailed: 1}, false},
		{"most registrations failed", simSummary{Devices: 4, DevicesFailed: 6}, true},
		{"stopped early", simSummary{Devices: 10, StoppedEarly: "9 of the last 10 pings failed"}, true},
	}
	tests[0].sum.Pings.Sent, tests[0].sum.Pings.OK = 100, 100
	tests[1].sum.Pings.Sent, tests[1].sum.Pings.OK, tests[1].sum.Pings.Failed = 100, 60, 40
	half := simSummary{Devices: 10}
	half.Pings.Sent, half.Pings.OK, half.Pings.Failed = 400, 99, 301
	tests = append(tests, struct {
		name     string
		sum      simSummary
		wantFail bool
	}{"301 of 400 pings failed", half, true})
	for _, tt := range tests {
		if err := tt.sum.verdict(); (err != nil) != tt.wantFail {
			t.Errorf("%s: verdict() = %v, want failure %v", tt.name, err, tt.wantFail)
		}
	}
}

// TestSimulateLiveAtEnd: the summary counts the live events at the end
// of the run, so an event started while it ran (the tablet's Start)
// counts; --store keeps every device around that store.
func TestSimulateLiveAtEnd(t *testing.T) {
	f := simServer(t)
	if code, m := httpCall(t, "DELETE", f.base+"/v1/stores/sim-a/events/live", f.admin, ""); code != 200 {
		t.Fatalf("end event = %d %v", code, m)
	}
	type result struct {
		sum *simSummary
		err error
	}
	var stdout, stderr syncBuffer
	done := make(chan result, 1)
	go func() {
		err := run(t.Context(), []string{"simulate", "--url", f.base, "--admin-key", f.admin, "--store", "sim-b",
			"--devices", "30", "--rate", "30", "--duration", "3s", "--json"}, func(string) string { return "" }, &stdout, &stderr)
		var sum simSummary
		if err == nil {
			err = json.Unmarshal([]byte(stdout.String()), &sum)
		}
		done <- result{&sum, err}
	}()
	for !strings.Contains(stderr.String(), "pinging at") {
		time.Sleep(20 * time.Millisecond)
	}
	if code, m := httpCall(t, "POST", f.base+"/v1/stores/sim-b/events", f.admin, `{"title":"Hot Now","body":"Fresh at Union Square"}`); code != 201 {
		t.Fatalf("start event = %d %v", code, m)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("simulate: %v\n%s", r.err, stderr.String())
	}
	if r.sum.LiveEvents != 1 {
		t.Errorf("live_events = %d, want 1: the event started during the run", r.sum.LiveEvents)
	}
	if !strings.Contains(stderr.String(), "around store sim-b") {
		t.Errorf("progress does not say the devices walk around sim-b:\n%s", stderr.String())
	}
	// Every device inside a fence was inside sim-b's, and its event
	// queued notifications: the devices walked in while it was live.
	n := r.sum.Notifications
	if r.sum.Pings.InsideFence == 0 || n.Queued == 0 || len(n.ByEvent) != 1 {
		t.Errorf("inside %d, notifications %+v: want devices inside sim-b and notifications for its event", r.sum.Pings.InsideFence, n)
	}
	for _, ev := range n.ByEvent {
		if ev.StoreID != "sim-b" {
			t.Errorf("notifications for an event at %s, want only sim-b", ev.StoreID)
		}
	}
	if err := run(t.Context(), []string{"simulate", "--url", f.base, "--admin-key", f.admin, "--store", "nowhere", "--duration", "1s"},
		func(string) string { return "" }, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--store") {
		t.Errorf("simulate --store nowhere = %v, want an error naming --store", err)
	}
}
