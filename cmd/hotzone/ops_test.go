package main

import (
	"bufio"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads /metrics into series → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %v, %v", resp, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsMove: the series an operator watches appear and move with
// pings and an event, and no label carries a device id, token or key.
func TestMetricsMove(t *testing.T) {
	env := map[string]string{"HOTZONE_OPERATOR_KEY": "hzo_metrics-secret"}
	base, _, logs, _ := startServerLogs(t, env, "--data", t.TempDir())
	before := scrape(t, base)
	_, brand := httpCall(t, "POST", base+"/v1/brands", "hzo_metrics-secret", `{"name":"M"}`)
	admin, app := brand["admin_key"].(string), brand["app_key"].(string)
	httpCall(t, "PATCH", base+"/v1/policy", admin, `{"quiet_hours":null}`)
	httpCall(t, "PUT", base+"/v1/stores/s", admin, `{"name":"S","fence":{"circle":{"lat":1,"lon":1,"radius_m":500}}}`)
	token := strings.Repeat("cd", 32)
	if code, m := httpCall(t, "PUT", base+"/v1/devices/secret-device-id", app, `{"platform":"ios","opt_in":true,"push":{"provider":"apns","token":"`+token+`"}}`); code != 201 {
		t.Fatalf("PUT device = %d %v", code, m)
	}
	for range 3 {
		httpCall(t, "POST", base+"/v1/pings", app, `{"device_id":"secret-device-id","lat":1,"lon":1,"accuracy_m":5}`)
	}
	httpCall(t, "POST", base+"/v1/pings", app, `{"device_id":"nobody","lat":1,"lon":1,"accuracy_m":5}`)
	httpCall(t, "POST", base+"/v1/stores/s/events", admin, `{"title":"Hot","body":"Now"}`)
	var after map[string]float64
	for i := 0; ; i++ {
		after = scrape(t, base)
		// A scrape gathers each collector on its own, so one scrape can
		// hold the counted result without the send's duration beside
		// it: wait for both.
		const sent = `hotzone_send_duration_seconds_count{provider="apns"}`
		if after[`hotzone_notifications_total{provider="apns",status="dry_run"}`] == 1 && after[sent]-before[sent] >= 1 {
			break
		}
		if i > 300 {
			t.Fatalf("no dry_run notification counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	moved := []struct {
		series string
		delta  float64
	}{
		{`hotzone_pings_total{outcome="ok"}`, 3},
		{`hotzone_pings_total{outcome="unknown_device"}`, 1},
		{`hotzone_http_requests_total{method="POST",route="/v1/pings",status="200"}`, 3},
		{`hotzone_ping_duration_seconds_count`, 4},
		{`hotzone_devices`, 1},
		{`hotzone_fences`, 1},
		{`hotzone_live_events`, 1},
		{`hotzone_send_duration_seconds_count{provider="apns"}`, 1},
	}
	for _, m := range moved {
		if got := after[m.series] - before[m.series]; got != m.delta {
			t.Errorf("%s moved by %v, want %v", m.series, got, m.delta)
		}
	}
	if _, ok := after["hotzone_outbox_depth"]; !ok {
		t.Error("hotzone_outbox_depth missing")
	}
	secrets := []string{"secret-device-id", token, admin, app, "hzo_metrics-secret"}
	resp, _ := http.Get(base + "/metrics")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			t.Errorf("/metrics contains %q", s)
		}
	}
	// Logs: one line per request with its id; tokens and keys never.
	// Request lines are written a batch at a time: wait for them.
	pingLine := regexp.MustCompile(`"route":"/v1/pings".*"status":200`)
	for i := 0; !pingLine.MatchString(logs.String()) && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	text := logs.String()
	for _, s := range []string{token, admin, app, "hzo_metrics-secret"} {
		if strings.Contains(text, s) {
			t.Errorf("the log contains a secret %q", s)
		}
	}
	if !pingLine.MatchString(text) || !strings.Contains(text, `"request_id":"`) {
		t.Errorf("request log lines lack route, status or request id:\n%s", text)
	}
}

// TestRequestIDEchoed: a caller's sane X-Request-Id comes back and is
// the one logged.
func TestRequestIDEchoed(t *testing.T) {
	base, _, logs, _ := startServerLogs(t, nil, "--data", t.TempDir())
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Request-Id", "trace-abc.123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-abc.123" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	for i := 0; !strings.Contains(logs.String(), `"request_id":"trace-abc.123"`); i++ {
		if i > 100 {
			t.Fatalf("request id not logged:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
