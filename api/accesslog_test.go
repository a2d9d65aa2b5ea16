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

// FuzzAppendTimeUTC: the hand-made timestamp is what time.RFC3339Nano
// gives, for any instant and zone.
func FuzzAppendTimeUTC(f *testing.F) {
	for _, ns := range []int64{0, 1, 1_700_000_000_123_456_789, 1_700_000_000_100_000_000, -1, 253402300799999999999 % (1 << 62), -62135596800_000_000_0} {
		f.Add(ns, 0)
	}
	f.Add(int64(1_700_000_000_000_000_001), 3600)
	f.Fuzz(func(t *testing.T, ns int64, offset int) {
		at := time.Unix(0, ns).In(time.FixedZone("z", offset%100000))
		if got, want := string(appendTimeUTC(nil, at)), at.UTC().Format(time.RFC3339Nano); got != want {
			t.Fatalf("appendTimeUTC(%d) = %q, want %q", ns, got, want)
		}
	})
}
