package ledger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

func codecSamples() []hotzone.Notification {
	sent := time.Date(2026, 11, 23, 17, 0, 1, 123456789, time.UTC)
	errText := "503 ServiceUnavailable: try later ✓"
	return []hotzone.Notification{
		{},
		{ID: "01", BrandID: "b", EventID: "e", StoreID: "s", DeviceID: "d", Provider: hotzone.ProviderAPNs, Status: hotzone.StatusQueued, CreatedAt: sent.Add(-time.Second)},
		{ID: "02", BrandID: "b", EventID: "e", StoreID: "s", DeviceID: "d\x00é", Provider: hotzone.ProviderFCM, Status: hotzone.StatusSent,
			Attempts: 3, CreatedAt: sent, SentAt: &sent, LastError: &errText, ProviderID: "projects/p/messages/1"},
		{ID: "03", Status: hotzone.StatusSuppressed, Reason: "quiet_hours", NextAttempt: sent, CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{ID: "04", Status: hotzone.StatusQueued, CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), SentAt: new(time.Time)},
		{ID: "05", Status: hotzone.StatusSent, Variant: "de-CH", DecidedAt: sent, OpenedAt: &sent, Visit: hotzone.VisitVisited, VisitAt: sent.Add(time.Hour)},
		{ID: "06", Status: hotzone.StatusSuppressed, Reason: hotzone.ReasonHoldout, DecidedAt: sent, Visit: hotzone.VisitAlreadyThere, VisitAt: sent},
	}
}

func TestNotificationCodecRoundTrip(t *testing.T) {
	for _, n := range codecSamples() {
		b := appendNotification(nil, &n)
		if len(b) > notificationSize(&n) {
			t.Errorf("%s: %d bytes, more than notificationSize's %d", n.ID, len(b), notificationSize(&n))
		}
		var got hotzone.Notification
		if err := decodeNotification(b, &got); err != nil {
			t.Fatalf("%s: decode: %v", n.ID, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(n)) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", n.ID, got, n)
		}
	}
}

// TestNotificationCodecReadsJSON keeps entries written by versions that
// stored JSON readable.
func TestNotificationCodecReadsJSON(t *testing.T) {
	for _, n := range codecSamples() {
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		var got hotzone.Notification
		if err := decodeNotification(b, &got); err != nil {
			t.Fatalf("%s: decode JSON: %v", n.ID, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(n)) {
			t.Errorf("%s: from JSON\n got %+v\nwant %+v", n.ID, got, n)
		}
	}
}

func TestNotificationCodecRejectsDamage(t *testing.T) {
	full := appendNotification(nil, &codecSamples()[2])
	for i := range len(full) {
		var n hotzone.Notification
		if err := decodeNotification(full[:i], &n); err == nil {
			t.Errorf("a record cut to %d of %d bytes decoded", i, len(full))
		}
	}
	var n hotzone.Notification
	if err := decodeNotification(append(bytes.Clone(full), 0), &n); err == nil {
		t.Error("trailing bytes accepted")
	}
	bad := bytes.Clone(full)
	bad[1] |= 0x80
	if err := decodeNotification(bad, &n); err == nil {
		t.Error("unknown flag accepted")
	}
}

// normalize makes times comparable with reflect.DeepEqual: a decoded
// time has no monotonic reading and a UTC location.
func normalize(n hotzone.Notification) hotzone.Notification {
	u := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC().Round(0)
	}
	n.CreatedAt, n.NextAttempt = u(n.CreatedAt), u(n.NextAttempt)
	if n.SentAt != nil {
		t := u(*n.SentAt)
		n.SentAt = &t
	}
	return n
}

// FuzzDecodeNotification: any bytes decode or fail cleanly, and what
// decodes encodes back to a record that decodes to the same entry.
func FuzzDecodeNotification(f *testing.F) {
	for _, n := range codecSamples() {
		f.Add(appendNotification(nil, &n))
		b, _ := json.Marshal(n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var n hotzone.Notification
		if err := decodeNotification(b, &n); err != nil {
			return
		}
		if n.Attempts < 0 || n.Attempts > 1<<31 {
			return // only JSON can say that; never written
		}
		again := appendNotification(nil, &n)
		if len(again) > notificationSize(&n) {
			t.Fatalf("%d bytes, more than notificationSize's %d", len(again), notificationSize(&n))
		}
		var m hotzone.Notification
		if err := decodeNotification(again, &m); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(n)) {
			t.Fatalf("round trip changed the entry\n got %+v\nwant %+v", m, n)
		}
	})
}

// TestDecodeNotificationIntoUsed: decoding into a value that held
// another entry leaves nothing of it, from either form.
func TestDecodeNotificationIntoUsed(t *testing.T) {
	samples := codecSamples()
	full, sparse := samples[2], samples[1]
	for _, form := range []string{"binary", "json"} {
		var n hotzone.Notification
		if err := decodeNotification(appendNotification(nil, &full), &n); err != nil {
			t.Fatal(err)
		}
		b := appendNotification(nil, &sparse)
		if form == "json" {
			b, _ = json.Marshal(sparse)
		}
		if err := decodeNotification(b, &n); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(n), normalize(sparse)) {
			t.Errorf("%s into a used value:\n got %+v\nwant %+v", form, n, sparse)
		}
	}
}
