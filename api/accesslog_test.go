package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// TestAccessLineIsSlogJSON: the hand-made request line has the keys and
// values the slog JSON handler writes for the same attributes, so log
// tooling sees one format whichever wrote it.
func TestAccessLineIsSlogJSON(t *testing.T) {
	var fast, slow bytes.Buffer
	s := &Server{access: &fast}
	s.accessLine(time.Now(), "req-\"1\"", "POST", "/v1/pings", 429, 1234567*time.Nanosecond)
	slog.New(slog.NewJSONHandler(&slow, nil)).LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", "req-\"1\""), slog.String("method", "POST"), slog.String("route", "/v1/pings"),
		slog.Int("status", 429), slog.Duration("latency", 1234567*time.Nanosecond))
	var a, b map[string]any
	if err := json.Unmarshal(fast.Bytes(), &a); err != nil {
		t.Fatalf("the line is not JSON: %v\n%s", err, fast.Bytes())
	}
	if err := json.Unmarshal(slow.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339Nano, a["time"].(string)); err != nil {
		t.Errorf("time %q: %v", a["time"], err)
	}
	delete(a, "time")
	delete(b, "time")
	if !reflect.DeepEqual(a, b) {
		t.Errorf("line %v, slog writes %v", a, b)
	}
	if !bytes.HasSuffix(fast.Bytes(), []byte("}\n")) || bytes.Count(fast.Bytes(), []byte("\n")) != 1 {
		t.Errorf("not one line: %q", fast.Bytes())
	}
}

// TestHeaderValue: the canonical-name shortcut answers what Header.Get
// answers for the names it is used with.
func TestHeaderValue(t *testing.T) {
	h := http.Header{}
	h.Set("authorization", "Bearer x")
	h.Add("Content-Type", "application/json")
	h.Add("Content-Type", "text/plain")
	for _, name := range []string{"Authorization", "Content-Type", "X-Request-Id"} {
		if got, want := headerValue(h, name), h.Get(name); got != want {
			t.Errorf("headerValue(%s) = %q, Get says %q", name, got, want)
		}
	}
}
