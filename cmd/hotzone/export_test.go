package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExport: a brand's data as JSON Lines from a stopped server's data
// dir: every type of line, data as the API answers it, no secret; a dir
// still in use, a missing brand and a missing --brand are clear errors.
func TestExport(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOTZONE_OPERATOR_KEY": "hzo_export-secret", "HOTZONE_DATA": dir}
	base, _, stop := startServer(t, env)
	_, brand := httpCall(t, "POST", base+"/v1/brands", "hzo_export-secret", `{"name":"Krispy Donuts"}`)
	admin, app, brandID := brand["admin_key"].(string), brand["app_key"].(string), brand["id"].(string)
	_, other := httpCall(t, "POST", base+"/v1/brands", "hzo_export-secret", `{"name":"Other"}`)
	httpCall(t, "PUT", base+"/v1/stores/other-st", other["admin_key"].(string), `{"name":"Other","fence":{"circle":{"lat":1,"lon":1,"radius_m":100}}}`)
	httpCall(t, "PATCH", base+"/v1/policy", admin, `{"quiet_hours":null}`)
	httpCall(t, "PUT", base+"/v1/stores/main-st", admin, `{"name":"Main St","fence":{"circle":{"lat":40.7128,"lon":-74.0060,"radius_m":800}}}`)
	for _, id := range []string{"phone-1", "phone-2"} {
		if code, m := httpCall(t, "PUT", base+"/v1/devices/"+id, app, `{"platform":"ios","opt_in":true,"push":{"provider":"apns","token":"`+strings.Repeat("ab", 32)+id[len(id)-1:]+id[len(id)-1:]+`"}}`); code != 201 {
			t.Fatalf("PUT device = %d %v", code, m)
		}
	}
	httpCall(t, "POST", base+"/v1/pings", app, `{"device_id":"phone-1","lat":40.7130,"lon":-74.0055,"accuracy_m":15}`)
	httpCall(t, "POST", base+"/v1/stores/main-st/events", admin, `{"title":"Hot Now","body":"Fresh"}`)
	for i := 0; ; i++ {
		_, live := httpCall(t, "GET", base+"/v1/stores/main-st/events/live", admin, "")
		if c, _ := live["counts"].(map[string]any); c != nil && c["sent"] == 1.0 {
			break
		}
		if i > 300 {
			t.Fatalf("the notification was never sent: %v", live)
		}
		time.Sleep(10 * time.Millisecond)
	}
	getenv := func(string) string { return "" }
	ctx := context.Background()
	// While the server holds the data dir, export says so.
	if err := run(ctx, []string{"export", "--brand", brandID, "--data", dir}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "another hotzone process") {
		t.Errorf("export of a dir in use = %v, want it to say another process holds it", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "krispy.jsonl")
	var summary strings.Builder
	if err := run(ctx, []string{"export", "--brand", brandID, "--data", dir, "--out", out}, getenv, io.Discard, &summary); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, _ := os.ReadFile(out)
	for _, secret := range []string{admin, app, "hza_", "hzp_", "hzo_", strings.Repeat("ab", 32)} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the export holds a secret (%.8s…)", secret)
		}
	}
	types := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		types[line.Type]++
		switch line.Type {
		case "store":
			if line.Data["id"] != "main-st" || line.Data["fence"] == nil {
				t.Errorf("store line: %s", sc.Text())
			}
		case "device":
			pos, _ := line.Data["last_position"].(map[string]any)
			if (line.Data["id"] == "phone-1") != (pos != nil) {
				t.Errorf("device line: %s", sc.Text())
			}
		case "notification":
			if line.Data["device_id"] != "phone-1" || line.Data["status"] != "dry_run" {
				t.Errorf("notification line: %s", sc.Text())
			}
		case "event":
			if c, _ := line.Data["counts"].(map[string]any); c == nil || c["sent"] != 1.0 {
				t.Errorf("event line: %s", sc.Text())
			}
		}
	}
	want := map[string]int{"brand": 1, "policy": 1, "store": 1, "event": 1, "device": 2, "notification": 1}
	for k, n := range want {
		if types[k] != n {
			t.Errorf("%d %s lines, want %d (all: %v)", types[k], k, n, types)
		}
	}
	if len(types) != len(want) {
		t.Errorf("line types %v, want %v", types, want)
	}
	if !strings.Contains(summary.String(), "2 device") {
		t.Errorf("summary %q", summary.String())
	}
	if err := run(ctx, []string{"export", "--brand", "nope", "--data", dir}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("export of an unknown brand = %v", err)
	}
	if err := run(ctx, []string{"export", "--data", dir}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--brand") {
		t.Errorf("export without --brand = %v", err)
	}
	if err := run(ctx, []string{"export", "--brand", brandID, "--data", filepath.Join(dir, "missing")}, getenv, io.Discard, io.Discard); err == nil {
		t.Error("export of a missing data dir succeeded")
	}
}
