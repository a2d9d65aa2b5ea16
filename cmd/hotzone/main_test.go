package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer the server writes to while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`listening on (\S+)`)

// startServer runs `hotzone serve` on 127.0.0.1:0 and waits for /healthz.
func startServer(t *testing.T, env map[string]string, args ...string) (base string, out *syncBuffer, stop func() error) {
	t.Helper()
	base, out, _, stop = startServerLogs(t, env, args...)
	return base, out, stop
}

// startServerLogs is startServer that also keeps what the server logs.
func startServerLogs(t *testing.T, env map[string]string, args ...string) (base string, out, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, logs = &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	getenv := func(k string) string { return env[k] }
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), getenv, out, logs)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited early: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not start:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i > 200 {
			cancel()
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(30 * time.Second):
				serr = context.DeadlineExceeded
			}
		})
		return serr
	}
	t.Cleanup(func() { _ = stop() })
	return base, out, logs, stop
}

func httpCall(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestServeWalkthrough follows README.md's walkthrough against the real
// binary's run function on a real listener, then stops it as SIGTERM
// would and starts it again on the same data dir.
func TestServeWalkthrough(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOTZONE_OPERATOR_KEY": "hzo_walkthrough-secret", "HOTZONE_DATA": dir}
	base, _, stop := startServer(t, env)

	code, brand := httpCall(t, "POST", base+"/v1/brands", "hzo_walkthrough-secret", `{"name":"Krispy Donuts"}`)
	if code != 201 {
		t.Fatalf("POST /v1/brands = %d %v", code, brand)
	}
	admin, app := brand["admin_key"].(string), brand["app_key"].(string)
	if code, m := httpCall(t, "PUT", base+"/v1/stores/main-st", admin, `{"name":"Main St","timezone":"America/New_York","tags":["drive-thru"],
		"fence":{"circle":{"lat":40.7128,"lon":-74.0060,"radius_m":800}}}`); code != 201 {
		t.Fatalf("PUT store = %d %v", code, m)
	}
	if code, m := httpCall(t, "PUT", base+"/v1/devices/phone-1", app, `{"platform":"ios","opt_in":true,"timezone":"America/New_York",
		"push":{"provider":"apns","token":"`+strings.Repeat("ab", 32)+`"}}`); code != 201 {
		t.Fatalf("PUT device = %d %v", code, m)
	}
	code, p := httpCall(t, "POST", base+"/v1/pings", app, `{"device_id":"phone-1","lat":40.7130,"lon":-74.0055,"accuracy_m":15}`)
	if inside, _ := p["inside"].([]any); code != 200 || len(inside) != 1 {
		t.Fatalf("ping = %d %v, want inside main-st", code, p)
	}
	code, ev := httpCall(t, "POST", base+"/v1/stores/main-st/events", admin, `{"title":"Hot Now","body":"Fresh Original Glazed at Main St","duration_s":1800}`)
	if code != 201 {
		t.Fatalf("start event = %d %v", code, ev)
	}
	// The device is considered: sent (dry run) or suppressed by quiet
	// hours, depending on when the test runs; never lost.
	for i := 0; ; i++ {
		_, live := httpCall(t, "GET", base+"/v1/stores/main-st/events/live", admin, "")
		c, _ := live["counts"].(map[string]any)
		if c != nil && c["devices_in_fence"] == 1.0 && c["queued"] == 0.0 {
			break
		}
		if i > 300 {
			t.Fatalf("live counts never settled: %v", live)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// Same data dir: everything is still there, the event still live.
	base, _, _ = startServer(t, env)
	if code, _ := httpCall(t, "GET", base+"/v1/stores/main-st/events/live", admin, ""); code != 200 {
		t.Errorf("live event after restart = %d, want 200", code)
	}
	code, p = httpCall(t, "POST", base+"/v1/pings", app, `{"device_id":"phone-1","lat":40.7130,"lon":-74.0055,"accuracy_m":15}`)
	if inside, _ := p["inside"].([]any); code != 200 || len(inside) != 1 {
		t.Errorf("ping after restart = %d %v", code, p)
	}
}

func TestServeDemo(t *testing.T) {
	dir := t.TempDir()
	base, out, stop := startServer(t, nil, "--data", dir, "--demo")
	text := out.String()
	for _, want := range []string{"operator key", "admin key:   hza_", "app key:     hzp_", "manager key: hzm_", "/tablet#key=hzm_"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	admin := regexp.MustCompile(`admin key:\s+(\S+)`).FindStringSubmatch(text)[1]
	code, list := httpCall(t, "GET", base+"/v1/stores?limit=1000", admin, "")
	if items, _ := list["items"].([]any); code != 200 || len(items) < 50 {
		t.Fatalf("demo stores = %d, %d items; want 50 or more", code, len(items))
	}
	checkDemoAtAnyHour(t, base, text)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A second start shows the same demo keys and generates no new
	// operator key.
	_, out2, _ := startServer(t, nil, "--data", dir, "--demo")
	if !strings.Contains(out2.String(), admin) || strings.Contains(out2.String(), "operator key") {
		t.Errorf("second demo start:\n%s", out2)
	}
}

func TestServeConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"bad ping rate flag", []string{"--device-ping-rate", "fast"}, nil, "--device-ping-rate"},
		{"bad ping rate env", nil, map[string]string{"HOTZONE_DEVICE_PING_RATE": "1/h"}, "--device-ping-rate"},
		{"bad addr", []string{"--addr", "nowhere"}, nil, "--addr"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"bad bool env", nil, map[string]string{"HOTZONE_DEMO": "maybe"}, "HOTZONE_DEMO"},
		{"stray argument", []string{"extra"}, nil, "no arguments"},
		{"bad redis url", []string{"--redis", "rediss://a:1"}, nil, "--redis"},
		{"bad redis env", nil, map[string]string{"HOTZONE_REDIS": "redis://a"}, "--redis"},
		{"bad redis prefix", []string{"--redis-prefix", "a{b}"}, nil, "--redis-prefix"},
		{"bad redis wait", []string{"--redis-wait", "9"}, nil, "--redis-wait"},
		{"bad redis wait timeout", []string{"--redis-wait-timeout", "0s"}, nil, "--redis-wait-timeout"},
		{"negative redis device cache", []string{"--redis-device-cache", "-1"}, nil, "--redis-device-cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			_, err := parseServeFlags(tt.args, getenv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseServeFlags(%v, %v) = %v, want an error naming %q", tt.args, tt.env, err, tt.wantErr)
			}
		})
	}
	cfg, err := parseServeFlags([]string{"--addr", "127.0.0.1:9"}, func(k string) string {
		return map[string]string{"HOTZONE_ADDR": "127.0.0.1:7", "HOTZONE_DEVICE_PING_RATE": "30/m,burst=5"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9" || cfg.pingBurst != 5 || cfg.pingRate != 0.5 {
		t.Errorf("flag over env: addr %q, rate %v burst %d; want 127.0.0.1:9, 0.5, 5", cfg.Addr, cfg.pingRate, cfg.pingBurst)
	}
	var help bytes.Buffer
	if _, err := parseServeFlags([]string{"--help"}, func(string) string { return "" }, &help); !errors.Is(err, errFlagHelp) {
		t.Errorf("--help = %v", err)
	}
	for _, name := range []string{"HOTZONE_ADDR", "HOTZONE_DATA", "HOTZONE_APNS_URL", "HOTZONE_FCM_URL", "HOTZONE_PUSH_CA_FILE", "HOTZONE_DEVICE_PING_RATE", "HOTZONE_DEMO"} {
		if !strings.Contains(help.String(), name) {
			t.Errorf("--help does not mention %s", name)
		}
	}
}

// checkDemoAtAnyHour holds what --demo prints to a demo that shows
// something at any hour: the brand has no quiet hours, the admin page
// has a link that signs in, and the printed simulate command, pasted as
// it is, walks devices into the tablet's store, where an event started
// from the tablet notifies them.
func checkDemoAtAnyHour(t *testing.T, base, text string) {
	t.Helper()
	admin := regexp.MustCompile(`admin key:\s+(\S+)`).FindStringSubmatch(text)[1]
	manager := regexp.MustCompile(`manager key:\s+(\S+) \(store (\S+)\)`).FindStringSubmatch(text)
	if manager == nil {
		t.Fatalf("demo output names no manager key and store:\n%s", text)
	}
	storeID := manager[2]
	if !strings.Contains(text, "admin page:  "+base+"/admin#key="+admin+"\n") {
		t.Errorf("demo output lacks the admin page link %s/admin#key=%s:\n%s", base, admin, text)
	}
	if _, pol := httpCall(t, "GET", base+"/v1/policy", admin, ""); pol["quiet_hours"] != nil || pol == nil {
		t.Errorf("demo policy = %v, want no quiet hours", pol)
	}
	// The tablet's button, named as the page names it.
	page, err := os.ReadFile("../../api/web/tablet.html")
	if err != nil {
		t.Fatal(err)
	}
	button := regexp.MustCompile(`<button id="start"[^>]*>([^<]+)</button>`).FindSubmatch(page)
	if button == nil || !strings.Contains(text, "press "+string(button[1])) {
		t.Errorf("demo output does not name the tablet's start button as the page does (%q):\n%s", button, text)
	}

	// Press Start on the tablet, then paste the command.
	if code, ev := httpCall(t, "POST", base+"/v1/stores/"+storeID+"/events", manager[1], `{"title":"Hot Now","body":"Fresh"}`); code != 201 {
		t.Fatalf("start event at %s = %d %v", storeID, code, ev)
	}
	line := regexp.MustCompile(`(?m)^  go run ./cmd/hotzone simulate (.+)$`).FindStringSubmatch(text)
	if line == nil {
		t.Fatalf("demo output has no simulate command to paste:\n%s", text)
	}
	args := append([]string{"simulate"}, strings.Fields(line[1])...)
	args = append(args, "--duration", "3s", "--devices", "60", "--rate", "60", "--json") // the last of a flag wins: a short run
	var stdout, stderr syncBuffer
	if err := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("the printed simulate command: %v\n%s", err, stderr.String())
	}
	var sum simSummary
	if err := json.Unmarshal([]byte(stdout.String()), &sum); err != nil {
		t.Fatalf("simulate summary: %v\n%s", err, stdout.String())
	}
	if sum.Pings.InsideFence == 0 || sum.Notifications.Queued == 0 || len(sum.Notifications.ByEvent) != 1 {
		t.Errorf("the printed command: %d pings inside a fence, notifications %+v; want devices in %s notified for its event",
			sum.Pings.InsideFence, sum.Notifications, storeID)
	}
	for _, ev := range sum.Notifications.ByEvent {
		if ev.StoreID != storeID {
			t.Errorf("notifications for an event at %s, want %s", ev.StoreID, storeID)
		}
	}
}
