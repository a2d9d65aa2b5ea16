package redis

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// sameAsMarshal fails t unless appendEntry writes what json.Marshal does.
func sameAsMarshal(t *testing.T, n *hotzone.Notification) {
	t.Helper()
	want, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendEntry(nil, n); string(got) != string(want) {
		t.Fatalf("appendEntry:\n got %s\nwant %s", got, want)
	}
}

// TestAppendEntry sets every field of a Notification, by reflection so
// that a field added later is set too, and wants json.Marshal's bytes;
// then each optional field left out in turn.
func TestAppendEntry(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 4, 5, 123456789, time.UTC)
	var n hotzone.Notification
	v := reflect.ValueOf(&n).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + ` <&> "q" \ é ` + "\u2028\t\x01\xff")
		case reflect.Int:
			f.SetInt(int64(-3 - i))
		case reflect.Struct:
			f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Second)))
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			switch p.Elem().Kind() {
			case reflect.String:
				p.Elem().SetString("err \n" + v.Type().Field(i).Name)
			default:
				p.Elem().Set(reflect.ValueOf(at.In(time.FixedZone("x", 5*3600+30*60))))
			}
			f.Set(p)
		default:
			t.Fatalf("field %s of kind %s: teach this test and appendEntry", v.Type().Field(i).Name, f.Kind())
		}
	}
	sameAsMarshal(t, &n)
	for i := range v.NumField() {
		m := n
		reflect.ValueOf(&m).Elem().Field(i).SetZero()
		sameAsMarshal(t, &m)
	}
	sameAsMarshal(t, &hotzone.Notification{})
	sameAsMarshal(t, &hotzone.Notification{Attempts: -1 << 63, CreatedAt: at.Truncate(time.Second)})
}

// FuzzAppendEntry wants json.Marshal's bytes for any strings and times.
func FuzzAppendEntry(f *testing.F) {
	f.Add("06h4wwg42r000ejbdsdfq5g81m", "d-1", "queued", "caps", "<tag> & \"x\"", int64(1796612668133870454), 3)
	f.Add("\xff\xfe", "\u2028\u2029", "", "\x00\x1f\x7f", "é中", int64(0), -7)
	f.Fuzz(func(t *testing.T, id, dev, status, reason, lastErr string, ns int64, attempts int) {
		at := time.Unix(0, ns).UTC()
		if at.Year() < 0 || at.Year() > 9999 {
			return // json.Marshal refuses it; no clock gives it
		}
		n := hotzone.Notification{ID: id, BrandID: id, EventID: dev, StoreID: reason, DeviceID: dev,
			Provider: hotzone.Provider(status), Status: hotzone.NotificationStatus(status), Reason: reason,
			Attempts: attempts, CreatedAt: at, LastError: &lastErr, NextAttempt: at, ProviderID: lastErr,
			Variant: reason, DecidedAt: at, Visit: status, VisitAt: at}
		sameAsMarshal(t, &n)
	})
}

// TestDecodeEntryFast: what appendEntry writes, and what Lua's cjson
// writes (keys in another order, integers), is read by the hand path,
// to the same notification json.Unmarshal reads.
func TestDecodeEntryFast(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 4, 5, 123456789, time.UTC)
	sent, msg := at.Add(time.Second), "BadDeviceToken"
	full := hotzone.Notification{ID: "06h4wwg42r000ejbdsdfq5g81m", BrandID: "b", EventID: "e", StoreID: "s", DeviceID: "d-1",
		Provider: hotzone.ProviderAPNs, Status: hotzone.StatusFailed, Reason: "caps", Attempts: 3, CreatedAt: at, SentAt: &sent,
		LastError: &msg, NextAttempt: at.Add(time.Minute), ProviderID: "p-1", Variant: "fr", DecidedAt: at, OpenedAt: &sent,
		Visit: "visited", VisitAt: at.Add(time.Hour)}
	for _, s := range []string{
		string(appendEntry(nil, &full)),
		string(appendEntry(nil, &hotzone.Notification{ID: "x", Status: hotzone.StatusQueued, CreatedAt: at})),
		`{"status":"sent","device_id":"d-2","attempts":1,"id":"y","sent_at":"2026-12-07T03:04:05Z","last_error":null,"created_at":"2026-12-07T03:04:05.5+01:00"}`,
		`{}`,
	} {
		var fast, slow hotzone.Notification
		if !fastEntry(s, &fast) {
			t.Fatalf("the hand path gave up on %s", s)
		}
		if err := json.Unmarshal([]byte(s), &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s:\nhand %+v\njson %+v", s, fast, slow)
		}
	}
}

// FuzzDecodeEntry: whatever the hand path reads, json.Unmarshal reads
// alike; and decodeEntry, falling back to it, agrees with it on every
// input, errors included.
func FuzzDecodeEntry(f *testing.F) {
	at := time.Date(2026, 12, 7, 3, 4, 5, 123456789, time.UTC)
	f.Add(string(appendEntry(nil, &hotzone.Notification{ID: "a", BrandID: "b", Status: hotzone.StatusQueued, CreatedAt: at, DecidedAt: at})))
	f.Add(`{"status":"sent","attempts":-0,"id":"y","sent_at":null,"last_error":"x","created_at":"2026-12-07T03:04:05Z"}`)
	f.Add(`{"id":"a","id":"b","attempts":01}`)
	f.Add(`{"visit_at":null,"attempts":1e2,"ID":"c","reason":"\u00e9"}`)
	f.Add(`{"created_at":"2026-12-07T24:04:05Z"} `)
	f.Fuzz(func(t *testing.T, s string) { readsAsJSON(t, s, fastEntry, decodeEntry) })
}

// readsAsJSON fails t unless a hand path that reads s reads it as
// json.Unmarshal does, and decode (which falls back to json.Unmarshal)
// agrees with json.Unmarshal, errors included.
func readsAsJSON[T any](t *testing.T, s string, fast func(string, *T) bool, decode func(string, *T) error) {
	t.Helper()
	var want T
	werr := json.Unmarshal([]byte(s), &want)
	var hand T
	if fast(s, &hand) {
		if werr != nil {
			t.Fatalf("hand path read %q, json.Unmarshal refused it: %v", s, werr)
		}
		if !reflect.DeepEqual(hand, want) {
			t.Fatalf("%q:\nhand %+v\njson %+v", s, hand, want)
		}
	}
	var got T
	gerr := decode(s, &got)
	if (gerr != nil) != (werr != nil) || (gerr == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%q: decoded %+v, %v; json.Unmarshal %+v, %v", s, got, gerr, want, werr)
	}
}
